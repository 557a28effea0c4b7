"""digits: handwritten-digit recognition with PyTorch."""
