"""gantry.build"""
