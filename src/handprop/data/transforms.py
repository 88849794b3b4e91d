"""The notebooks' view of MNIST: float32 pixels in [0, 1], flattened, a train/valid split,
and normalisation by the *training* mean and std applied to every split."""
from __future__ import annotations

import math

import numpy as np

_CHUNK = 1 << 16


def to_float_flat(x: np.ndarray) -> np.ndarray:
    """uint8 images ``(N, ...)`` -> float32 ``(N, features)`` in [0, 1], in one pass.

    The division writes straight into the one float32 array it allocates (no uint8->float
    intermediate). ``x / 255`` is exact at 0 and 1.
    """
    x = np.asarray(x)
    if x.dtype != np.uint8 or x.ndim < 1:
        raise ValueError(f"to_float_flat expects uint8 pixels of shape (N, ...), got {x.dtype} {x.shape}")
    return np.divide(x.reshape(len(x), -1), np.float32(255), dtype=np.float32)


def train_valid_split(x: np.ndarray, y: np.ndarray, n_valid: int = 10000
                      ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Split off the *last* ``n_valid`` samples as validation, as the notebooks' ``mnist.pkl``
    does (first 50,000 train / last 10,000 valid). Returns views, not copies."""
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} samples but y has {len(y)}")
    if not 0 <= n_valid <= len(x):
        raise ValueError(f"n_valid must be in [0, {len(x)}], got {n_valid}")
    cut = len(x) - n_valid
    return (x[:cut], y[:cut]), (x[cut:], y[cut:])


class Normalize:
    """``(x - mean) / std`` with scalar statistics, fitted once on the training set.

    Fit on the training split only and apply the same instance to valid and test, so no
    information leaks from them. The statistics are a buffer, not a Parameter: saved with
    the model through ``state_dict()`` / ``load_state_dict()``.

    >>> norm = Normalize().fit(x_train)           # doctest: +SKIP
    >>> x_train, x_valid = norm(x_train), norm(x_valid)   # doctest: +SKIP
    """

    def __init__(self, mean: float | None = None, std: float | None = None) -> None:
        if (mean is None) != (std is None):
            raise ValueError("give both mean and std, or neither and call fit()")
        self.mean: float | None = None
        self.std: float | None = None
        if mean is not None:
            self._set(mean, std)

    def fit(self, x: np.ndarray) -> Normalize:
        """Compute the mean and (population) std of ``x``, accumulating in float64."""
        flat = np.asarray(x).reshape(-1)
        if flat.size == 0:
            raise ValueError("cannot fit Normalize on an empty array")
        mean = float(flat.mean(dtype=np.float64))
        # Second pass over float64 chunks: accurate (no E[x^2] - E[x]^2 cancellation), no
        # full-size float64 temporary, and einsum rather than BLAS dot (no thread start-up).
        sq = 0.0
        for start in range(0, flat.size, _CHUNK):
            d = np.subtract(flat[start:start + _CHUNK], mean, dtype=np.float64)
            sq += float(np.einsum("i,i->", d, d))
        self._set(mean, math.sqrt(sq / flat.size))
        return self

    def __call__(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Return ``(x - mean) / std`` as float32; ``out=x`` normalises a float32 array in place."""
        if self.mean is None or self.std is None:
            raise ValueError("Normalize has no statistics: call fit(x_train) or pass mean and std")
        out = np.subtract(x, np.float32(self.mean), out=out, dtype=np.float32)
        return np.divide(out, np.float32(self.std), out=out)

    def state_dict(self) -> dict[str, np.ndarray]:
        """The statistics as 0-d float64 arrays, ready for an ``.npz`` checkpoint."""
        if self.mean is None or self.std is None:
            raise ValueError("Normalize has no statistics to save: call fit() first")
        return {"mean": np.array(self.mean), "std": np.array(self.std)}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore statistics saved by :meth:`state_dict`."""
        missing = {"mean", "std"} - set(state)
        if missing:
            raise ValueError(f"Normalize state is missing {', '.join(sorted(missing))}")
        self._set(state["mean"], state["std"])

    def _set(self, mean: float | np.ndarray, std: float | np.ndarray) -> None:
        mean, std = float(mean), float(std)
        if not (math.isfinite(mean) and math.isfinite(std) and std > 0):
            raise ValueError(f"Normalize needs a finite mean and a finite std > 0, "
                             f"got mean={mean}, std={std}")
        self.mean, self.std = mean, std

    def __repr__(self) -> str:
        if self.mean is None:
            return "Normalize(unfitted)"
        return f"Normalize(mean={self.mean:.4g}, std={self.std:.4g})"
