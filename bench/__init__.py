"""Benchmarks at production scale (issue 9): `make bench`, never part of `make test`."""
