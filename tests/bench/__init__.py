"""Benchmarks and soak tests (`make bench`, `make soak`): real processes on this machine."""
