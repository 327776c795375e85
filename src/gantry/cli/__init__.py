"""gantry.cli"""
