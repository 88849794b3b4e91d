"""The one exception the data layer raises for anything wrong with a dataset or its files."""
from __future__ import annotations


class DatasetError(ValueError):
    """A dataset file is missing, malformed or fails verification.

    A ``ValueError`` so callers that validate input generically still catch it; the message
    always names the file (or every folder searched) and the problem.
    """
