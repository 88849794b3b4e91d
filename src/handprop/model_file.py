"""Model files and checkpoints are untrusted input: each is checked against its schema before
anything is built from it.

A model file (``model.npz``) holds the weights ``model.<parameter>``, optionally the input
normalisation ``normalize.mean/std``, and JSON metadata whose ``spec`` lists the layers; a
checkpoint (``last.npz``, ``best.npz``) adds the optimiser state ``opt.*`` and where training
stood. :func:`read_model_file` checks, in this order, so nothing is allocated beyond what the
file holds:

1. the container (:func:`handprop.serialize.load_arrays`): .npy headers agree with the bytes
   stored, no pickled objects, the metadata is a UTF-8 JSON object of finite numbers;
2. the metadata: only known keys, each of its type and range, the training config included;
3. the spec against the arrays: the parameter shapes the spec implies, computed without
   building a layer at its described size, are exactly the file's float arrays, finite;
4. a checkpoint's optimiser state, restored into an optimiser built from its config, and its
   config, which must describe the very model of its spec (a resume builds the run from it).

Every problem is a :class:`ModelFileError` naming the file.
"""
from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np

from .serialize import ModelFileError, build_model, group, load_arrays, load_weights

if TYPE_CHECKING:
    from .data.transforms import Normalize
    from .nn import Module
    from .train.learner import Learner

#: Layers may nest (a Sequential in a Sequential), but not without end.
MAX_DEPTH = 32
#: Integers in the metadata stay below 2**53: exact as JSON numbers and as NumPy indices.
MAX_INT = 2 ** 53
#: Two sets of distinct small primes that :func:`parameter_shapes` builds layers with.
_PROBES = ((11, 13, 17, 19, 23, 29, 31, 37), (41, 43, 47, 53, 59, 61, 67, 71))


@dataclass(frozen=True)
class ModelFile:
    """A checked model file or checkpoint: its arrays, its metadata and its normalisation."""

    path: Path
    arrays: dict[str, np.ndarray]
    meta: dict[str, Any]
    normalize: Normalize | None

    def build_model(self) -> Module:
        """The model of the spec, with the file's weights."""
        with self.blame():
            model = build_model(self.meta["spec"])
            load_weights(model, group(self.arrays, "model"), "weights")  # in the file's float dtype
        return model

    def restore(self, learn: Learner) -> None:
        """Put this checkpoint's weights, optimiser state and position into ``learn``, whose model
        and optimiser were built from the checkpoint's config."""
        with self.blame("does not fit the run it resumes: "):
            learn.load_state({"model": group(self.arrays, "model"), "opt": group(self.arrays, "opt"),
                              "epoch": self.meta["epoch"], "train_step": self.meta["train_step"]})

    @contextlib.contextmanager
    def blame(self, context: str = "") -> Iterator[None]:
        """Turn a ValueError inside the block into a :class:`ModelFileError` naming this file."""
        try:
            yield
        except ModelFileError:
            raise
        except ValueError as e:
            raise ModelFileError(self.path, f"{context}{e}") from None


def read_model_file(path: str | Path, kind: str | None = None) -> ModelFile:
    """Read and check a model file or checkpoint (``kind``: ``"model"``, ``"checkpoint"`` or
    None for either); see the module docstring for what is checked."""
    path = Path(path)
    arrays, meta = _read_container(path)
    file = ModelFile(path, arrays, meta, None)
    if "spec" not in meta:
        raise ModelFileError(path, "no model spec inside; not a handprop model file")
    _check_meta(file, kind)
    with file.blame():
        shapes = parameter_shapes(meta["spec"], integers=(integers := set()))
    _check_keys(file, shapes)
    _check_weights(file, shapes, integers)
    if meta["kind"] == "checkpoint":
        _check_checkpoint(file, shapes)
    return dataclasses.replace(file, normalize=_normalize(file))


# -- the spec: parameter shapes without building at full size ----------------------------------------

def _read_container(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """(arrays, metadata) of an ``.npz`` or a ``.safetensors`` file (whose ``__metadata__`` holds
    the spec and the user's meta as JSON strings: decoded here into the ``.npz`` layout)."""
    if path.suffix != ".safetensors":
        return load_arrays(path)
    import json

    from .safetensors import load_file

    arrays, metadata = load_file(path)
    meta: dict[str, Any] = {"kind": "model", "handprop": metadata.get("handprop", "")}
    for key in ("spec", "meta"):
        if key in metadata:
            try:
                meta[key] = json.loads(metadata[key])
            except ValueError as e:
                raise ModelFileError(path, f"__metadata__[{key!r}] is not valid JSON ({e})") from None
    return arrays, meta


def parameter_shapes(spec: list | dict, where: str = "model spec",
                     integers: set[str] | None = None) -> dict[str, tuple[int, ...]]:
    """The parameters and buffers (dotted name -> shape: the state dict) that
    :func:`handprop.serialize.build_model` would create from ``spec``, found without building any
    layer at its described size.

    Each layer is built twice, with its size arguments (``Arg(size=True)``) set to small
    distinct primes; a parameter dimension that follows a size argument in both builds is that
    argument, one that stays put is a constant. So a model file's arrays can be compared with
    what its spec describes before a single full-size array exists. A size argument that no
    parameter dimension follows is refused: nothing in the file could back it. The names of
    integer entries (BatchNorm's ``num_batches_tracked``) are added to ``integers`` if given.
    """
    return _layer_shapes({"type": "Sequential", "layers": spec} if isinstance(spec, list) else spec, where, 0,
                         set() if integers is None else integers)


def _layer_shapes(config: Any, where: str, depth: int, integers: set[str]) -> dict[str, tuple[int, ...]]:
    from .nn import Module, registry

    if depth > MAX_DEPTH:
        raise ValueError(f"the model spec nests layers more than {MAX_DEPTH} deep")
    types = {t.name: t for t in registry.layer_types() if t.args is not None and issubclass(t.cls, Module)}
    name = config.get("type") if isinstance(config, dict) else None
    entry = types.get(name) if isinstance(name, str) else None
    if entry is None:  # not a layer description, or an unknown type: the registry says which (raises)
        registry.build(config, where, Module)
    sizes = [a for a in entry.args if a.size and a.name in config]
    nested = [a for a in entry.args if a.kind == "layers" and a.name in config]
    named = f"{where} ({entry.name})"  # as the registry names it
    for arg in sizes + nested:
        arg.check(config[arg.name], named)
    # Each distinct value of a size argument (of an element of a pair) gets its own prime in each
    # probe; equal sizes stay equal, as a layer may depend on it (ResBlock's identity shortcut).
    slots = [(a, i) for a in sizes for i in ((0, 1) if a.kind == "pair" else (None,))]
    distinct = list(dict.fromkeys(_slot_value(config, slot) for slot in slots))
    rank = [distinct.index(_slot_value(config, slot)) for slot in slots]
    probes = []
    for primes in _PROBES:
        values: dict[str, Any] = {}
        for (a, i), r in zip(slots, rank):
            values[a.name] = primes[r] if i is None else [*values.get(a.name, []), primes[r]]
        probe = {**config, **values, **{a.name: [] for a in nested}}
        state = registry.build(probe, where, Module).state_dict()
        probes.append({n: a.shape for n, a in state.items()})
    integers.update(n for n, a in state.items() if np.issubdtype(a.dtype, np.integer))
    follows = {(_PROBES[0][r], _PROBES[1][r]): slot for slot, r in zip(slots, rank)}
    shapes, backed = {}, set()
    for name, shape in probes[0].items():
        dims = []
        for a_dim, b_dim in zip(shape, probes[1][name]):
            if a_dim != b_dim:
                if (a_dim, b_dim) not in follows:
                    raise TypeError(f"{entry.name}.{name}: a dimension that is not one of the size arguments; "
                                    "model files cannot check it")
                arg, i = follows[a_dim, b_dim]
                backed.update(a.name for (a, _), r in zip(slots, rank) if r == rank[slots.index((arg, i))])
                a_dim = _slot_value(config, (arg, i))
            dims.append(a_dim)
        shapes[name] = tuple(dims)
    unbacked = [a.name for a in sizes if a.name not in backed]
    if unbacked:
        raise ValueError(f"{named}: {unbacked[0]} is the size of none of its parameters")
    for arg in nested:
        for i, child in enumerate(config[arg.name]):
            child_integers: set[str] = set()
            child_shapes = _layer_shapes(child, f"{named} layer {i}", depth + 1, child_integers)
            shapes.update({f"{arg.name}.{i}.{n}": s for n, s in child_shapes.items()})
            integers.update(f"{arg.name}.{i}.{n}" for n in child_integers)
    return shapes


def _slot_value(config: dict[str, Any], slot: tuple[Any, int | None]) -> int:
    """The value of a size argument, or of one element of a pair-valued one, in ``config``."""
    arg, i = slot
    value = config[arg.name]
    return value if i is None or isinstance(value, int) else value[i]


# -- the metadata --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Rule:
    """A check of one metadata value: ``test(value)``, and what it expects, for the message."""

    test: Callable[[Any], bool]
    expected: str


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and -MAX_INT < v < MAX_INT


def _is_number(v: Any) -> bool:  # JSON floats are finite already (load_arrays)
    return _is_int(v) or isinstance(v, float)


def _one_of(choices: Any) -> _Rule:
    return _Rule(lambda v: isinstance(v, str) and v in choices, "one of " + ", ".join(map(repr, choices)))


def _optional(rule: _Rule) -> _Rule:
    return _Rule(lambda v: v is None or rule.test(v), f"{rule.expected} or null")


def _list_of(rule: _Rule) -> _Rule:
    return _Rule(lambda v: isinstance(v, list) and all(rule.test(x) for x in v), f"a list of {rule.expected}s")


_BOOL = _Rule(lambda v: isinstance(v, bool), "true or false")
_STR = _Rule(lambda v: isinstance(v, str), "a string")
_INT_POSITIVE = _Rule(lambda v: _is_int(v) and v > 0, "an integer in [1, 2**53)")
_INT_NONNEGATIVE = _Rule(lambda v: _is_int(v) and v >= 0, "an integer in [0, 2**53)")
_NUMBER = _Rule(_is_number, "a finite number")
_NUMBER_POSITIVE = _Rule(lambda v: _is_number(v) and v > 0, "a finite number > 0")
_NUMBER_NONNEGATIVE = _Rule(lambda v: _is_number(v) and v >= 0, "a finite number >= 0")
_FRACTION = _Rule(lambda v: _is_number(v) and 0 <= v <= 1, "a number in [0, 1]")


def _is_rate(v: Any) -> bool:
    """A learning rate: a number > 0, or the EPFL form ``"<eta>/N"`` (eta over the sample count)."""
    if isinstance(v, str) and v.endswith("/N"):
        try:
            v = float(v.removesuffix("/N"))
        except ValueError:
            return False
        return np.isfinite(v) and v > 0
    return _NUMBER_POSITIVE.test(v)


def _is_history(v: Any) -> bool:
    """Per-epoch records: {name: number or null}."""
    return isinstance(v, list) and all(isinstance(r, dict) and all(x is None or _is_number(x) for x in r.values())
                                       for r in v)


def _is_rng_state(v: Any) -> bool:
    """A ``bit_generator.state`` of the loader's generator (PCG64), which it accepts back."""
    template = np.random.default_rng(0).bit_generator.state
    if not _same_layout(v, template):
        return False
    try:
        np.random.PCG64().state = v
    except (TypeError, ValueError, OverflowError):
        return False
    return True


def _same_layout(value: Any, template: Any) -> bool:
    if isinstance(template, dict):
        return (isinstance(value, dict) and value.keys() == template.keys()
                and all(_same_layout(value[k], t) for k, t in template.items()))
    if isinstance(template, str):
        return value == template
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2 ** 128


def read_config(file: ModelFile) -> Any:
    """The file's training config as a :class:`~handprop.train.config.TrainConfig` (every value
    checked by the config itself), or a ModelFileError naming the file."""
    from .train.config import TrainConfig

    with file.blame():
        return TrainConfig.from_dict(file.meta["config"], "config")


def meta_rules(kind: str) -> tuple[dict[str, _Rule], set[str]]:
    """The metadata keys of a model file or checkpoint: (rules, required keys). ``spec`` and
    ``config`` are checked on their own."""
    from .data.datasets import DATASETS

    if kind == "model":
        return {"dataset": _one_of(DATASETS), "test_accuracy": _optional(_FRACTION),
                "classes": _list_of(_STR), "model_epoch": _INT_NONNEGATIVE, "handprop": _STR,
                "meta": _Rule(lambda v: isinstance(v, dict), "a JSON object (what handprop.save was given)")}, set()
    return {"epoch": _INT_NONNEGATIVE, "train_step": _INT_NONNEGATIVE,
            "rng": _optional(_Rule(_is_rng_state, "a PCG64 generator state")),  # null: before any draw
            "history": _Rule(_is_history, "a list of {name: number or null} records"),
            "wall_time_s": _NUMBER_NONNEGATIVE, "blas_threads": _optional(_INT_POSITIVE),
            "world_size": _INT_POSITIVE}, \
        {"config", "epoch", "train_step", "history", "rng"}


def _check_meta(file: ModelFile, kind: str | None) -> None:
    meta = file.meta
    found = meta.get("kind")
    if found not in ("model", "checkpoint"):
        raise ModelFileError(file.path, f"metadata 'kind' must be 'model' or 'checkpoint', got {found!r:.40}")
    if kind is not None and found != kind:
        raise ModelFileError(file.path, f"is not a handprop {kind} but a {found} file")
    rules, required = meta_rules(found)
    _check_fields(file, "metadata", meta, rules, required | {"kind", "spec"}, {"kind", "spec", "config"})
    if "config" in meta:
        dataset = read_config(file).dataset
        if meta.get("dataset", dataset) != dataset:
            raise ModelFileError(file.path, f"metadata names dataset {meta['dataset']!r} but its config {dataset!r}")
    if found == "checkpoint" and len(meta["history"]) > meta["epoch"]:
        raise ModelFileError(file.path, f"history has {len(meta['history'])} records for {meta['epoch']} epochs")


def _check_fields(file: ModelFile, what: str, value: Any, rules: dict[str, _Rule], required: set[str],
                  unchecked: set[str] = frozenset()) -> None:
    """``value`` is a JSON object with the ``required`` keys, no unknown ones, each passing its rule."""
    if not isinstance(value, dict):
        raise ModelFileError(file.path, f"{what} must be a JSON object, got {type(value).__name__}")
    unknown = sorted(set(value) - set(rules) - unchecked)
    if unknown:
        raise ModelFileError(file.path, f"{what} has an unknown key {unknown[0]!r:.60}")
    missing = sorted(required - set(value))
    if missing:
        raise ModelFileError(file.path, f"{what} lacks {missing[0]!r}")
    for key, rule in rules.items():
        if key in value and not rule.test(value[key]):
            raise ModelFileError(file.path, f"{what} {key!r} must be {rule.expected}, got {value[key]!r:.60}")


# -- the arrays ----------------------------------------------------------------------------------------

def _check_keys(file: ModelFile, shapes: dict[str, tuple[int, ...]]) -> None:
    """Every array is a parameter of the spec, the normalisation, or (checkpoints) optimiser state;
    every parameter of the spec is there."""
    expected = {f"model.{name}" for name in shapes}
    allowed = expected | {"normalize.mean", "normalize.std"}
    is_checkpoint = file.meta["kind"] == "checkpoint"
    unknown = sorted(k for k in file.arrays if k not in allowed and not (is_checkpoint and k.startswith("opt.")))
    if unknown:
        raise ModelFileError(file.path, f"unexpected array {unknown[0]!r:.60} (the spec has no such parameter)"
                             if unknown[0].startswith("model.") else f"unexpected array {unknown[0]!r:.60}")
    missing = sorted(expected - file.arrays.keys())
    if missing:
        raise ModelFileError(file.path, f"the spec's parameter {missing[0]!r} has no array")
    if is_checkpoint and not group(file.arrays, "opt"):
        raise ModelFileError(file.path, "is a checkpoint without optimiser state (opt.*); it cannot resume training")


def _check_weights(file: ModelFile, shapes: dict[str, tuple[int, ...]], integers: set[str]) -> None:
    """Each weight: float32 or float64 (a counter: int64 >= 0), the shape the spec implies, finite."""
    for name, shape in shapes.items():
        key = f"model.{name}"
        a = file.arrays[key]
        if name in integers:
            if a.dtype != np.int64 or a.shape != shape or (a < 0).any():
                raise ModelFileError(file.path, f"array {key!r} must be a count (int64 >= 0) of shape {shape}")
            continue
        if a.dtype not in (np.float32, np.float64):
            raise ModelFileError(file.path, f"array {key!r} has dtype {a.dtype}; weights are float32 or float64")
        if a.shape != shape:
            raise ModelFileError(file.path, f"array {key!r} has shape {a.shape} but the spec describes "
                                            f"{str(shape):.80}")
        if not np.isfinite(a).all():
            raise ModelFileError(file.path, f"array {key!r} holds NaN or infinite weights")


def _normalize(file: ModelFile) -> Normalize | None:
    """The input normalisation: both statistics or neither, each a float scalar."""
    from .data.transforms import Normalize

    state = group(file.arrays, "normalize")
    if not state:
        return None
    for key, a in state.items():
        if a.shape != () or a.dtype.kind != "f":
            raise ModelFileError(file.path, f"array 'normalize.{key}' must be a float scalar, "
                                            f"got {a.dtype} of shape {a.shape}")
    normalize = Normalize()
    with file.blame():
        normalize.load_state_dict(state)
    return normalize


def _check_checkpoint(file: ModelFile, shapes: dict[str, tuple[int, ...]]) -> None:
    """The config describes the spec's model, and the optimiser state fits an optimiser built
    from the config, for the steps the checkpoint says were taken."""
    from .data.datasets import DATASETS
    from .nn.module import Parameter
    from .train import build as B

    meta, cfg = file.meta, read_config(file)
    spec = meta["spec"]
    n_in = spec[0].get("in_features") if isinstance(spec, list) and spec else None
    if B.model_spec(n_in, len(DATASETS[cfg.dataset].classes), cfg) != spec:
        raise ModelFileError(file.path, "its config describes another model than its spec")
    params = [Parameter(file.arrays[f"model.{name}"]) for name in shapes]
    with file.blame("optimiser state: "):
        opt = B.build_optimizer(cfg, params, 1.0)  # the rate is the saved one once loaded
        opt.load_state_dict(group(file.arrays, "opt"), steps=meta["train_step"])
