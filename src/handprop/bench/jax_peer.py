"""JAX, the optional peer: the same network, loss and SGD as handprop, two ways.

- ``step``: one ``jax.jit`` function per training step (forward, ``value_and_grad``, update, the
  parameters donated so XLA updates them in place), called from a Python loop over the same host
  batches the other libraries read; the losses stay on the device until the loop ends (JAX
  dispatches asynchronously; PyTorch's loop syncs with ``.item()``, handprop's returns floats).
- ``scan``: the whole epoch as one ``jax.lax.scan`` over the batches, one compiled call (the data
  moved to the device once beforehand, as a JAX user keeps a dataset).

The network is described by :func:`net_params` from handprop's model: a static spec (one tuple
per layer: its kind and settings, part of the compiled function) and the arrays (handprop's own
layouts: Linear (in, out) as JAX writes ``x @ w + b``, Conv2d (C_out, C_in, kh, kw) as OIHW), so
the libraries start from the same point. This module imports JAX inside its functions; the
bench runs them in a worker process (:mod:`.worker`) so JAX's threads and its float64 switch
(``jax_enable_x64``, needed for the float64 loss check) are set before JAX loads and touch
nothing else.
"""
from __future__ import annotations

import time
from functools import lru_cache
from typing import Any

#: (spec, params): per layer a static tuple (kind, settings...) and a tuple of arrays.
Net = tuple[tuple[tuple, ...], list[tuple[Any, ...]]]


def net_params(model) -> Net:
    """The JAX description of a handprop Sequential of Linear, Conv2d, BatchNorm2d, ReLU,
    AdaptiveAvgPool2d(1) and Flatten (NumPy copies of the arrays); a ValueError naming any other
    layer. BatchNorm2d keeps its mode: batch statistics in training, running ones in eval (its
    running statistics ride along as arrays and get zero gradients)."""
    from .. import nn
    spec, params = [], []
    for layer in model:
        if isinstance(layer, nn.Linear):
            spec.append(("linear",))
            params.append((layer.weight.data.copy(), layer.bias.data.copy()))
        elif isinstance(layer, nn.Conv2d):
            spec.append(("conv", layer.stride, layer.padding))
            params.append((layer.weight.data.copy(),) + (() if layer.bias is None else (layer.bias.data.copy(),)))
        elif isinstance(layer, nn.BatchNorm2d) and layer.affine:
            spec.append(("batchnorm", layer.eps, layer.training))
            params.append(tuple(a.copy() for a in (layer.weight.data, layer.bias.data, layer.running_mean,
                                                   layer.running_var)))
        elif type(layer) in (nn.ReLU, nn.AdaptiveAvgPool2d) or (isinstance(layer, nn.Flatten)
                                                                and (layer.start_dim, layer.end_dim) == (1, -1)):
            spec.append((type(layer).__name__,))
            params.append(())
        else:
            raise ValueError(f"bench: the JAX peer has no twin for {layer!r}")
    return tuple(spec), params


def _forward(spec: tuple[tuple, ...], params: list, x):
    import jax
    import jax.numpy as jnp
    for (kind, *settings), p in zip(spec, params, strict=True):
        if kind == "linear":
            x = x @ p[0] + p[1]
        elif kind == "conv":
            (sh, sw), (ph, pw) = settings
            x = jax.lax.conv_general_dilated(x, p[0], (sh, sw), ((ph, ph), (pw, pw)),
                                             dimension_numbers=("NCHW", "OIHW", "NCHW"))
            if len(p) > 1:
                x = x + p[1][None, :, None, None]
        elif kind == "batchnorm":
            eps, training = settings
            weight, bias, running_mean, running_var = (a[None, :, None, None] for a in p)
            mean = jnp.mean(x, axis=(0, 2, 3), keepdims=True) if training else running_mean
            var = jnp.var(x, axis=(0, 2, 3), keepdims=True) if training else running_var
            x = (x - mean) * jax.lax.rsqrt(var + eps) * weight + bias
        elif kind == "ReLU":
            x = jax.nn.relu(x)
        elif kind == "AdaptiveAvgPool2d":
            x = jnp.mean(x, axis=(2, 3), keepdims=True)
        else:  # Flatten
            x = x.reshape(x.shape[0], -1)
    return x


def _mean_cross_entropy(params: list, spec: tuple[tuple, ...], x, y):
    import jax
    import jax.numpy as jnp
    logp = jax.nn.log_softmax(_forward(spec, params, x))
    return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))


def _sgd_step(lr: float, spec: tuple[tuple, ...]):
    """(params, x, y) -> (new params, loss): the update every library makes, uncompiled."""
    import jax

    def step(params, x, y):
        loss, grads = jax.value_and_grad(_mean_cross_entropy)(params, spec, x, y)
        return jax.tree.map(lambda p, g: p - lr * g, params, grads), loss
    return step


@lru_cache(maxsize=None)
def _jit_step(lr: float, spec: tuple[tuple, ...]):
    import jax
    return jax.jit(_sgd_step(lr, spec), donate_argnums=0)


@lru_cache(maxsize=None)
def _jit_epoch(lr: float, spec: tuple[tuple, ...]):
    import jax
    step = _sgd_step(lr, spec)
    return jax.jit(lambda params, xs, ys: jax.lax.scan(lambda p, b: step(p, *b), params, (xs, ys)),
                   donate_argnums=0)


def train_step(net: Net, x, y, bs: int, steps: int, lr: float):
    """``steps`` jitted SGD steps over consecutive host batches; (seconds, per-step losses)."""
    import jax
    import numpy as np
    spec, params = net
    step = _jit_step(lr, spec)
    p = jax.device_put(params)
    losses = []
    t0 = time.perf_counter()
    for i in range(steps):
        p, loss = step(p, x[i * bs:(i + 1) * bs], y[i * bs:(i + 1) * bs])
        losses.append(loss)
    jax.block_until_ready((p, losses))
    return time.perf_counter() - t0, np.array(losses, dtype=np.float64)


def train_scan(net: Net, x, y, bs: int, steps: int, lr: float):
    """The same steps as one ``lax.scan`` epoch on device-resident batches; (seconds, losses)."""
    import jax
    import numpy as np
    spec, params = net
    epoch = _jit_epoch(lr, spec)
    xs = jax.device_put(x[:steps * bs].reshape(steps, bs, *x.shape[1:]))
    ys = jax.device_put(y[:steps * bs].reshape(steps, bs))
    p = jax.device_put(params)
    jax.block_until_ready((xs, ys, p))
    t0 = time.perf_counter()
    p, losses = epoch(p, xs, ys)
    jax.block_until_ready((p, losses))
    return time.perf_counter() - t0, np.asarray(losses, dtype=np.float64)


@lru_cache(maxsize=None)
def _jit_forward(spec: tuple[tuple, ...]):
    import jax
    return jax.jit(lambda params, x: _forward(spec, params, x))


def infer(net: Net, x, bs: int | None = None):
    """The jitted forward over ``x`` (on the host), in batches of ``bs`` (default: one);
    (seconds, outputs as NumPy)."""
    import jax
    import numpy as np
    spec, params = net
    forward = _jit_forward(spec)
    p = jax.device_put(params)
    bs = bs or len(x)
    t0 = time.perf_counter()
    outs = [forward(p, x[i:i + bs]) for i in range(0, len(x), bs)]
    jax.block_until_ready(outs)
    return time.perf_counter() - t0, np.concatenate([np.asarray(o) for o in outs])


def _float64(net: Net) -> Net:
    import numpy as np
    spec, params = net
    return spec, [tuple(a.astype(np.float64) for a in p) for p in params]


def train_float64(net: Net, x, y, bs: int, steps: int, lr: float):
    """:func:`train_step` in float64 (untimed: the loss check's reference run)."""
    import numpy as np
    return train_step(_float64(net), x[:steps * bs].astype(np.float64), y, bs, steps, lr)


@lru_cache(maxsize=None)
def _jit_conv(stride: tuple[int, int], padding: tuple[int, int]):
    import jax
    spec = (("conv", stride, padding),)

    def forward_backward(w, x, g):
        out, vjp = jax.vjp(lambda w, x: _forward(spec, [(w,)], x), w, x)
        return (out, *vjp(g))
    return jax.jit(forward_backward)


def conv_grads(weight, x, g, stride: tuple[int, int], padding: tuple[int, int], reps: int = 1):
    """``reps`` jitted forward + backward passes of one bias-free convolution on the upstream
    gradient ``g``; (seconds, (output, dL/dweight, dL/dx) of the last, as NumPy)."""
    import jax
    import numpy as np
    fn = _jit_conv(tuple(stride), tuple(padding))
    w, x, g = jax.device_put((weight, x, g))
    t0 = time.perf_counter()
    for _ in range(reps):
        result = fn(w, x, g)
        jax.block_until_ready(result)
    return time.perf_counter() - t0, tuple(np.asarray(a) for a in result)
