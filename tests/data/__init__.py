"""Tests of mnist_research/data/: readers, validation and split, pipelines, augmentation."""
