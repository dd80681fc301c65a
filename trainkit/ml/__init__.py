"""trainkit.ml"""
