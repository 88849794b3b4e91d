"""The optional libraries of pyproject.toml's extras, imported only by the parts that use them."""
from __future__ import annotations

import importlib
from types import ModuleType

from .errors import UsageError


class MissingExtraError(ImportError, UsageError):
    """An optional library is not installed. An ImportError for code that imports, and a
    UsageError so the CLI prints it as its one-line user error."""


def require(module: str, extra: str, purpose: str, package: str | None = None) -> ModuleType:
    """``import module``, or a :class:`MissingExtraError` saying which extra installs it, e.g.
    ``ONNX export needs the onnx package: pip install 'handprop[onnx]'``."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtraError(f"{purpose} needs the {package or module} package: "
                                f"pip install 'handprop[{extra}]'") from None
