"""Clickstream Data Generator: realistic e-commerce clickstream events served as HTTP streams."""

__version__ = "2.0.0"
