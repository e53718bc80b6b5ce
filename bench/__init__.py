"""Benchmarks of the DESIGN §8 performance targets: `python -m bench [NAME ...]`.

Benchmarks are not tests: they print figures (one JSON line per case, then a table) and never
assert on timing. Everything runs on loopback against the fakes in tests/fakes.
"""
