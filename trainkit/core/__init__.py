"""trainkit.core"""
