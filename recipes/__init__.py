"""Recipes: how a config.yml's pipeline and policies become graph nodes, and starter configs."""
