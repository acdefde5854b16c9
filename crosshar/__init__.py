"""crosshar: cross-dataset human activity recognition from wearable IMUs."""

__version__ = "0.1.0"
