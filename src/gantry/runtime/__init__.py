"""gantry.runtime"""
