"""Benchmarks. Each writes JSON and a plot to `bench/results/`; see bench/README.md."""
