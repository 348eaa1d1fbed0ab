"""Benchmarks (``make bench``): speed and memory figures, never asserted by the test suite."""
