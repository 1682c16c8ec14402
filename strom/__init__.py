"""Strom: a self-hosted, multi-user live-streaming platform."""

__version__ = "0.1.0"
