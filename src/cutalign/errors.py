"""Errors shared by the command line and the library."""


class UsageError(Exception):
    """A mistake in the command line or the config: `cutalign` prints it as `error: ...` and exits with status 2."""
