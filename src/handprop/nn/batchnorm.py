"""BatchNorm1d and BatchNorm2d: each channel normalised over the batch, with running statistics.

Training normalises with the batch mean and biased variance and updates the running mean and
the running *unbiased* variance (``running = (1 - momentum) * running + momentum * batch``);
evaluation normalises with the running statistics. Names, defaults and state_dict entries
(``weight, bias, running_mean, running_var, num_batches_tracked``) are PyTorch's.
"""
from __future__ import annotations

from numbers import Real

import numpy as np

from .module import Module, Parameter
from .functional import sum_rows
from .normalization import check_eps, normalize_backward, random_affine
from .registry import Arg, Case, OnnxExport, TorchModule, register


def _tensor_twin(layer: _BatchNorm):
    """The forward in Tensor ops: batch statistics by ``mean``/``var``, so autograd goes through them."""
    def batch_norm(x, *affine):
        axes, shape = layer._axes(x.ndim), layer._channel_shape(x.ndim)
        if layer.training:
            mean, var = x.mean(axis=axes, keepdims=True), x.var(axis=axes, keepdims=True)
        else:
            mean, var = layer.running_mean.reshape(shape), layer.running_var.reshape(shape)
        out = (x - mean) / (var + layer.eps) ** 0.5
        if affine:
            weight, bias = affine
            out = out * weight.reshape(shape) + bias.reshape(shape)
        return out
    return batch_norm


def _torch_twin(torch, layer: _BatchNorm):
    def batch_norm(x, *affine):
        stats = (None, None) if layer.training else (torch.tensor(layer.running_mean), torch.tensor(layer.running_var))
        return torch.nn.functional.batch_norm(x, *stats, *affine, training=layer.training, eps=layer.eps)
    return batch_norm


def _onnx_twin(layer: _BatchNorm, graph, x: str) -> str:
    """BatchNormalization in its inference form (the running statistics); ones and zeros stand in
    for the weight and bias of affine=False, as ONNX requires them."""
    weight = layer.weight.data if layer.affine else np.ones(layer.num_features)
    bias = layer.bias.data if layer.affine else np.zeros(layer.num_features)
    return graph.op("BatchNormalization", x, weight, bias, layer.running_mean, layer.running_var, epsilon=layer.eps)


def channel_rows(x: np.ndarray) -> np.ndarray:
    """``x`` (N, C, *rest) as the (M, C) matrix of its values, one column per channel: a view when
    the channels are innermost in memory (as Conv2d and the pools return them), else one copy.
    Per-channel sums are then BLAS matrix-vector products over contiguous rows, where NumPy's
    reduction over the axes (0, 2, 3) of that memory ran 5-10x slower."""
    return np.moveaxis(x, 1, -1).reshape(-1, x.shape[1])


def from_channel_rows(rows: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """(M, C) rows as the (N, C, *rest) array of ``shape``: a view, the channels innermost in memory."""
    n, c, *rest = shape
    return np.moveaxis(rows.reshape(n, *rest, c), -1, 1)


def normalize_rows(rows: np.ndarray, eps: float, work: np.ndarray | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(xhat, inv_std, mean, var)``: each column of ``rows`` (M, C) normalised, and its
    statistics (C,); the variance is the biased one, from the centred values (no cancellation).
    ``work``, an array of rows' shape, holds the squares (else a temporary does)."""
    m = len(rows)
    mean = sum_rows(rows) / m
    xhat = rows - mean
    var = sum_rows(np.square(xhat, out=work)) / m
    inv_std = 1.0 / np.sqrt(var + eps)
    xhat *= inv_std
    return xhat, inv_std, mean, var


_ARGS = (Arg("num_features", int, size=True), Arg("eps", float), Arg("momentum", float, optional=True),
         Arg("affine", bool))


class _BatchNorm(Module):
    """The shared body: input (N, C, *rest), statistics per channel C over N and *rest."""

    #: The input layouts the subclass takes (``{C}`` for num_features, in error messages); their ranks.
    _layouts: str
    _ranks: tuple[int, ...]

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, dtype: np.dtype | type = np.float32):
        who = type(self).__name__
        if isinstance(num_features, bool) or not isinstance(num_features, (int, np.integer)) or num_features <= 0:
            raise ValueError(f"{who}: num_features must be a positive integer, got {num_features!r}")
        if momentum is not None and (isinstance(momentum, bool) or not isinstance(momentum, Real)
                                     or not 0 <= momentum <= 1):
            raise ValueError(f"{who}: momentum must be a number in [0, 1] or None (cumulative average), "
                             f"got {momentum!r}")
        if not isinstance(affine, bool):
            raise ValueError(f"{who}: affine must be True or False, got {affine!r}")
        self.num_features, self.eps = int(num_features), check_eps(who, eps)
        self.momentum = None if momentum is None else float(momentum)
        self.affine = affine
        self.weight = Parameter(np.ones(self.num_features, dtype)) if affine else None
        self.bias = Parameter(np.zeros(self.num_features, dtype)) if affine else None
        self.register_buffer("running_mean", np.zeros(self.num_features, dtype))
        self.register_buffer("running_var", np.ones(self.num_features, dtype))
        self.register_buffer("num_batches_tracked", np.zeros((), np.int64))

    @staticmethod
    def _axes(ndim: int) -> tuple[int, ...]:
        return (0, *range(2, ndim))

    def _channel_shape(self, ndim: int) -> tuple[int, ...]:
        """(1, C, 1, ...): a per-channel array broadcast against the input."""
        return (1, self.num_features) + (1,) * (ndim - 2)

    def forward(self, x: np.ndarray) -> np.ndarray:
        if x.ndim not in self._ranks or x.shape[1] != self.num_features:
            raise ValueError(f"{self!r} expected input {self._layouts.format(C=self.num_features)}, got {x.shape}")
        if x.dtype != self.running_mean.dtype:
            raise ValueError(f"{self!r} expected {self.running_mean.dtype} input, got {x.dtype} "
                             f"(convert with x.astype(np.{self.running_mean.dtype}) or model.to(np.{x.dtype}))")
        rows = channel_rows(x)
        if not self.training:  # a fixed affine map: x * scale + shift, per channel
            scale = 1.0 / np.sqrt(self.running_var + self.eps)
            shift = -self.running_mean * scale
            if self.affine:
                scale *= self.weight.data
                shift = shift * self.weight.data + self.bias.data
            out = rows * scale
            out += shift
            return from_channel_rows(out, x.shape)
        count = len(rows)  # values per channel
        if count <= 1:
            raise ValueError(f"{self!r} expected more than 1 value per channel when training, got input "
                             f"of shape {x.shape} (use a larger batch, or eval() for inference)")
        out = np.empty_like(rows)  # the squares first, then the output: one array fewer
        xhat, inv_std, mean, var = normalize_rows(rows, self.eps, out)
        self._track(mean, var * (count / (count - 1)))
        self._save(xhat, inv_std, x.shape)
        if not self.affine:
            return from_channel_rows(xhat, x.shape)
        np.multiply(xhat, self.weight.data, out=out)
        out += self.bias.data
        return from_channel_rows(out, x.shape)

    def _track(self, mean: np.ndarray, unbiased_var: np.ndarray) -> None:
        """Move the running statistics towards the batch's, in place (momentum None: the
        cumulative average of every batch so far)."""
        self.num_batches_tracked += 1
        factor = 1.0 / int(self.num_batches_tracked) if self.momentum is None else self.momentum
        for running, batch in ((self.running_mean, mean), (self.running_var, unbiased_var)):
            running *= 1 - factor
            running += factor * batch

    def backward(self, grad_output: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        xhat, inv_std, shape = self._saved()
        if grad_output.shape != shape:
            raise ValueError(f"{self!r}.backward expected grad_output of shape {shape}, got {grad_output.shape}")
        g = channel_rows(grad_output)
        # dL/dbias and dL/dweight are also what the input gradient needs: the sums of g and g*xhat
        grad_sum = sum_rows(g)
        work = g * xhat  # then the input gradient
        grad_xhat_sum = sum_rows(work)
        if self.affine:
            self.bias.accumulate_grad(grad_sum)
            self.weight.accumulate_grad(grad_xhat_sum)
        if not input_grad:
            return None
        count = len(xhat)
        scale = inv_std * self.weight.data if self.affine else inv_std
        grad = normalize_backward(g, xhat, scale, grad_sum / count, grad_xhat_sum / count, out=work)
        return from_channel_rows(grad, shape)

    def extra_repr(self) -> str:
        options = [("eps", self.eps, 1e-5), ("momentum", self.momentum, 0.1), ("affine", self.affine, True)]
        return ", ".join([str(self.num_features)] + [f"{name}={value}" for name, value, default in options
                                                     if value != default])


@register(args=_ARGS, tensor=_tensor_twin, torch=_torch_twin, torch_module=TorchModule("BatchNorm1d", ("num_features",)),
          onnx=OnnxExport(_onnx_twin, input_shape=lambda layer: (layer.num_features,)),
          cases=[
    Case("BatchNorm1d(N, C)", (8, 5), make=random_affine(lambda: BatchNorm1d(5, dtype=np.float64), 1), scale=2),
    Case("BatchNorm1d(N, C, L)", (4, 3, 6), make=random_affine(lambda: BatchNorm1d(3, dtype=np.float64), 2)),
    Case("BatchNorm1d(affine=False)", (6, 4), {"num_features": 4, "affine": False, "eps": 1e-3}, scale=3)])
class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) features or (N, C, L) sequences, per channel C."""

    _layouts, _ranks = "(N, {C}) or (N, {C}, L)", (2, 3)


@register(args=_ARGS, tensor=_tensor_twin, torch=_torch_twin, torch_module=TorchModule("BatchNorm2d", ("num_features",)),
          onnx=OnnxExport(_onnx_twin, input_shape=lambda layer: (layer.num_features, "height", "width")),
          cases=[
    Case("BatchNorm2d", (4, 3, 5, 5), make=random_affine(lambda: BatchNorm2d(3, dtype=np.float64), 3)),
    Case("BatchNorm2d(N=1)", (1, 2, 3, 4), make=random_affine(lambda: BatchNorm2d(2, dtype=np.float64), 4),
         scale=2)])
class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W) images, per channel C over the batch and the pixels."""

    _layouts, _ranks = "(N, {C}, H, W)", (4,)
