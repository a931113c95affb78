"""framescan's version: one place, imported by the package, the reports, the CLI and setup.py."""

__version__ = "0.1.0"
