"""mnist_research: an MNIST classifier trained with a hand-written TF2 loop."""

__version__ = "0.1.0"
