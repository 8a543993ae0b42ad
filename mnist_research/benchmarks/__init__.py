"""The library behind ``python -m mnist_research.benchmark``: timed comparisons, side by side."""
