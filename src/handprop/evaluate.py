"""``handprop evaluate``: test-set metrics and a terminal confusion matrix for a saved model."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .data import load_dataset, to_float_flat
from .data.datasets import DATASETS
from .serialize import load_model
from .train.metrics import confusion_matrix


def resolve_model_path(path: Path) -> Path:
    """``model.npz`` itself, or the ``model.npz`` inside a run directory."""
    if path.is_dir():
        path = path / "model.npz"
    if not path.is_file():
        raise ValueError(f"{path}: no such model file (give model.npz or a run directory)")
    return path


def format_confusion(matrix: np.ndarray, classes: list[str]) -> str:
    """Rows = true class, columns = predicted; short class names for the columns."""
    names = [c[:7] for c in classes]
    width = max(6, max(len(n) for n in names) + 1, len(str(matrix.max())) + 1)
    corner = "true \\ pred"
    head = f"{corner:>12}" + "".join(f"{n:>{width}}" for n in names) + f"{'recall':>9}"
    lines = [head]
    for i, name in enumerate(names):
        total = matrix[i].sum()
        recall = matrix[i, i] / total if total else float("nan")
        lines.append(f"{name:>12}" + "".join(f"{v:>{width}d}" for v in matrix[i]) + f"{recall:>9.2%}")
    return "\n".join(lines)


def evaluate(model_path: Path, dataset: str | None = None, data_dir: Path | None = None,
             download: bool = True) -> int:
    """Print test loss, accuracy, error and the confusion matrix; return the exit status."""
    from .train import config as C

    path = resolve_model_path(Path(model_path))
    model, normalize, meta, _ = load_model(path)
    cfg = meta.get("config", {})
    name = dataset or meta.get("dataset") or cfg.get("dataset", "mnist")
    _, (x_test, y_test) = load_dataset(name, root=data_dir, download=download)
    if cfg.get("test_subset"):
        x_test, y_test = x_test[:cfg["test_subset"]], y_test[:cfg["test_subset"]]
    x = to_float_flat(x_test)
    if normalize is not None:
        normalize(x, out=x)
    model.eval()
    out = np.concatenate([model(x[i:i + 10_000]) for i in range(0, len(x), 10_000)])
    classes = list(DATASETS[name].classes)
    loss = C.build_loss({**C.DEFAULTS, **cfg})
    test_loss = loss(out, C.encode_targets(y_test, len(classes), {**C.DEFAULTS, **cfg}))
    matrix = confusion_matrix(out, y_test, len(classes))
    acc = np.trace(matrix) / len(y_test)
    print(f"{path}: {name} test set, {len(y_test):,} images")
    print(f"test loss {test_loss:.4f}   test accuracy {acc:.2%}   test error {1 - acc:.2%}\n")
    print(format_confusion(matrix, classes))
    return 0
