"""Pieces of `kiln compare` (python/kiln/compare.py): inputs, runners, error metrics, per-layer marking.

Kept apart from the command so that each file holds one concept and tests can reach each piece."""


class UsageError(Exception):
    """The command line is wrong (malformed option, unknown input name, shape that the model rejects):
    exit status 2."""


class CompareError(Exception):
    """A file, the model or one of the runners failed: exit status 1. The message says which and why."""
