"""gantry.archive"""
