"""``handprop evaluate``: test-set metrics and a terminal confusion matrix for a saved model."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from .data import load_dataset
from .data.datasets import DATASETS
from .errors import UsageError
from .nn import Module
from .serialize import ModelFileError, load_model


def resolve_model_path(path: Path) -> Path:
    """``model.npz`` itself, or the ``model.npz`` inside a run directory."""
    if path.is_dir():
        path = path / "model.npz"
    if not path.is_file():
        raise UsageError(f"{path}: no such model file (give model.npz or a run directory)")
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


def _check_fits(path: Path, model: Module, x: np.ndarray, n_classes: int, dataset: str) -> None:
    """The model takes the dataset's images and scores its classes (tried on one image)."""
    try:
        n_out = model(x[:1]).shape[-1]
    except ValueError as e:
        raise ModelFileError(path, f"does not take {dataset} images: {e}") from None
    if n_out != n_classes:
        raise ModelFileError(path, f"scores {n_out} classes; {dataset} has {n_classes}")


def evaluate(model_path: Path, dataset: str | None = None, data_dir: Path | None = None,
             download: bool = True) -> int:
    """Print test loss, accuracy, error and the confusion matrix; return the exit status."""
    from .train.build import build_loss, encode_targets
    from .train.config import TrainConfig
    from .train.metrics import test_report
    from .train.run import blank_value, test_split, model_as_tested

    path = resolve_model_path(Path(model_path))
    model, normalize, meta, _ = load_model(path)  # checked: a bad file is a ModelFileError naming it
    model.eval()  # before any forward: a training-mode one would move BatchNorm's running statistics
    cfg = TrainConfig.from_dict(meta.get("config", {}), str(path))
    trained_on = meta.get("dataset") or meta.get("config", {}).get("dataset")
    name = dataset or trained_on or cfg.dataset
    if trained_on and name != trained_on:
        print(f"warning: {path} was trained on {trained_on}; evaluating it on {name}", file=sys.stderr)
    _, (x_test, y_test) = load_dataset(name, root=data_dir, download=download)
    x, y = test_split(x_test, y_test, cfg, normalize)
    classes = list(DATASETS[name].classes)
    _check_fits(path, model, x, len(classes), name)
    model = model_as_tested(model, cfg, (1, *x_test.shape[1:]), blank_value(normalize))  # --tta: as the run tested
    r = test_report(model, build_loss(cfg), x, encode_targets(y, len(classes), cfg), len(classes))
    print(f"{path}: {name} test set, {len(y):,} images")
    print(f"test loss {r['test_loss']:.4f}   test accuracy {r['test_accuracy']:.2%}   "
          f"test error {r['test_error']:.2%}\n")
    print(format_confusion(r["confusion_matrix"], classes))
    return 0
