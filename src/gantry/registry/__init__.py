"""gantry.registry"""
