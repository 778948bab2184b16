"""Errors the command line turns into a one-line message and exit status 2."""


class ConfigError(ValueError):
    """A setting is unusable; the message says which and why (never a secret's value)."""
