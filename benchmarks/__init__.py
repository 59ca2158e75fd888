"""The benchmark suite: ``python -m benchmarks NAME [--json]``; see ``benchmarks/__main__.py``."""
