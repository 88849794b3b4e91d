"""Where a dataset is looked for, in order, and why each place does or does not hold it.

Search order (first folder holding all four IDX files wins): explicit ``root`` (alone, when
given) -> ``$HANDPROP_DATA/<name>/`` -> the user cache ``$XDG_CACHE_HOME/handprop/<name>/``
(default ``~/.cache``) -> system copies such as Debian's ``/usr/share/datasets/fashion-mnist``.
"""
from __future__ import annotations

import os
from pathlib import Path

from .registry import DatasetSpec, dataset_spec


def cache_dir() -> Path:
    """The user cache for downloads: ``$XDG_CACHE_HOME/handprop`` (default ``~/.cache/handprop``)."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "handprop"


def search_paths(name: str, root: str | os.PathLike | None = None) -> list[Path]:
    """The folders searched for dataset ``name``, in order.

    An explicit ``root`` replaces the search: ``[root, root/<name>]`` (the folder itself, or a
    parent holding ``<name>/`` like ``$HANDPROP_DATA``).
    """
    spec = dataset_spec(name)
    if root is not None:
        root = Path(root).expanduser().absolute()
        return [root, root / spec.name]
    paths = []
    if env := os.environ.get("HANDPROP_DATA"):
        paths.append(Path(env).expanduser().absolute() / spec.name)
    paths.append(cache_dir() / spec.name)
    paths.extend(Path(d) for d in spec.system_dirs)
    return paths


def find_dataset(name: str, root: str | os.PathLike | None = None) -> Path | None:
    """The first folder of :func:`search_paths` holding all four files (unverified), or None."""
    spec = dataset_spec(name)
    return next((p for p in search_paths(name, root) if not missing_files(spec, p)), None)


def dataset_file(folder: Path, name: str) -> Path | None:
    """``name.gz`` or ``name`` in ``folder``, whichever exists (gzip preferred)."""
    return next((p for p in (folder / f"{name}.gz", folder / name) if p.is_file()), None)


def missing_files(spec: DatasetSpec, folder: Path) -> list[str]:
    return [f for f in spec.files if dataset_file(folder, f) is None]


def not_found_message(spec: DatasetSpec, searched: list[Path], explicit_root: bool, download: str) -> str:
    """The no-data message: every folder searched, why it failed, and every remedy."""
    lines = [f"{spec.name}: dataset not found. Searched, in order:"]
    for p in searched:
        missing = missing_files(spec, p) if p.is_dir() else None
        why = "no such folder" if missing is None else f"missing {', '.join(missing)}"
        lines.append(f"  {p}  ({why})")
    if explicit_root:
        lines.append("  (an explicit root replaces the search of $HANDPROP_DATA, the cache "
                     "and system folders)")
    elif not os.environ.get("HANDPROP_DATA"):
        lines.append(f"  $HANDPROP_DATA/{spec.name}/  (HANDPROP_DATA is not set)")
    lines.append(f"Download: {download}")
    files = ", ".join(f"{f}.gz" for f in spec.files)
    lines += [
        "Remedies:",
        f"  - pass the folder holding {files}: `--data-dir DIR` (CLI) or root=DIR",
        f"  - set HANDPROP_DATA to a folder containing {spec.name}/",
        f"  - copy the files into {cache_dir() / spec.name}",
        f"  - allow downloading (download=True) with network access to one of: {', '.join(spec.mirrors)}",
    ]
    if spec.debian_package:
        lines.append(f"  - install Debian's package: `sudo apt install {spec.debian_package}` "
                     f"(provides {', '.join(spec.system_dirs)})")
    return "\n".join(lines)
