"""murmur: privacy-first, real-time social listening. Crowds, never persons."""

__version__ = "0.1.0"
