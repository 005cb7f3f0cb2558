"""Reproducible dolmen workloads; run with `python -m benchmarks run [--quick]`."""
