"""Helpers shared by the engine tests: PyTorch mirrors of handprop layers, and a tiny MNIST reader.

(Not a conftest: plain functions imported as ``from engine_helpers import ...``; ``tests/`` is on
sys.path because it holds the root conftest.py. Test modules must not ``import conftest``:
with tests/autograd/conftest.py beside it, which one that name means depends on collection order.)
"""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

import handprop.nn as hnn


def rel_error(actual, expected) -> float:
    """max |actual - expected| / max |expected|: the 1e-6 criterion of the trust tests."""
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    assert a.shape == e.shape, f"shape {a.shape} != {e.shape}"
    scale = max(float(np.abs(e).max(initial=0.0)), 1e-300)
    return float(np.abs(a - e).max(initial=0.0)) / scale


def torch_tensor(torch, array, requires_grad: bool = False):
    """A float64 (or integer) torch tensor with a copy of ``array``."""
    t = torch.from_numpy(np.array(array, copy=True))
    return t.requires_grad_(requires_grad) if requires_grad else t


def torch_linear(torch, lin: hnn.Linear):
    """A torch.nn.Linear holding the same weights (torch stores W.T, i.e. (out, in))."""
    tl = torch.nn.Linear(lin.in_features, lin.out_features, bias=lin.bias is not None,
                         dtype=torch.float64)
    with torch.no_grad():
        tl.weight.copy_(torch.from_numpy(np.array(lin.weight.data.T, dtype=np.float64)))
        if lin.bias is not None:
            tl.bias.copy_(torch.from_numpy(np.array(lin.bias.data, dtype=np.float64)))
    return tl


def torch_general_relu(torch, x, leak=None, sub=None, maxv=None):
    """fast.ai's GeneralRelu written with torch ops (the oracle for handprop's GeneralReLU)."""
    out = torch.nn.functional.leaky_relu(x, leak) if leak else torch.relu(x)
    if sub is not None:
        out = out - sub
    if maxv is not None:
        out = out.clamp_max(maxv)
    return out


def torch_mirror(torch, module: hnn.Module):
    """The torch equivalent of a handprop layer or Sequential (float64, same weights)."""
    tnn = torch.nn
    if isinstance(module, hnn.Sequential):
        return tnn.Sequential(*[torch_mirror(torch, m) for m in module])
    if isinstance(module, hnn.Linear):
        return torch_linear(torch, module)
    if isinstance(module, hnn.LeakyReLU):
        return tnn.LeakyReLU(module.negative_slope)
    if isinstance(module, hnn.ReLU):
        return tnn.ReLU()
    if isinstance(module, hnn.Tanh):
        return tnn.Tanh()
    if isinstance(module, hnn.Sigmoid):
        return tnn.Sigmoid()
    if isinstance(module, hnn.LogSoftmax):
        return tnn.LogSoftmax(dim=-1)
    if isinstance(module, hnn.GeneralReLU):
        leak, sub, maxv = module.leak, module.sub, module.maxv

        class _GeneralRelu(tnn.Module):
            def forward(self, x):
                return torch_general_relu(torch, x, leak, sub, maxv)
        return _GeneralRelu()
    raise TypeError(f"no torch mirror for {module!r}")


def read_idx_gz(path: Path, offset: int) -> np.ndarray:
    """The notebooks' way: gunzip and skip the IDX header (16 bytes for images, 8 for labels)."""
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=offset)


def load_mnist(root: Path):
    """((x_train, y_train), (x_test, y_test)) as uint8, via handprop.data.mnist when it exists.

    Falls back to a local gzip reader while ``handprop.data`` is not ready.
    """
    try:
        from handprop.data import mnist
    except ImportError:
        mnist = None
    if mnist is not None:
        return mnist(root=root, download=False)
    x_train = read_idx_gz(root / "train-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28)
    y_train = read_idx_gz(root / "train-labels-idx1-ubyte.gz", 8)
    x_test = read_idx_gz(root / "t10k-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28)
    y_test = read_idx_gz(root / "t10k-labels-idx1-ubyte.gz", 8)
    return (x_train, y_train), (x_test, y_test)


def check_against_torch(torch, module: hnn.Module, x: np.ndarray, seed: int = 0, tol: float = 1e-6) -> None:
    """Forward, dL/dx and every parameter gradient of ``module`` equal torch's (rel. error <= tol).

    ``module`` must already be float64; the upstream gradient is a fixed random array.
    """
    tm = torch_mirror(torch, module)
    tx = torch_tensor(torch, x, requires_grad=True)
    out = module(x)
    tout = tm(tx)
    assert out.dtype == np.float64 and out.shape == tuple(tout.shape)
    assert rel_error(out, tout.detach().numpy()) <= tol, "forward differs from torch"
    gy = np.random.default_rng(seed).standard_normal(out.shape)
    module.zero_grad()
    gx = module.backward(gy, input_grad=True)
    tout.backward(torch.from_numpy(gy))
    assert rel_error(gx, tx.grad.numpy()) <= tol, "input gradient differs from torch"
    tparams = dict(tm.named_parameters())
    for name, p in module.named_parameters():
        tname = name.replace("layers.", "")
        tgrad = tparams[tname].grad.numpy()
        if tname.endswith("weight"):
            tgrad = tgrad.T  # torch stores (out, in)
        assert rel_error(p.grad, tgrad) <= tol, f"gradient of {name} differs from torch"
