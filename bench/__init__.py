"""Benchmarks of extism_fast against the official Extism Python SDK (see bench/compare.py)."""
