"""The gateway process: settings, stores, node wiring and lifecycle, CLI."""

__version__ = "0.1.0"
