"""gantry.content"""
