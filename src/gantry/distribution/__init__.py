"""gantry.distribution"""
