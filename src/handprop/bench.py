"""``handprop bench``: handprop against PyTorch, side by side, in one process.

Workloads (``--only`` takes their names, comma-separated):

1. ``train64``  the notebooks' MLP 784-50-10, ReLU, cross-entropy, SGD, batch 64, one epoch of 50,000
2. ``train512`` the same at batch 512
3. ``compute``  a compute-bound MLP 784-1024-1024-10, batch 512, reported in GFLOP/s against the
   float32 matrix-multiply rate this machine reaches on a square sgemm (timed here too)
4. ``infer``    forward only of workload 1's model over the 10,000 test images
5. ``data``     loading + normalising MNIST (``benchmarks/bench_data.py``, when present)
6. ``startup``  ``import handprop`` and ``handprop --help``, each in a fresh interpreter
7. ``memory``   peak RSS of ``handprop train`` (defaults) vs the equivalent PyTorch script

Fairness rules. Both libraries get the same data (real MNIST when found, else random data of the
same shape, flagged), the same batches in the same order, the same initial weights (PyTorch's
layers are built from handprop's: ``torch weight = W.T``), the same hyperparameters and the same
number of threads: NumPy's BLAS thread count is read (threadpoolctl when installed, else the
``OPENBLAS_NUM_THREADS`` / ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` variables, else the CPU count)
and ``torch.set_num_threads`` is set to it; ``--threads N`` sets both (the NumPy side needs
threadpoolctl; without it set ``OPENBLAS_NUM_THREADS=N`` before starting). Runs alternate
A B A B after one untimed warm-up of each and the table shows medians. Each training workload
also records every step's loss in both libraries: trajectories that differ by more than 1e-3
(relative) mean the two computed different things, and the workload is marked VOID.

The workloads live here; ``benchmarks/*.py`` are thin entry points. PyTorch is imported only
inside the functions that time it, and this module imports nothing heavy at import time
(``handprop --help`` loads it to build the parser).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

# json, subprocess and friends are imported where used: ``handprop --help`` imports this
# module to build the parser and must stay fast.

WORKLOADS = ("train64", "train512", "compute", "infer", "data", "startup", "memory")
DEFAULT_WORKLOADS = ("train64", "train512", "compute", "infer", "data", "startup")
LOSS_RTOL = 1e-3

#: Targets: handprop/PyTorch ratio of the median time (or absolute seconds for start-up).
TARGETS = {"train64": 0.6, "train512": 0.8, "compute": 1.0, "infer": 0.6, "memory": 0.6,
           "import": 0.15, "help": 0.3, "sgemm_fraction": 0.6}


# --------------------------------------------------------------------------------------------
# results
def median(values: list[float]) -> float:
    v = sorted(values)
    k = len(v) // 2
    return v[k] if len(v) % 2 else (v[k - 1] + v[k]) / 2


class Row:
    """One line of the table: a workload's medians, their ratio, the target and the check."""

    def __init__(self, name: str, unit: str, handprop: float | None, torch: float | None = None,
                 target: str = "", met: bool | None = None, check: str = "",
                 extra: dict[str, Any] | None = None):
        self.name, self.unit, self.handprop, self.torch = name, unit, handprop, torch
        self.target, self.met, self.check, self.extra = target, met, check, extra or {}

    @property
    def ratio(self) -> float | None:
        if self.handprop is None or not self.torch:
            return None
        return self.handprop / self.torch


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "s":
        return f"{value * 1e6:.0f} us" if value < 1e-3 else f"{value * 1e3:.2f} ms" if value < 1 else f"{value:.2f} s"
    if unit == "MB":
        return f"{value:.0f} MB"
    return f"{value:.3g} {unit}"


def format_table(rows: list[Row]) -> str:
    header = ("workload", "handprop", "pytorch", "ratio", "target", "met", "check")
    lines = [header]
    for r in rows:
        met = "-" if r.met is None else ("yes" if r.met else "NO")
        ratio = "-" if r.ratio is None else f"{r.ratio:.2f}"
        lines.append((r.name, _fmt(r.handprop, r.unit), _fmt(r.torch, r.unit), ratio, r.target, met, r.check))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for k, line in enumerate(lines):
        out.append("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip())
        if k == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


# --------------------------------------------------------------------------------------------
# threads
_LIMITER: Any = None  # keeps a threadpoolctl limit alive for the whole run


def blas_threads() -> tuple[int, str]:
    """(threads NumPy's BLAS uses, how that was found)."""
    import numpy as np  # noqa: F401  (loads the BLAS so threadpoolctl can see it)
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        pass
    else:
        blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        if blas:
            i = blas[0]
            return int(i["num_threads"]), f"threadpoolctl: {i.get('internal_api')} {i.get('version')}"
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        if os.environ.get(var, "").strip().isdigit():
            return int(os.environ[var]), f"${var}"
    return os.cpu_count() or 1, "cpu count (no threadpoolctl, no thread variables)"


def set_blas_threads(n: int) -> bool:
    """Limit NumPy's BLAS to ``n`` threads for the rest of the process (needs threadpoolctl)."""
    global _LIMITER
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return False
    _LIMITER = threadpool_limits(limits=n, user_api="blas")
    return True


def _settle(seconds: float = 0.15) -> None:
    """Let the idle thread pool of the other library stop spinning before the next timed run."""
    time.sleep(seconds)


# --------------------------------------------------------------------------------------------
# data
class Data:
    """The arrays both libraries train on, and where they came from."""

    def __init__(self, x_train: Any, y_train: Any, x_test: Any, y_test: Any, source: str):
        self.x_train, self.y_train, self.x_test, self.y_test = x_train, y_train, x_test, y_test
        self.source = source


def load_data(data_dir: str | None = None, synthetic: bool = False) -> Data:
    """MNIST as the notebooks use it: 50,000 train / 10,000 test, float32 (N, 784) normalised
    with the training mean and std, labels int64. Random data of the same shape when MNIST is
    not found (or ``synthetic``)."""
    import numpy as np
    if not synthetic:
        try:
            from .data import Normalize, load_dataset, to_float_flat
            folder = _mnist_folder(data_dir)
            if folder is not None:
                (xtr, ytr), (xte, yte) = load_dataset("mnist", folder, download=False)
                x, xt = to_float_flat(xtr[:50000]), to_float_flat(xte)
                norm = Normalize().fit(x)
                norm(x, out=x)
                norm(xt, out=xt)
                return Data(x, ytr[:50000].astype(np.int64), xt, yte.astype(np.int64), f"MNIST ({folder})")
        except (ImportError, ValueError, OSError) as exc:
            print(f"bench: MNIST not loaded ({exc}); using random data", file=sys.stderr)
    rng = np.random.default_rng(0)
    return Data(rng.standard_normal((50000, 784), dtype=np.float32), rng.integers(0, 10, 50000),
                rng.standard_normal((10000, 784), dtype=np.float32), rng.integers(0, 10, 10000),
                "random (MNIST not found)")


# --------------------------------------------------------------------------------------------
# models
def handprop_mlp(sizes: tuple[int, ...], seed: int = 0):
    """Linear/ReLU stack with PyTorch's default init, drawn from ``seed``."""
    from . import nn
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b, rng=seed + i))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def torch_mlp(model):
    """The same network in PyTorch, with a copy of handprop's weights (torch weight = W.T)."""
    import torch
    from . import nn
    layers = []
    for layer in model:
        if isinstance(layer, nn.Linear):
            lin = torch.nn.Linear(layer.in_features, layer.out_features)
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(layer.weight.data.T.copy()))
                lin.bias.copy_(torch.from_numpy(layer.bias.data.copy()))
            layers.append(lin)
        else:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def _copy_model(model):
    import copy
    return copy.deepcopy(model)


# --------------------------------------------------------------------------------------------
# training loops (what is timed)
def train_handprop(model, x, y, bs: int, steps: int, lr: float):
    """``steps`` SGD steps over consecutive batches; returns (seconds, per-step losses)."""
    import numpy as np
    from . import nn, optim
    crit = nn.CrossEntropyLoss()
    opt = optim.SGD(model.parameters(), lr=lr)
    losses = np.empty(steps)
    t0 = time.perf_counter()
    for i in range(steps):
        xb, yb = x[i * bs:(i + 1) * bs], y[i * bs:(i + 1) * bs]
        out = model(xb)
        losses[i] = crit(out, yb)
        g = crit.backward()
        model.backward(g, input_grad=False)
        opt.step()
        opt.zero_grad()
    return time.perf_counter() - t0, losses


def train_torch(model, x, y, bs: int, steps: int, lr: float):
    """The idiomatic PyTorch loop over the same batches; returns (seconds, per-step losses)."""
    import numpy as np
    import torch
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    losses = np.empty(steps)
    cross_entropy = torch.nn.functional.cross_entropy
    t0 = time.perf_counter()
    for i in range(steps):
        xb, yb = xt[i * bs:(i + 1) * bs], yt[i * bs:(i + 1) * bs]
        loss = cross_entropy(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses[i] = loss.item()
    return time.perf_counter() - t0, losses


def compare_losses(a, b) -> tuple[bool, float]:
    """(trajectories agree, max relative difference)."""
    import numpy as np
    diff = float(np.max(np.abs(a - b) / np.maximum(1.0, np.abs(b))))
    return bool(diff <= LOSS_RTOL and np.all(np.isfinite(a))), diff


def _alternate(fns: list[Callable[[], float]], repeats: int) -> list[list[float]]:
    """Run each fn once untimed, then ``repeats`` rounds A B A B ...; per-fn lists of times."""
    for fn in fns:
        fn()
        _settle()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for k, fn in enumerate(fns):
            times[k].append(fn())
            _settle()
    return times


def bench_train(name: str, data: Data, sizes: tuple[int, ...], bs: int, steps: int, lr: float,
                repeats: int, use_torch: bool, seed: int = 0) -> Row:
    """Time ``steps`` training steps in each library (from identical initial weights)."""
    init = handprop_mlp(sizes, seed)
    x, y = data.x_train, data.y_train
    result: dict[str, Any] = {}

    def run_hp() -> float:
        seconds, result["hp_losses"] = train_handprop(_copy_model(init), x, y, bs, steps, lr)
        return seconds

    fns = [run_hp]
    if use_torch:
        def run_t() -> float:
            seconds, result["t_losses"] = train_torch(torch_mlp(init), x, y, bs, steps, lr)
            return seconds
        fns.append(run_t)
    times = _alternate(fns, repeats)
    hp_step = median(times[0]) / steps
    row = Row(name, "s", hp_step, extra={"steps": steps, "times": times, "batch": bs, "lr": lr})
    if use_torch:
        row.torch = median(times[1]) / steps
        ok, diff = compare_losses(result["hp_losses"], result["t_losses"])
        row.check = f"losses max rel diff {diff:.1e}" + ("" if ok else " VOID")
        row.extra["loss_ok"] = ok
    row.extra["final_loss"] = float(result["hp_losses"][-1])
    return row


def matmul_flops(sizes: tuple[int, ...], bs: int) -> float:
    """FLOPs of one training step's matrix products: forward, weight grads, and input grads of
    every layer but the first (``input_grad=False``)."""
    pairs = [a * b for a, b in zip(sizes[:-1], sizes[1:])]
    return 2.0 * bs * (2 * sum(pairs) + sum(pairs[1:]))


def sgemm_rate(n: int = 2048, repeats: int = 5, use_torch: bool = True) -> dict[str, float]:
    """GFLOP/s of a square float32 matrix product (NumPy's BLAS, and PyTorch's)."""
    import numpy as np
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    c = np.empty_like(a)
    fns = {"numpy": lambda: np.matmul(a, b, out=c)}
    if use_torch:
        import torch
        ta, tb, tc = torch.from_numpy(a), torch.from_numpy(b), torch.empty(n, n)
        fns["torch"] = lambda: torch.mm(ta, tb, out=tc)
    rates = {}
    for name, fn in fns.items():
        fn()
        ts = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        rates[name] = 2.0 * n ** 3 / min(ts) / 1e9
        _settle()
    return rates


def bench_infer(data: Data, repeats: int, use_torch: bool) -> Row:
    """Forward pass of workload 1's model over the 10,000 test images, in eval / no_grad mode."""
    import numpy as np
    model = handprop_mlp((784, 50, 10)).eval()
    x = data.x_test
    out: dict[str, Any] = {}

    def run_hp() -> float:
        t0 = time.perf_counter()
        out["hp"] = model(x)
        return time.perf_counter() - t0

    fns = [run_hp]
    if use_torch:
        import torch
        tmodel, xt = torch_mlp(model), torch.from_numpy(x)

        def run_t() -> float:
            t0 = time.perf_counter()
            with torch.no_grad():
                out["t"] = tmodel(xt)
            return time.perf_counter() - t0
        fns.append(run_t)
    times = _alternate_fast(fns, repeats)
    row = Row("4 inference 784-50-10, 10k images", "s", median(times[0]),
              target=f"<= {TARGETS['infer']}x", extra={"times": times})
    if use_torch:
        row.torch = median(times[1])
        ref = out["t"].numpy()
        diff = float(np.max(np.abs(out["hp"] - ref)) / max(1.0, float(np.max(np.abs(ref)))))
        same = float(np.mean(out["hp"].argmax(1) == ref.argmax(1)))
        ok = diff <= LOSS_RTOL and same == 1.0
        row.check = f"outputs max rel diff {diff:.1e}" + ("" if ok else " VOID")
        row.extra["loss_ok"] = ok
    return row


def _alternate_fast(fns: list[Callable[[], float]], repeats: int) -> list[list[float]]:
    """A B A B for short runs: a short pause between libraries, none within."""
    for fn in fns:
        fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for k, fn in enumerate(fns):
            for _ in range(3):
                times[k].append(fn())
            _settle(0.02)
    return times


# --------------------------------------------------------------------------------------------
# start-up, data loading and memory: fresh processes
def _python() -> str:
    return sys.executable


def _child_seconds(code: str, runs: int) -> float:
    """Median of what ``code`` prints (a duration), each run in a fresh interpreter."""
    import subprocess
    values = []
    for _ in range(runs):
        res = subprocess.run([_python(), "-c", code], capture_output=True, text=True, check=True)
        values.append(float(res.stdout.strip().splitlines()[-1]))
    return median(values)


def _wall_seconds(cmd: list[str], runs: int) -> float:
    import subprocess
    values = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True)
        values.append(time.perf_counter() - t0)
    return median(values)


_IMPORT_CODE = ("import sys, time\nt = time.perf_counter()\nimport {mod}\nd = time.perf_counter() - t\n"
                "{extra}print(d)")


def bench_startup(runs: int, use_torch: bool) -> list[Row]:
    import subprocess
    heavy = "bad = [m for m in ('torch', 'tqdm', 'matplotlib') if m in sys.modules]\n" \
            "print('heavy:' + ','.join(bad))\n"
    res = subprocess.run([_python(), "-c", _IMPORT_CODE.format(mod="handprop", extra=heavy)],
                         capture_output=True, text=True, check=True)
    bad = [line for line in res.stdout.splitlines() if line.startswith("heavy:")][0][6:]
    imp = _child_seconds(_IMPORT_CODE.format(mod="handprop", extra=""), runs)
    row_imp = Row("6 import handprop", "s", imp, target=f"< {TARGETS['import']} s", met=imp < TARGETS["import"] and not bad,
                  check="no torch/tqdm/matplotlib" if not bad else f"imports {bad}")
    if use_torch:
        row_imp.torch = _child_seconds(_IMPORT_CODE.format(mod="torch", extra=""), max(1, runs // 2))
        row_imp.check += " (pytorch: import torch)"
    script = Path(_python()).with_name("handprop")
    cmd = [str(script), "--help"] if script.exists() else [_python(), "-m", "handprop", "--help"]
    helped = _wall_seconds(cmd, runs)
    baseline = _wall_seconds([_python(), "-c", "pass"], runs)
    row_help = Row("6 handprop --help (wall)", "s", helped, target=f"< {TARGETS['help']} s",
                   met=helped < TARGETS["help"], check=f"bare python -c pass: {baseline * 1e3:.0f} ms")
    return [row_imp, row_help]


def _mnist_folder(data_dir: str | None) -> Path | None:
    """The MNIST folder: ``data_dir`` / the dataset search path / ``../shared/data`` of the repo."""
    from .data import find_dataset
    folder = find_dataset("mnist", data_dir)
    if folder is None and data_dir is None:
        shared = Path(__file__).resolve().parents[3] / "shared" / "data"
        folder = find_dataset("mnist", shared) if shared.is_dir() else None
    return folder


def bench_data_script(quick: bool, data_dir: str | None = None) -> Row | None:
    """Workload 5 is the data engineer's ``benchmarks/bench_data.py``: run it when present."""
    import subprocess
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_data.py"
    if not script.exists():
        return None
    folder = _mnist_folder(data_dir)
    if folder is None:
        return Row("5 load + normalise MNIST", "s", None, check="skipped: MNIST not found")
    cmd = [_python(), str(script), "--data-dir", str(folder)] + (["--runs", "3"] if quick else [])
    res = subprocess.run(cmd, capture_output=True, text=True)
    text = (res.stdout + res.stderr).strip()
    print("\n[5 data load: benchmarks/bench_data.py]\n" + text)
    import re
    medians = [float(m) for m in re.findall(r"median ([0-9.]+) s", text)]
    return Row("5 load + normalise MNIST (bench_data.py)", "s", medians[-1] if medians else None,
               check="whole dataset, verified; details above" if res.returncode == 0
               else f"bench_data.py failed ({res.returncode})")


_TORCH_TRAIN = r'''
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
Xtr, Ytr, Xva, Yva = X[:n_train], Y[:n_train], X[n_train:], Y[n_train:]
Xte, Yte = torch.from_numpy(xt), torch.from_numpy(yte.astype(np.int64))
sizes = [x.shape[1], *cfg["hidden"], 10]
layers = []
for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
    lin = torch.nn.Linear(a, b)
    torch.nn.init.kaiming_normal_(lin.weight, nonlinearity="relu"); torch.nn.init.zeros_(lin.bias)
    layers.append(lin)
    if i < len(sizes) - 2:
        layers.append(torch.nn.ReLU())
model = torch.nn.Sequential(*layers)
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
        va = (model(Xva).argmax(1) == Yva).float().mean().item() if len(Xva) else float("nan")
    print(f"epoch {{epoch + 1}} loss {{loss.item():.4f}} valid acc {{va:.4f}}", flush=True)
with torch.no_grad():
    print("test acc", (model(Xte).argmax(1) == Yte).float().mean().item())
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
    res = subprocess.run([_python(), "-c", _HWM_WRAPPER, *args], cwd=cwd, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
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


def bench_memory(data_dir: str | None, use_torch: bool) -> Row:
    """Peak RSS of ``handprop train`` (defaults) and of the equivalent PyTorch script."""
    import tempfile
    from .train import config as C
    cfg = C.resolve(None, {})
    folder = _mnist_folder(data_dir)
    if folder is None:
        return Row("7 peak RSS, handprop train", "MB", None, check="skipped: MNIST not found")
    with tempfile.TemporaryDirectory() as tmp:
        # The data are found through $HANDPROP_DATA (<dir>/mnist), as a user would set it.
        env = {**os.environ, "HANDPROP_DATA": str(folder.parent) if folder.name == "mnist" else str(folder)}
        cmd = ["-m", "handprop", "train", "--quiet", "--offline", "--out", os.path.join(tmp, "run")]
        hp_rss, hp_wall, code, tail = _peak_rss_mb(cmd, tmp, env)
        row = Row("7 peak RSS, handprop train", "MB", hp_rss if code == 0 else None,
                  target=f"<= {TARGETS['memory']}x", extra={"handprop_wall_s": hp_wall, "handprop_tail": tail})
        if code != 0:
            row.check = f"handprop train failed ({code}): {tail}"
            return row
        if use_torch:
            script = os.path.join(tmp, "torch_train.py")
            with open(script, "w") as f:
                f.write(_TORCH_TRAIN.format(cfg={k: cfg[k] for k in (
                    "dataset", "seed", "valid", "hidden", "optimizer", "schedule", "lr", "weight_decay",
                    "batch_size", "epochs")}, data_dir=str(folder)))
            t_rss, t_wall, tcode, ttail = _peak_rss_mb([script, os.path.join(tmp, "t.pt")], tmp)
            if tcode == 0:
                row.torch = t_rss
                row.check = f"wall {hp_wall:.1f} s vs {t_wall:.1f} s; {tail} | {ttail}"
            else:
                row.check = f"torch script failed ({tcode}): {ttail}"
    return row


# --------------------------------------------------------------------------------------------
# the command
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``handprop bench`` flags (also used by ``benchmarks/*.py``)."""
    parser.add_argument("--quick", action="store_true", help="few steps and repeats (a smoke test, seconds)")
    parser.add_argument("--only", metavar="LIST", help=f"comma-separated workloads: {','.join(WORKLOADS)} "
                        f"(default: all but memory)")
    from .cli import positive_int

    parser.add_argument("--repeats", type=positive_int, metavar="N", help="timed runs per library (default 5; quick 2)")
    parser.add_argument("--threads", type=positive_int, metavar="N", help="threads for NumPy's BLAS and PyTorch "
                        "(default: what NumPy's BLAS uses)")
    parser.add_argument("--no-torch", action="store_true", help="time handprop only")
    parser.add_argument("--synthetic", action="store_true", help="random data instead of MNIST")
    parser.add_argument("--data-dir", metavar="DIR",
                        help="folder holding the MNIST IDX files (default: the dataset search path)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")


def _selected(args: argparse.Namespace) -> list[str]:
    if not getattr(args, "only", None):
        return list(DEFAULT_WORKLOADS)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        raise ValueError(f"unknown workload(s) {', '.join(unknown)}; expected {', '.join(WORKLOADS)}")
    return names


def run(args: argparse.Namespace) -> int:
    """Run the selected workloads, print the table; 0 when every comparison is valid."""
    import numpy as np
    selected = _selected(args)
    json_path = getattr(args, "json", None)
    if json_path and not os.access(Path(json_path).resolve().parent, os.W_OK):
        raise ValueError(f"--json {json_path}: cannot write into {Path(json_path).resolve().parent}")
    quick = bool(getattr(args, "quick", False))
    repeats = getattr(args, "repeats", None) or (2 if quick else 5)
    data_dir = getattr(args, "data_dir", None)
    use_torch = not getattr(args, "no_torch", False)
    if use_torch:
        try:
            import torch
        except ImportError:
            print("bench: PyTorch is not installed; timing handprop alone", file=sys.stderr)
            use_torch = False
    threads = getattr(args, "threads", None)
    if threads:
        if not set_blas_threads(threads):
            print("bench: threadpoolctl is not installed: NumPy's BLAS threads are fixed at start-up "
                  "(set OPENBLAS_NUM_THREADS)", file=sys.stderr)
    n_threads, how = blas_threads()
    if use_torch:
        torch.set_num_threads(n_threads)
    print(f"handprop bench: numpy {np.__version__}, BLAS threads {n_threads} ({how})"
          + (f"; torch {torch.__version__}, threads {torch.get_num_threads()}" if use_torch else "")
          + f"; {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}"
          + ("; quick mode" if quick else ""), flush=True)

    rows: list[Row] = []
    data = None
    if any(w in selected for w in ("train64", "train512", "compute", "infer")):
        data = load_data(data_dir, getattr(args, "synthetic", False))
        print(f"data: {data.source}", flush=True)
    if "train64" in selected:
        steps = 150 if quick else 50000 // 64
        rows.append(bench_train(f"1 train 784-50-10 b64 ({steps} steps), per step", data, (784, 50, 10), 64,
                                steps, 0.2, repeats, use_torch))
        rows[-1].target = f"<= {TARGETS['train64']}x"
    if "train512" in selected:
        steps = 30 if quick else 50000 // 512
        rows.append(bench_train(f"2 train 784-50-10 b512 ({steps} steps), per step", data, (784, 50, 10), 512,
                                steps, 0.2, repeats, use_torch))
        rows[-1].target = f"<= {TARGETS['train512']}x"
    if "compute" in selected:
        sizes, bs = (784, 1024, 1024, 10), 512
        steps = 4 if quick else 20
        row = bench_train(f"3 train 784-1024-1024-10 b512 ({steps} steps), per step", data, sizes, bs, steps, 0.1,
                          repeats, use_torch)
        rates = sgemm_rate(1024 if quick else 2048, use_torch=use_torch)
        peak = max(rates.values())
        flops = matmul_flops(sizes, bs)
        hp_rate = flops / row.handprop / 1e9
        row.target = f"<= {TARGETS['compute']}x"
        row.extra.update({"sgemm_gflops": rates, "handprop_gflops": hp_rate})
        rows.append(row)
        t_rate = flops / row.torch / 1e9 if row.torch else None
        frac = hp_rate / peak
        rows.append(Row("3 ... achieved GFLOP/s (sgemm: " + ", ".join(f"{k} {v:.0f}" for k, v in rates.items())
                        + ")", "GF/s", hp_rate, t_rate, target=f">= {TARGETS['sgemm_fraction']:.0%} sgemm",
                        met=frac >= TARGETS["sgemm_fraction"], check=f"{frac:.0%} of sgemm {peak:.0f} GFLOP/s"))
    if "infer" in selected:
        rows.append(bench_infer(data, repeats * (2 if quick else 4), use_torch))
    if "data" in selected:
        row = bench_data_script(quick, data_dir)
        if row is not None:
            rows.append(row)
    if "startup" in selected:
        rows.extend(bench_startup(3 if quick else 7, use_torch))
    if "memory" in selected:
        rows.append(bench_memory(data_dir, use_torch))

    for r in rows:
        if r.met is None and r.ratio is not None and r.target.startswith("<="):
            r.met = r.ratio <= float(r.target.split()[1].rstrip("x")) and r.extra.get("loss_ok", True)
    print()
    print(format_table(rows))
    print("\nratio = handprop / pytorch (time per step, time, or peak RSS; for GFLOP/s higher is better; "
          "for workload 3 the target is a time ratio <= 1.0, i.e. at least PyTorch's throughput).")
    void = [r.name for r in rows if r.extra.get("loss_ok") is False]
    if void:
        print(f"VOID (handprop and PyTorch computed different things): {', '.join(void)}")
    if getattr(args, "json", None):
        import json

        from .serialize import atomic_write
        with atomic_write(args.json, "w") as f:
            json.dump([{"name": r.name, "unit": r.unit, "handprop": r.handprop, "torch": r.torch, "ratio": r.ratio,
                        "target": r.target, "met": r.met, "check": r.check, **{k: v for k, v in r.extra.items()
                        if k != "times"}} for r in rows], f, indent=1, default=str)
    return 1 if void else 0


def main(argv: list[str] | None = None, default_only: str | None = None) -> int:
    """Entry point of ``benchmarks/*.py``: the ``handprop bench`` flags, another default ``--only``."""
    parser = argparse.ArgumentParser(prog=Path(sys.argv[0]).name, description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    if default_only and not args.only:
        args.only = default_only
    return run(args)
