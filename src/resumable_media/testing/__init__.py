"""Loopback GCS-compatible server for tests, demos and benchmarks (work in progress)."""
