"""Benchmarks: speed, memory, accuracy and cache behaviour, written as JSON results."""
