"""cityops benchmarks: ``python -m bench`` runs the whole comparison (docs/benchmark.md)."""
