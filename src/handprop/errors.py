"""The error a caller gets for asking something handprop will not do as asked."""
from __future__ import annotations

from typing import Iterable


class UsageError(ValueError):
    """A setting, a combination of settings or a path that cannot work as given.

    The message names the settings by their config field names (``batch_size``, written
    ``batch_size=None`` where the value matters); ``fields`` lists them, so a front end can
    name them its own way (``handprop train`` rewrites them as the flags that set them). A
    ``ValueError``, so callers that validate input generically still catch it.
    """

    def __init__(self, message: str, fields: Iterable[str] = ()):
        super().__init__(message)
        self.fields = tuple(fields)
