"""Workload 7, memory: peak RSS of ``handprop train`` (defaults, and ``--model cnn --epochs 1``) and
of the equivalent PyTorch script, each in a child process that reports its own VmHWM."""
from __future__ import annotations

import os
import time

from children import python

from handprop.bench.dataset import mnist_folder
from handprop.bench.report import Row

TORCH_TRAIN = r'''
"""PyTorch equivalent of `handprop train` with its defaults (memory benchmark)."""
import sys, time
import numpy as np
import torch
from handprop.data import load_dataset, find_dataset
cfg = {cfg!r}
torch.manual_seed(cfg["seed"])
(xtr, ytr), (xte, yte) = load_dataset(cfg["dataset"], find_dataset(cfg["dataset"], {data_dir!r}), download=False)
x = np.divide(xtr.reshape(len(xtr), -1), np.float32(255), dtype=np.float32)
xt = np.divide(xte.reshape(len(xte), -1), np.float32(255), dtype=np.float32)
n_train = len(x) - cfg["valid"]
mean, std = float(x[:n_train].mean(dtype=np.float64)), float(x[:n_train].std(dtype=np.float64))
for a in (x, xt):
    a -= np.float32(mean); a /= np.float32(std)
X, Y = torch.from_numpy(x), torch.from_numpy(ytr.astype(np.int64))
Xte, Yte = torch.from_numpy(xt), torch.from_numpy(yte.astype(np.int64))
if cfg["model"] == "mlp":
    sizes = [x.shape[1], *cfg["hidden"], 10]
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        lin = torch.nn.Linear(a, b)
        torch.nn.init.kaiming_normal_(lin.weight, nonlinearity="relu"); torch.nn.init.zeros_(lin.bias)
        layers.append(lin)
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
else:  # handprop's network and initial weights, through its exporter
    from handprop.bench.models import handprop_cnn, torch_twin
    model = torch_twin(handprop_cnn(cfg["seed"]))
    X, Xte = X.reshape(-1, 1, 28, 28), Xte.reshape(-1, 1, 28, 28)
Xtr, Ytr, Xva, Yva = X[:n_train], Y[:n_train], X[n_train:], Y[n_train:]
def outputs(X, bs):  # eval in chunks as handprop does: validation batches of 1000, test chunks of 10,000
    return torch.cat([model(X[i:i + bs]) for i in range(0, len(X), bs)])
assert cfg["optimizer"] == "adamw" and cfg["schedule"] == "onecycle", "mirror handprop's defaults"
opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
bs, epochs = cfg["batch_size"], cfg["epochs"]
steps = (n_train + bs - 1) // bs
sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg["lr"], total_steps=steps * epochs, pct_start=0.25,
                                            cycle_momentum=False)  # handprop's one_cycle
g = torch.Generator().manual_seed(cfg["seed"])
for epoch in range(epochs):
    model.train()
    perm = torch.randperm(n_train, generator=g)
    for i in range(steps):
        idx = perm[i * bs:(i + 1) * bs]
        loss = torch.nn.functional.cross_entropy(model(Xtr[idx]), Ytr[idx])
        opt.zero_grad(); loss.backward(); opt.step(); sched.step()
    model.eval()
    with torch.no_grad():
        va = (outputs(Xva, 1000).argmax(1) == Yva).float().mean().item() if len(Xva) else float("nan")
    print(f"epoch {{epoch + 1}} loss {{loss.item():.4f}} valid acc {{va:.4f}}", flush=True)
with torch.no_grad():
    print("test acc", (outputs(Xte, 10000).argmax(1) == Yte).float().mean().item())
torch.save(model.state_dict(), sys.argv[1])
'''


# Runs a module (-m NAME) or a script in this interpreter, then writes the process's VmHWM
# (peak RSS of its own address space) to the file named by $HANDPROP_BENCH_HWM.
_HWM_WRAPPER = r"""
import os, runpy, sys
target = sys.argv[1]
sys.argv = sys.argv[2:] if target == "-m" else sys.argv[1:]
code = 0
try:
    if target == "-m":
        runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
    else:
        runpy.run_path(target, run_name="__main__")
except SystemExit as e:
    code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
with open("/proc/self/status") as f:
    hwm = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
with open(os.environ["HANDPROP_BENCH_HWM"], "w") as f:
    f.write(str(hwm))
sys.exit(code)
"""


def _peak_rss_mb(args: list[str], cwd: str, env: dict[str, str] | None = None) -> tuple[float, float, int, str]:
    """(peak RSS in MB, wall seconds, exit code, output tail) of ``python <args>`` in a child.

    The peak is the child's own VmHWM, read by the child at exit. Not ``ru_maxrss`` of
    wait4/RUSAGE_CHILDREN: Linux carries the *parent's* RSS into a child's ru_maxrss through
    fork/vfork + exec, so a child of this (large) process would report the parent's size.
    """
    import subprocess
    import tempfile
    with tempfile.NamedTemporaryFile(suffix=".hwm", delete=False) as f:
        hwm_file = f.name
    env = {**(env if env is not None else os.environ), "HANDPROP_BENCH_HWM": hwm_file}
    t0 = time.perf_counter()
    res = subprocess.run([python(), "-c", _HWM_WRAPPER, *args], cwd=cwd, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    wall = time.perf_counter() - t0
    output = res.stdout.decode(errors="replace").strip()
    try:
        with open(hwm_file) as f:
            peak = int(f.read()) / 1024.0
    except (OSError, ValueError):
        peak = float("nan")
    finally:
        os.unlink(hwm_file)
    return peak, wall, res.returncode, output.splitlines()[-1] if output else ""


def write_torch_train(path: str, cfg: dict, folder) -> None:
    """The PyTorch equivalent of ``handprop train`` with the config ``cfg``, as a script at ``path``."""
    with open(path, "w") as f:
        f.write(TORCH_TRAIN.format(cfg={k: cfg[k] for k in (
            "dataset", "seed", "valid", "model", "hidden", "optimizer", "schedule", "lr", "weight_decay",
            "batch_size", "epochs")}, data_dir=str(folder)))


#: (workload, ``handprop train`` settings other than the defaults): the MLP, and one epoch of the CNN
#: (its evaluation of the 10,000 test images in one chunk is what peaks, in both scripts).
RUNS: tuple[tuple[str, dict], ...] = (("memory", {}), ("memory_cnn", {"model": "cnn", "epochs": 1}))


def bench_memory(data_dir: str | None, use_torch: bool) -> list[Row]:
    """Peak RSS of each run of :data:`RUNS` and of the equivalent PyTorch script."""
    return [_memory_row(workload, settings, data_dir, use_torch) for workload, settings in RUNS]


def _memory_row(workload: str, settings: dict, data_dir: str | None, use_torch: bool) -> Row:
    import tempfile

    from handprop.train.config import TrainConfig
    cfg = TrainConfig.create(**settings).to_dict()
    flags = [a for k, v in settings.items() for a in (f"--{k}", str(v))]
    name = " ".join(["7 peak RSS, handprop train", *flags])
    folder = mnist_folder(data_dir)
    if folder is None:
        return Row(workload, name, "MB", None, check="skipped: MNIST not found")
    with tempfile.TemporaryDirectory() as tmp:
        # The data are found through $HANDPROP_DATA (<dir>/mnist), as a user would set it.
        env = {**os.environ, "HANDPROP_DATA": str(folder.parent) if folder.name == "mnist" else str(folder)}
        cmd = ["-m", "handprop", "train", "--quiet", "--offline", *flags, "--out", os.path.join(tmp, "run")]
        hp_rss, hp_wall, code, tail = _peak_rss_mb(cmd, tmp, env)
        row = Row(workload, name, "MB", hp_rss if code == 0 else None,
                  extra={"handprop_wall_s": hp_wall, "handprop_tail": tail})
        if code != 0:
            row.check = f"handprop train failed ({code}): {tail}"
            return row
        if use_torch:
            script = os.path.join(tmp, "torch_train.py")
            write_torch_train(script, cfg, folder)
            t_rss, t_wall, tcode, ttail = _peak_rss_mb([script, os.path.join(tmp, "t.pt")], tmp)
            if tcode == 0:
                row.torch = t_rss
                row.check = f"wall {hp_wall:.1f} s vs {t_wall:.1f} s; {tail} | {ttail}"
            else:
                row.check = f"torch script failed ({tcode}): {ttail}"
    return row
