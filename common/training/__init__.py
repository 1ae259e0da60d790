"""The one training loop, its device and precision choice, and the masked metrics."""
