"""breachguard: protect accounts after credential leaks."""

__version__ = "0.1.0"
