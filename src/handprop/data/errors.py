"""The one exception the data layer raises for anything wrong with a dataset or its files."""
from __future__ import annotations

from collections.abc import Sequence


class DatasetError(ValueError):
    """A dataset file is missing, unreadable, malformed or fails verification.

    A ``ValueError`` so callers that validate input generically still catch it; the message
    names the file (or where the search looked) and the problem, on one short line, since the
    CLI prints it as one line. Longer explanations (every folder searched, every URL tried)
    go in ``details``, which Python 3.11+ tracebacks show as a note below the message.
    """

    def __init__(self, message: str, details: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.details = list(details)
        if self.details and hasattr(self, "add_note"):  # Python >= 3.11
            self.add_note("\n".join(self.details))
