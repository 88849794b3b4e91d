"""JAX, the optional peer: the same MLP, loss and SGD as handprop, two ways.

- ``step``: one ``jax.jit`` function per training step (forward, ``value_and_grad``, update, the
  parameters donated so XLA updates them in place), called from a Python loop over the same host
  batches the other libraries read; the losses stay on the device until the loop ends (JAX
  dispatches asynchronously; PyTorch's loop syncs with ``.item()``, handprop's returns floats).
- ``scan``: the whole epoch as one ``jax.lax.scan`` over the batches, one compiled call (the data
  moved to the device once beforehand, as a JAX user keeps a dataset).

The weights come from handprop's model ((in, out) weights, as JAX writes ``x @ w + b``), so the
three libraries start from the same point. This module imports JAX inside its functions; the
bench runs them in a worker process (:mod:`.worker`) so JAX's threads and its float64 switch
(``jax_enable_x64``, needed for the float64 loss check) are set before JAX loads and touch
nothing else.
"""
from __future__ import annotations

import time
from functools import lru_cache
from typing import Any

Params = list[tuple[Any, Any]]


def mlp_params(model) -> Params:
    """[(W (in, out), b), ...] of a handprop Linear/ReLU stack, as NumPy copies."""
    from .. import nn
    return [(layer.weight.data.copy(), layer.bias.data.copy()) for layer in model if isinstance(layer, nn.Linear)]


def _forward(params: Params, x):
    import jax
    for w, b in params[:-1]:
        x = jax.nn.relu(x @ w + b)
    w, b = params[-1]
    return x @ w + b


def _mean_cross_entropy(params: Params, x, y):
    import jax
    import jax.numpy as jnp
    logp = jax.nn.log_softmax(_forward(params, x))
    return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))


def _sgd_step(lr: float):
    """(params, x, y) -> (new params, loss): the update every library makes, uncompiled."""
    import jax

    def step(params, x, y):
        loss, grads = jax.value_and_grad(_mean_cross_entropy)(params, x, y)
        return jax.tree.map(lambda p, g: p - lr * g, params, grads), loss
    return step


@lru_cache(maxsize=None)
def _jit_step(lr: float):
    import jax
    return jax.jit(_sgd_step(lr), donate_argnums=0)


@lru_cache(maxsize=None)
def _jit_epoch(lr: float):
    import jax
    step = _sgd_step(lr)
    return jax.jit(lambda params, xs, ys: jax.lax.scan(lambda p, b: step(p, *b), params, (xs, ys)),
                   donate_argnums=0)


def train_step(params: Params, x, y, bs: int, steps: int, lr: float):
    """``steps`` jitted SGD steps over consecutive host batches; (seconds, per-step losses)."""
    import jax
    import numpy as np
    step = _jit_step(lr)
    p = jax.device_put(params)
    losses = []
    t0 = time.perf_counter()
    for i in range(steps):
        p, loss = step(p, x[i * bs:(i + 1) * bs], y[i * bs:(i + 1) * bs])
        losses.append(loss)
    jax.block_until_ready((p, losses))
    return time.perf_counter() - t0, np.array(losses, dtype=np.float64)


def train_scan(params: Params, x, y, bs: int, steps: int, lr: float):
    """The same steps as one ``lax.scan`` epoch on device-resident batches; (seconds, losses)."""
    import jax
    import numpy as np
    epoch = _jit_epoch(lr)
    xs = jax.device_put(x[:steps * bs].reshape(steps, bs, -1))
    ys = jax.device_put(y[:steps * bs].reshape(steps, bs))
    p = jax.device_put(params)
    jax.block_until_ready((xs, ys, p))
    t0 = time.perf_counter()
    p, losses = epoch(p, xs, ys)
    jax.block_until_ready((p, losses))
    return time.perf_counter() - t0, np.asarray(losses, dtype=np.float64)


@lru_cache(maxsize=None)
def _jit_forward():
    import jax
    return jax.jit(_forward)


def infer(params: Params, x):
    """The jitted forward over ``x`` (on the host); (seconds, outputs as NumPy)."""
    import jax
    import numpy as np
    forward = _jit_forward()
    p = jax.device_put(params)
    t0 = time.perf_counter()
    out = forward(p, x).block_until_ready()
    return time.perf_counter() - t0, np.asarray(out)


def train_float64(params: Params, x, y, bs: int, steps: int, lr: float):
    """:func:`train_step` in float64 (untimed: the loss check's reference run)."""
    import numpy as np
    params64 = [(w.astype(np.float64), b.astype(np.float64)) for w, b in params]
    return train_step(params64, x[:steps * bs].astype(np.float64), y, bs, steps, lr)
