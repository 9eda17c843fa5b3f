"""Benchmarks: long runs and comparisons (not tests)."""
