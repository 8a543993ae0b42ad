"""Tests of mnist_research/config/: validation of every setting, flags and flagfiles."""
