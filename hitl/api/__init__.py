"""The HTTP adapter over the service."""
