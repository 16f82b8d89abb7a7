"""Benchmarks that print figures; results and how to reproduce them are in docs/benchmarks.md."""
