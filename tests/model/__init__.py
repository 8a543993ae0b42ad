"""Tests of mnist_research/model/: the model families, their blocks and dropout."""
