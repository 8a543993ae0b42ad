"""Tests of mnist_research/benchmarks/: the benchmark's run and arithmetic."""
