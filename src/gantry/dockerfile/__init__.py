"""gantry.dockerfile"""
