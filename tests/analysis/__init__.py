"""Tests of mnist_research/analysis/: metrics, figures, reports, sweep and compare."""
