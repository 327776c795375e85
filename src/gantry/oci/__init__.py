"""gantry.oci"""
