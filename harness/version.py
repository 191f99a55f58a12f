"""The harness version (what env.json and every report header record)."""

__version__ = "0.1.0"
