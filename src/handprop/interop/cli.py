"""``handprop export`` and ``handprop import``: model files to PyTorch weights and back, or to ONNX.

Each command takes its parsed arguments, prints what the user needs and returns the exit status;
every user error is a ValueError naming the file or flag (the CLI prints it on one line, exit 2).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

from ..commands.export import TARGETS
from ..errors import UsageError
from ..safetensors import load_file, save_file
from ..saving import load, save
from .pytorch import from_torch_state, to_torch_state
from .torch_arch import torch_definition

#: ``__metadata__`` keys of an exported file: what ``handprop import`` needs to come back alone.
DEFINITION_KEY, NORMALIZE_KEY = "handprop.torch_definition", "handprop.normalize"


def export(model_path: str | os.PathLike, to: str, out: str | os.PathLike) -> int:
    """``handprop export MODEL --to torch OUT.safetensors``: write the PyTorch state dict and print
    the ``torch.nn`` definition that loads it; ``--to onnx OUT.onnx``: :func:`export_onnx`."""
    from .. import __version__

    if to not in TARGETS:
        raise UsageError(f"--to: unknown target {to!r}; expected {', '.join(TARGETS)}")
    if to == "onnx":
        return export_onnx(model_path, out)
    out = _safetensors_path(out, "the output")
    model, normalize, _ = load(model_path, with_meta=True)
    state = to_torch_state(model)
    definition = torch_definition(model)
    metadata = {"format": "pt", "handprop": __version__, DEFINITION_KEY: definition}
    if normalize is not None:
        metadata[NORMALIZE_KEY] = json.dumps({"mean": normalize.mean, "std": normalize.std})
    save_file(state, out, metadata)
    print(f"wrote {out}: {len(state)} tensors, PyTorch's names and layouts; load them with\n")
    print(f"import torch\nfrom safetensors.torch import load_file\n\nmodel = {definition}\n"
          f"model.load_state_dict(load_file({str(out)!r}))\nmodel.eval()")
    if normalize is not None:
        print(f"# the model was trained on normalised inputs: x = (x - {normalize.mean!r}) / {normalize.std!r}")
    return 0


def export_onnx(model_path: str | os.PathLike, out: str | os.PathLike,
                input_shape: Sequence[int | str] | None = None) -> int:
    """``handprop export MODEL --to onnx OUT.onnx``: write the model as an ONNX graph (input
    ``input`` with a free batch axis, output ``logits``) and print how to run it.

    ``input_shape`` (one sample's) is by default the one the model's first layer declares.
    """
    from .onnx import INPUT, NORMALIZE_KEY, OPSET, OUTPUT, save_onnx, to_onnx

    out = Path(out)
    if out.suffix != ".onnx":
        raise UsageError(f"{out}: the output must be a .onnx file")
    model, normalize, _ = load(model_path, with_meta=True)
    proto = to_onnx(model, input_shape, normalize, doc=f"exported by handprop from {Path(model_path).name}")
    save_onnx(proto, out)
    shape = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    print(f"wrote {out}: ONNX opset {OPSET}, {len(proto.graph.node)} nodes, input {INPUT!r} of shape "
          f"{shape} (float32), output {OUTPUT!r}; run it with\n")
    print(f"import onnxruntime\n\nsession = onnxruntime.InferenceSession({str(out)!r})\n"
          f"logits = session.run([{OUTPUT!r}], {{{INPUT!r}: x}})[0]")
    if normalize is not None:
        print(f"# the model was trained on normalised inputs: x = (x - {normalize.mean!r}) / {normalize.std!r}"
              f" (also in the file's metadata, {NORMALIZE_KEY!r})")
    return 0


def import_(torch_path: str | os.PathLike, arch: str | None, out: str | os.PathLike) -> int:
    """``handprop import TORCH.safetensors [--arch "torch.nn.Sequential(...)"] OUT``: build the
    handprop model holding PyTorch's weights and save it to ``OUT`` (.npz or .safetensors).

    ``arch`` is PyTorch code, ``print(model)``'s output or a handprop layer config (JSON); a file
    written by ``handprop export`` carries its own.
    """
    from ..data.transforms import Normalize

    path = _safetensors_path(torch_path, "PyTorch weights")
    state, metadata = load_file(path)
    arch = arch if arch is not None else metadata.get(DEFINITION_KEY)
    if arch is None:
        raise UsageError(f"{path}: no architecture inside; give it with --arch \"torch.nn.Sequential(...)\" "
                         "(PyTorch code, or what print(model) shows)")
    model = from_torch_state(state, arch, str(path))
    normalize = None
    if NORMALIZE_KEY in metadata:
        try:
            normalize = Normalize(**json.loads(metadata[NORMALIZE_KEY]))
        except (ValueError, TypeError) as e:
            raise UsageError(f"{path}: __metadata__[{NORMALIZE_KEY!r}] is not a normalisation ({e})") from None
    written = save(model, out, normalize=normalize, meta={"imported_from": str(path)})
    print(f"wrote {written}: {sum(p.data.size for p in model.parameters()):,} parameters from {path}"
          f"{', with its input normalisation' if normalize else ''}\n{model!r}")
    return 0


def _safetensors_path(path: str | os.PathLike, what: str) -> Path:
    path = Path(path)
    if path.suffix != ".safetensors":
        raise UsageError(f"{path}: {what} must be a .safetensors file (PyTorch's .pt/.pth/.bin are pickles, "
                         "which can run code; in PyTorch: safetensors.torch.save_file(model.state_dict(), "
                         "'model.safetensors'))")
    return path
