"""gantry.store"""
