"""Are the weights still identical on every process? One CRC-32 per array, gathered and compared.

Data-parallel training keeps the copies equal by construction (every process applies the same
averaged gradient); a bug, a process started with other flags or a bit flip would make them drift
apart silently. The check costs one pass over the weights and one tiny ``Allgather``.
"""
from __future__ import annotations

import zlib
from collections.abc import Mapping

import numpy as np

from .communicator import Communicator
from .errors import RanksDivergedError


def checksums(arrays: Mapping[str, np.ndarray]) -> np.ndarray:
    """The CRC-32 of each array's bytes, in order, as int64 (position-sensitive, unlike a sum)."""
    return np.array([zlib.crc32(np.ascontiguousarray(a).data) for a in arrays.values()], dtype=np.int64)


def describe_mismatch(table: np.ndarray, names: list[str]) -> str | None:
    """None when every row of ``table`` (one per rank: a checksum per array) equals rank 0's;
    else which ranks differ from rank 0, and in which arrays."""
    differs = table != table[0]
    if not differs.any():
        return None
    ranks = np.flatnonzero(differs.any(axis=1))
    arrays = [names[i] for i in np.flatnonzero(differs.any(axis=0))]
    shown = ", ".join(arrays[:5]) + (f" and {len(arrays) - 5} more" if len(arrays) > 5 else "")
    return f"rank(s) {', '.join(map(str, ranks))} differ from rank 0 in {shown}"


def check_identical(comm: Communicator, arrays: Mapping[str, np.ndarray], when: str) -> None:
    """Raise RanksDivergedError on every process if ``arrays`` differ between processes.

    Every process raises (they all see the same gathered table), so the job stops as one.
    """
    counts = comm.allgather(np.array([len(arrays)], dtype=np.int64))
    if (counts != counts[0]).any():
        raise RanksDivergedError(f"{when}: the processes hold different models ({counts.ravel().tolist()} "
                                 "arrays per rank); were they all started with the same flags?")
    problem = describe_mismatch(comm.allgather(checksums(arrays)), list(arrays))
    if problem:
        raise RanksDivergedError(f"{when}: the weights are no longer identical on every process: {problem}. "
                                 "The run was stopped; resume from the last checkpoint.")
