"""BloodMNIST: the data as tensors and the Q1 CNNs."""
