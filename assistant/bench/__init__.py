"""Benchmarks behind `assistant bench ...`; results go to bench/results/."""
