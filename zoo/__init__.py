"""zoo: a PyTorch Lightning model zoo for disentangled representation learning."""

__version__ = "0.1.0"
