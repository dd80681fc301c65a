"""trainkit.nlu"""
