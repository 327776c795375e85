"""gantry.layers"""
