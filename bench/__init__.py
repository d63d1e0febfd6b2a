"""Benchmarks (`make bench`): figures with budgets, written to bench/results.json."""
