"""Where a dataset is looked for, in order, and why each place does or does not hold it.

Search order (the first folder holding all four IDX files, readable, wins):
``--data-dir DIR`` (alone, when given) -> ``$HANDPROP_DATA`` -> the user cache
``$XDG_CACHE_HOME/handprop/<name>/`` (default ``~/.cache``) -> system copies such as Debian's
``/usr/share/datasets/fashion-mnist``. ``DIR`` and ``$HANDPROP_DATA`` may each be the dataset's
folder itself or a folder holding ``<name>/``. A folder that cannot be read is skipped with
its reason, so one bad place never hides the next. Reasons and remedies speak the CLI's terms
(``--data-dir``, ``--offline``, ``HANDPROP_DATA``): the messages end up on a terminal.
"""
from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .errors import DatasetError
from .registry import DATASETS, DatasetSpec, dataset_spec

NO_FOLDER = "no such folder"
NO_FILES = "none of the 4 IDX files"
#: The longest first line of a not-found error: the CLI prints it as its one line.
MAX_LINE = 200


@dataclass(frozen=True)
class Place:
    """One folder of the search: where it comes from (CLI terms), and why it is unusable (None: usable)."""

    source: str
    folder: Path
    problem: str | None

    def __str__(self) -> str:
        return f"{self.folder}  ({self.source}: {self.problem or 'ok'})"


def cache_dir() -> Path:
    """The user cache for downloads: ``$XDG_CACHE_HOME/handprop`` (default ``~/.cache/handprop``)."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    if os.path.isabs(xdg):
        return Path(xdg) / "handprop"
    try:
        return Path.home() / ".cache" / "handprop"
    except RuntimeError:  # no $HOME and no passwd entry for this user
        raise DatasetError("cannot locate the user cache: HOME is not set and XDG_CACHE_HOME is not "
                           "an absolute path; set one of them") from None


def search_paths(name: str, root: str | os.PathLike | None = None) -> list[Path]:
    """The folders searched for dataset ``name``, in order.

    An explicit ``root`` (``--data-dir``) replaces the search: ``[root, root/<name>]``.
    """
    return [folder for _, folder in _sources(dataset_spec(name), root)]


def find_dataset(name: str, root: str | os.PathLike | None = None) -> Path | None:
    """The first folder of :func:`search_paths` holding all four files, readable (unverified), or None."""
    return next((p.folder for p in survey(name, root) if p.problem is None), None)


def survey(name: str, root: str | os.PathLike | None = None) -> Iterator[Place]:
    """Each folder of :func:`search_paths`, in order, with why it cannot serve (None: it can)."""
    spec = dataset_spec(name)
    for source, folder in _sources(spec, root):
        try:
            dataset_files(spec, folder)
            yield Place(source, folder, None)
        except DatasetError as exc:
            yield Place(source, folder, str(exc))


def dataset_files(spec: DatasetSpec, folder: Path) -> list[Path]:
    """The four files of ``spec`` in ``folder`` (``name.gz`` preferred to ``name``), each opened
    once to prove it readable.

    Raises :class:`DatasetError` saying why the folder cannot serve, without naming it: no such
    folder, not a folder, files missing, or a file or the folder that cannot be read.
    """
    try:
        mode = os.stat(folder).st_mode
    except (FileNotFoundError, NotADirectoryError):
        raise DatasetError(NO_FOLDER) from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in a path given from Python
        raise DatasetError(f"cannot read the folder: {getattr(exc, 'strerror', None) or exc}") from exc
    if not stat.S_ISDIR(mode):
        raise DatasetError("not a folder")
    found = {name: readable_file(folder, name) for name in spec.files}
    missing = [name for name, path in found.items() if path is None]
    if len(missing) == len(found):
        raise DatasetError(NO_FILES)
    if missing:
        raise DatasetError(f"missing {', '.join(missing)}")
    return list(found.values())


def readable_file(folder: Path, name: str) -> Path | None:
    """``name.gz`` or else ``name`` in ``folder``, opened once to prove it readable; None if
    neither is a file. A file, or a folder, that cannot be read is a :class:`DatasetError`."""
    for path in (folder / f"{name}.gz", folder / name):
        try:  # stat needs only the folder's permissions, open the file's: say which failed
            mode = os.stat(path).st_mode
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise DatasetError(f"cannot read the folder: {exc.strerror or exc}") from exc
        if not stat.S_ISREG(mode):  # a folder or a FIFO is not the file
            continue
        try:
            open(path, "rb").close()
        except OSError as exc:
            raise DatasetError(f"cannot read {path.name}: {exc.strerror or exc}") from exc
        return path
    return None


def search_report(name: str, root: str | os.PathLike | None = None) -> list[str]:
    """The search for ``name`` as lines, in order: each folder, where it comes from and why it
    was skipped; ``*`` marks the copy that is used."""
    places = list(survey(name, root))
    used = next((p for p in places if p.problem is None), None)
    lines = [f"{'*' if p is used else ' '} {p}" for p in places]
    if root is None and not os.environ.get("HANDPROP_DATA"):
        lines.insert(0, "  HANDPROP_DATA is not set")
    if root is not None:
        lines.append("  (--data-dir replaces the search of HANDPROP_DATA, the user cache and system folders)")
    return lines


def remedies(name: str) -> list[str]:
    """Every way to give handprop a copy of dataset ``name``, in the CLI's terms."""
    spec = dataset_spec(name)
    files = ", ".join(f"{f}.gz" for f in spec.files)
    lines = [
        f"--data-dir DIR, DIR holding {files} (or {spec.name}/ with them)",
        "HANDPROP_DATA=DIR, the same for every command",
        f"copy the files into {cache_dir() / spec.name}",
        f"let train/evaluate download it (no --offline) from {' or '.join(spec.mirrors)}",
    ]
    if spec.debian_package:
        lines.append(f"sudo apt install {spec.debian_package} (provides {', '.join(spec.system_dirs)})")
    return lines


def not_found_error(name: str, root: str | os.PathLike | None,
                    download_error: DatasetError | None = None) -> DatasetError:
    """The error for "no usable copy anywhere": one short line, then the details.

    The line (at most :data:`MAX_LINE` characters; the CLI prints only it) says where it looked,
    the most telling problem met, why nothing was downloaded (``download_error``, or downloading
    is off) and the ``handprop info`` command that shows the full search. The details, which a
    Python traceback shows, are the download's failures, the search report and the remedies.
    """
    places = list(survey(name, root))
    near = next((p for p in places if p.problem not in (None, NO_FOLDER, NO_FILES)), None)
    shrink = {}
    if root is None:
        template, info = "{name}: dataset not found locally", "handprop info"
        if near:
            template += " ({problem})"
            shrink["problem"] = f"{near.source} {near.folder}: {near.problem}"
    else:
        template = "{name}: dataset not found in --data-dir {path} ({problem})"
        info = "handprop info --data-dir DIR"
        shrink.update(path=str(places[0].folder), problem=(near or places[0]).problem)
    if download_error is None:
        template += ", and downloading is off (--offline)"
    else:
        template += ", and the download failed ({reason})"
        shrink["reason"] = str(download_error)
    line = _fit(template + "; details: `{info}`", name=name, info=info, shrink=shrink)
    searched = ["Searched, in order (* = used):", *search_report(name, root)]
    fixes = ["To add a copy, any of:", *(f"  - {r}" for r in remedies(name))]
    download = [] if download_error is None else download_error.details or [f"Download failed: {download_error}"]
    return DatasetError(line, [*download, *searched, *fixes])


def _sources(spec: DatasetSpec, root: str | os.PathLike | None) -> list[tuple[str, Path]]:
    """(source, folder) for every folder searched, in order."""
    if root is not None:
        return [("--data-dir", folder) for folder in folder_or_parent(spec, root, "--data-dir")]
    places = []
    if env := os.environ.get("HANDPROP_DATA"):
        places += [("HANDPROP_DATA", folder) for folder in folder_or_parent(spec, env, "HANDPROP_DATA")]
    places.append(("user cache", cache_dir() / spec.name))
    places += [("system copy", Path(d)) for d in spec.system_dirs]
    return places


def folder_or_parent(spec: DatasetSpec, base: str | os.PathLike, source: str) -> list[Path]:
    """Where a folder the user names (``--data-dir``, ``HANDPROP_DATA``) may hold ``spec``:
    the folder itself, then its ``<name>/`` subfolder.

    The folder itself is skipped when it is named after another dataset: MNIST and
    Fashion-MNIST share file names, so ``HANDPROP_DATA=~/data/mnist`` must not offer MNIST's
    files as Fashion-MNIST.
    """
    try:
        folder = Path(base).expanduser().absolute()
    except RuntimeError:  # ~user/... for an unknown user
        raise DatasetError(f"{source} {base}: cannot expand '~': no such user") from None
    itself = [] if folder.name in DATASETS and folder.name != spec.name else [folder]
    return itself + [folder / spec.name]


def _fit(template: str, *, shrink: dict[str, str], width: int = MAX_LINE, **fixed: str) -> str:
    """``template`` filled in, its ``shrink`` fields cut (longest first) until the line is at
    most ``width`` characters. A cut keeps a field's first third and its end, where paths and
    error messages say the most."""
    shrink = dict(shrink)
    while len(line := template.format(**fixed, **shrink)) > width:
        key = max(shrink, key=lambda k: len(shrink[k]))
        text, keep = shrink[key], max(len(shrink[key]) - (len(line) - width), 24)
        if keep >= len(text):
            raise AssertionError(f"the fixed text of {template!r} is too long for {width} characters")
        shrink[key] = f"{text[:keep // 3]}…{text[len(text) - (keep - 1 - keep // 3):]}"
    return line
