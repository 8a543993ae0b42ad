"""Tests of mnist_research/inference/: export, finished runs, image preprocessing."""
