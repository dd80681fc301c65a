"""trainkit.engine"""
