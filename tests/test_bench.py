"""`handprop bench` and the acceptance suite run and print their tables; the loss check tells
rounding from a real difference; the installed package stands alone. Timings are never asserted."""
from __future__ import annotations

import ast
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from handprop.bench import workloads as w
from handprop.bench.agreement import F32_RTOL, F64_RTOL, check_losses, loss_diff
from handprop.bench.cli import selected
from handprop.bench.loops import train_handprop, train_torch
from handprop.bench.models import copy_model, handprop_mlp, torch_twin
from handprop.bench.jax_peer import net_params
from handprop.bench.load import competing_process
from handprop.bench.report import Row, format_load_table, format_table
from handprop.bench.worker import Worker
from handprop.cli import main

HAS_JAX = importlib.util.find_spec("jax") is not None
needs_jax = pytest.mark.skipif(not HAS_JAX, reason="JAX is not installed")
ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "handprop"
BENCHMARKS = ROOT / "benchmarks"


def _table(out: str) -> dict[str, str]:
    """The table's lines by their leading workload number and words, e.g. '4 inference'."""
    return {" ".join(line.split()[:2]): line for line in out.splitlines() if line[:1].isdigit()}


def test_bench_quick_prints_every_workload_with_a_valid_comparison(torch, capsys):
    assert main(["bench", "--quick", "--synthetic", "--threads", "1", "--repeats", "1", "--no-jax"]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("workload"))
    assert header.split() == ["workload", "handprop", "pytorch", "ratio", "check"]  # no targets, no JAX here
    rows = _table(out)
    assert {"1 train", "2 train", "3 train", "3 ...", "4 inference", "9 cnn", "10 cnn", "11 conv"} <= rows.keys()
    for key in ("1 train", "2 train", "3 train", "9 cnn"):
        assert "losses: float64" in rows[key]
    assert "outputs max rel diff" in rows["4 inference"] and "outputs max rel diff" in rows["10 cnn"]
    assert "output, dW, dx: float64" in rows["11 conv"]
    assert "VOID" not in out and "data: random (--synthetic)" in out


@pytest.mark.parametrize("argv, message", [
    (["--repeats", "0"], "argument --repeats: must be > 0"),
    (["--only", "train64,nope"], "unknown workload(s) nope"),
    (["--synthetic", "--data-dir", "x"], "drop --data-dir"),
])
def test_bench_rejects_bad_flags_in_one_line(argv, message, capsys):
    try:
        code = main(["bench", *argv])
    except SystemExit as e:  # argparse's own checks
        code = e.code
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1


def test_an_explicit_data_dir_without_mnist_is_an_error(tmp_path, capsys):
    assert main(["bench", "--only", "infer", "--no-torch", "--data-dir", str(tmp_path)]) == 2
    assert f"--data-dir {tmp_path}: the four MNIST IDX files are not there" in capsys.readouterr().err


def test_selected_keeps_the_order_given_and_the_default():
    assert selected(None) == ["train64", "train512", "compute", "infer", "cnn64", "cnninfer", "conv"]
    assert selected(" infer, train64") == ["infer", "train64"]
    assert selected(None, ("a", "b", "c"), ("b",)) == ["b"]


# ---------------------------------------------------------------------------------------------
# the loss check
def _judged(hp32, ref32, hp64=None, ref64=None) -> Row:
    """A training row judged by check_losses; the float64 run defaults to the reference, exactly."""
    row = Row("train64", "1 train", "s", 1e-3, 2e-3)
    hp64 = ref32 if hp64 is None else hp64
    check_losses(row, hp32, hp64, {"pytorch": ref32}, {"pytorch": hp64 if ref64 is None else ref64})
    return row


def test_late_float32_drift_is_not_void_but_a_float64_difference_is():
    ref = np.random.default_rng(0).uniform(0.1, 2.5, 781)
    drifted = ref * (1 + np.r_[np.full(236, 1e-7), np.full(545, 5e-2)])  # the ReLU-kink cascade
    row = _judged(drifted, ref, ref, ref * (1 + 1e-15))
    assert row.agree is True and "VOID" not in row.check
    row = _judged(drifted, ref, ref, ref * (1 + 10 * F64_RTOL))
    assert row.agree is False and row.check.endswith("VOID")


@pytest.mark.parametrize("bad_step, value", [(0, 1.0 + 10 * F32_RTOL), (9, 1.0 + 10 * F32_RTOL), (500, np.nan)])
def test_an_early_float32_difference_or_a_non_finite_loss_is_void(bad_step, value):
    ref = np.ones(781)
    hp = ref.copy()
    hp[bad_step] = value
    assert _judged(hp, ref).agree is False


def test_one_wrong_peer_voids_the_row_whatever_the_others():
    ref = np.random.default_rng(0).uniform(0.1, 2.5, 100)
    row = Row("train64", "1 train", "s", 1e-3, 2e-3)
    check_losses(row, ref, ref, {"pytorch": ref, "jax": ref, "jax scan": ref * 1.01}, {"pytorch": ref, "jax": ref})
    assert row.agree is False and row.extra["loss_diff_float32_first"]["jax scan"] > F32_RTOL
    check_losses(row, ref, ref, {"pytorch": ref, "jax": ref}, {"pytorch": ref, "jax": ref * (1 + 1e-6)})
    assert row.agree is False and row.check.endswith("VOID")


def test_a_float64_run_that_is_not_the_timed_run_is_void():
    ref = np.random.default_rng(0).uniform(0.1, 2.5, 100)
    row = _judged(ref, ref, ref[::-1].copy())  # both float64 runs agree, on other batches
    assert row.agree is False and "float64 run is another run" in row.check


def test_float64_runs_agree_to_rounding_and_a_real_difference_shows(torch):
    rng = np.random.default_rng(1)
    bs, steps = 16, 40
    x = rng.standard_normal((bs * steps, 20), dtype=np.float32)
    y = rng.integers(0, 3, bs * steps)
    init = handprop_mlp((20, 16, 3), seed=3)
    hp, peers = w.float64_losses(init, x, y, bs, steps, 0.2, use_torch=True)
    assert hp.dtype == np.float64 and loss_diff(hp, peers["pytorch"]) <= F64_RTOL
    _, hp32 = train_handprop(copy_model(init), x, y, bs, steps, 0.2)
    assert loss_diff(hp32[:10], hp[:10]) <= F32_RTOL  # the float64 run is the float32 run
    # the PyTorch side's samples out of order by one: not rounding
    shifted = np.roll(np.arange(len(y)), 1)
    _, moved = train_torch(torch_twin(init).double(), x[shifted].astype(np.float64), y[shifted], bs, steps, 0.2)
    assert loss_diff(hp, moved) > 1e3 * F64_RTOL


@needs_jax
def test_jax_trains_the_same_network_on_the_same_batches_and_a_difference_shows():
    rng = np.random.default_rng(1)
    bs, steps = 16, 40
    x = rng.standard_normal((bs * steps, 20), dtype=np.float32)
    y = rng.integers(0, 3, bs * steps)
    init = handprop_mlp((20, 16, 3), seed=3)
    net = net_params(init)
    hp64, _ = w.float64_losses(init, x, y, bs, steps, 0.2, use_torch=False)
    _, hp32 = train_handprop(copy_model(init), x, y, bs, steps, 0.2)
    with Worker(w.JAX_MODULE, 1) as worker:
        xr, yr = worker.put("x", x), worker.put("y", y)
        _, jax64 = worker.call("train_float64", net, xr, yr, bs, steps, 0.2)
        runs32 = [worker.call(kind, net, xr, yr, bs, steps, 0.2)[1] for kind in ("train_step", "train_scan")]
        _, other_lr = worker.call("train_float64", net, xr, yr, bs, steps, 0.25)
    assert loss_diff(jax64, hp64) <= F64_RTOL
    for jax32 in runs32:
        assert jax32.dtype == np.float64 and len(jax32) == steps
        assert loss_diff(jax32[:10], hp32[:10]) <= F32_RTOL
    assert loss_diff(other_lr, hp64) > 1e3 * F64_RTOL


def test_a_worker_reports_a_failed_call_keeps_serving_and_reports_a_failed_start():
    with Worker(w.JAX_MODULE, 1) as worker:
        with pytest.raises(RuntimeError, match="no attribute 'nope'"):
            worker.call("nope")
        spec, params = worker.call("net_params", handprop_mlp((3, 2)))
        assert spec == (("linear",),) and [p[0].shape for p in params] == [(3, 2)]
    if hasattr(os, "sched_getaffinity") and len(os.sched_getaffinity(0)) > 1:
        with Worker("os", 1) as worker:  # the worker is as many CPUs as the others get threads
            assert len(worker.call("sched_getaffinity", 0)) == 1
    with Worker("no_such_module_for_handprop", 1) as broken:
        with pytest.raises(RuntimeError, match="stopped: .*No module named 'no_such_module_for_handprop'"):
            broken.call("anything")


def test_the_competing_process_runs_inside_the_block_only():
    with competing_process() as child:
        assert child.poll() is None
    assert child.poll() is not None


def test_the_load_table_shows_each_librarys_slowdown():
    row = Row("train64", "1 train", "s", 1e-3, 2e-3, 1.5e-3, 1e-3, loaded={"handprop": 1.2e-3, "pytorch": 5e-3})
    rate = Row("compute_gflops", "3 ... GFLOP/s", "GF/s", 100.0, loaded={"handprop": 50.0})
    assert row.slowdown("handprop") == pytest.approx(1.2) and row.slowdown("pytorch") == pytest.approx(2.5)
    assert row.slowdown("jax") is None and rate.slowdown("handprop") == pytest.approx(2.0)
    assert row.ratio_jax == pytest.approx(1.0)  # against the faster of step and scan
    header, _, line = format_load_table([row, rate]).splitlines()  # the rate row repeats its time row
    assert header.split() == ["workload", "handprop", "pytorch"]
    assert line.split()[2:] == ["1.20", "ms", "(1.20x)", "5.00", "ms", "(2.50x)"]


def test_bench_load_runs_every_library_again_under_load(torch, capsys, tmp_path):
    report = tmp_path / "bench.json"
    assert main(["bench", "--quick", "--synthetic", "--only", "train64,infer", "--threads", "1", "--repeats", "1",
                 "--load", "--json", str(report)]) == 0
    out = capsys.readouterr().out
    headers = [line.split() for line in out.splitlines() if line.startswith("workload")]
    libraries = ["handprop", "pytorch", *(["jax", "jax scan"] if HAS_JAX else [])]
    assert headers[1] == ["workload", *[w for name in libraries for w in name.split()]]
    if HAS_JAX:
        assert headers[0][:8] == ["workload", "handprop", "pytorch", "ratio", "jax", "jax", "scan", "vs"]
    loaded = out.split("under load: each workload again")[0].rsplit("workload", 1)[1]
    train = next(line for line in loaded.splitlines() if line.startswith("1 train"))
    assert train.count("x)") == len(libraries)
    import json
    rows = {r["workload"]: r for r in json.loads(report.read_text())}
    assert set(rows["train64"]["slowdown"]) == set(libraries)
    assert rows["train64"]["threads"] == rows["train64"]["threads_loaded"] == 1


def test_the_table_leaves_out_columns_no_row_fills():
    rows = [Row("infer", "4 inference", "s", 0.01)]
    assert format_table(rows).splitlines()[0].split() == ["workload", "handprop"]
    rows[0].torch, rows[0].target, rows[0].met = 0.02, "<= 0.6x", True
    header, _, line = format_table(rows).splitlines()
    assert header.split() == ["workload", "handprop", "pytorch", "ratio", "target", "met"]
    assert line.split()[-4:] == ["0.50", "<=", "0.6x", "yes"]


# ---------------------------------------------------------------------------------------------
# the acceptance suite (benchmarks/, not installed)
def _benchmarks_module(name: str, monkeypatch):
    """benchmarks/<name>.py as a module, without putting benchmarks/ on the path."""
    spec = importlib.util.spec_from_file_location(f"_benchmarks_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_a_void_comparison_meets_no_target(monkeypatch):
    judge = _benchmarks_module("targets", monkeypatch).judge
    fast, void, unjudged = (Row("train64", "1", "s", 1.0, 10.0), Row("train64", "1", "s", 1.0, 10.0, agree=False),
                            Row("data", "5", "s", 0.3))
    quick_import, heavy_import = (Row("import", "6", "s", 0.05, extra={"heavy": heavy}) for heavy in ([], ["torch"]))
    judge([fast, void, unjudged, quick_import, heavy_import])
    assert (fast.target, fast.met) == ("<= 0.4x, <= 1.0x jax", True)
    assert (void.met, unjudged.target, unjudged.met) == (False, "", None)
    assert (quick_import.target, quick_import.met, heavy_import.met) == ("< 0.15 s", True, False)


def test_the_targets_judge_jax_and_the_load_too(monkeypatch):
    judge = _benchmarks_module("targets", monkeypatch).judge
    rows = [Row("train64", "1", "s", 1.0, 10.0, 2.0, 0.9),        # 0.1x PyTorch but slower than JAX's scan
            Row("train512", "2", "s", 1.0, 10.0, 2.0, 1.5),       # faster than both
            Row("train_load", "8", "s", 4.0, 9.0, loaded={"handprop": 5.0, "pytorch": 20.0}),
            Row("train_load", "8", "s", 4.0, 9.0, loaded={"handprop": 5.6, "pytorch": 20.0}),   # 1.4x quiet
            Row("train_load", "8", "s", 4.0, 3.0, loaded={"handprop": 5.0, "pytorch": 4.0})]    # slower than torch
    judge(rows)
    assert [r.met for r in rows] == [False, True, True, False, False]


def test_acceptance_suite_runs_quick_with_its_targets(torch, data_root):
    proc = subprocess.run([sys.executable, str(BENCHMARKS / "acceptance.py"), "--quick", "--synthetic",
                           "--threads", "1", "--repeats", "1", "--only", "infer,data,startup",
                           "--data-dir", str(data_root / "mnist")], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = _table(proc.stdout)
    assert "<= 0.6x" in rows["4 inference"] and "verified" in rows["5 load"]
    assert "< 0.15 s" in rows["6 import"] and "no torch/tqdm/matplotlib" in rows["6 import"]
    assert "< 0.3 s" in rows["6 handprop"]
    for line in (rows["4 inference"], rows["6 import"], rows["6 handprop"]):
        assert " yes " in line or " NO " in line  # judged (the figures themselves are not asserted)


def test_a_bench_script_runs_its_default_workload(torch):
    proc = subprocess.run([sys.executable, str(BENCHMARKS / "bench_inference.py"), "--quick", "--synthetic",
                           "--threads", "1", "--repeats", "1"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert list(_table(proc.stdout)) == ["4 inference"]


# ---------------------------------------------------------------------------------------------
# the installed package stands alone
def _reaches_outside(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id == "__file__":
            found.append(f"line {node.lineno}: __file__ (locates files beside the package)")
        elif isinstance(node, ast.Attribute) and node.attr == "path" and getattr(node.value, "id", "") == "sys":
            found.append(f"line {node.lineno}: sys.path")
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found += [f"line {node.lineno}: imports {n}" for n in names if n.split(".")[0] == "benchmarks"]
    return found


def test_no_installed_module_imports_benchmarks_or_locates_the_checkout():
    found = {str(p.relative_to(PACKAGE)): hits for p in sorted(PACKAGE.rglob("*.py"))
             if (hits := _reaches_outside(ast.parse(p.read_text(), str(p))))}
    assert found == {}
    # the scanner itself sees each kind of reach
    assert len(_reaches_outside(ast.parse("import benchmarks.targets\nfrom benchmarks import x\n"
                                          "import sys\nsys.path.insert(0, __file__)"))) == 4


def _installed_copy(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """The package alone in a site folder (no tests/, benchmarks/ or src/ beside it), and a cwd."""
    site, cwd = tmp_path / "site", tmp_path / "cwd"
    shutil.copytree(PACKAGE, site / "handprop", ignore=shutil.ignore_patterns("__pycache__"))
    cwd.mkdir()
    return {**os.environ, "PYTHONPATH": str(site)}, cwd


def test_an_installed_copy_says_where_the_acceptance_workloads_are(tmp_path):
    env, cwd = _installed_copy(tmp_path)
    which = subprocess.run([sys.executable, "-c", "import handprop; print(handprop.__file__)"], cwd=cwd, env=env,
                           capture_output=True, text=True, check=True)
    assert which.stdout.strip() == str(tmp_path / "site" / "handprop" / "__init__.py")
    for only in ("data", "startup", "memory", "infer,data"):
        proc = subprocess.run([sys.executable, "-m", "handprop", "bench", "--only", only], cwd=cwd, env=env,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2 and proc.stdout == ""
        assert proc.stderr.count("\n") == 1
        assert proc.stderr.startswith("handprop bench: error: ")
        assert f"in a source checkout, run python benchmarks/acceptance.py --only {only}\n" in proc.stderr
    helped = subprocess.run([sys.executable, "-m", "handprop", "bench", "--help"], cwd=cwd, env=env,
                            capture_output=True, text=True, check=True)
    assert "python benchmarks/acceptance.py" in " ".join(helped.stdout.split())


def test_an_installed_copy_runs_its_own_workloads(tmp_path):
    env, cwd = _installed_copy(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "handprop", "bench", "--quick", "--synthetic", "--no-torch",
                           "--only", "infer", "--repeats", "1"], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert list(_table(proc.stdout)) == ["4 inference"]


def test_help_loads_no_workload_module_and_no_optional_library():
    probe = ("import sys\nfrom handprop.cli import main\nfor argv in ([\"--help\"], [\"bench\", \"--help\"]):\n"
             "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
             "print(sorted(m for m in sys.modules if m.startswith('handprop.bench') or m.split('.')[0] in "
             "('torch', 'threadpoolctl', 'tqdm', 'matplotlib')))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "['handprop.bench', 'handprop.bench.cli']"


# ---------------------------------------------------------------------------------------------
# the CNN rows
def _cnn_batches(seed: int, bs: int, steps: int):
    """``steps`` batches of ``bs`` random 1 x 28 x 28 images and labels, and the bench's cnn."""
    from handprop.bench.models import handprop_cnn
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((bs * steps, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, bs * steps),
            handprop_cnn())


def _cnn_session(**kw):
    from handprop.bench.cli import Session
    return Session(quick=True, repeats=1, use_torch=True, data_dir=None, synthetic=True, threads=1, **kw)


def test_the_cnn_is_the_one_handprop_train_builds_and_its_twin_computes_the_same(torch):
    from handprop.bench.models import handprop_cnn
    from handprop.nn import registry
    from handprop.serialize import build_model
    from handprop.train import build
    from handprop.train.config import TrainConfig
    model = handprop_cnn()
    spec = build.model_spec(1, 10, TrainConfig.create(model="cnn"))
    assert registry.layer_config(model) == registry.layer_config(build_model(spec))
    x = np.random.default_rng(0).standard_normal((8, 1, 28, 28), dtype=np.float32)
    for mode in ("train", "eval"):
        getattr(model, mode)()
        twin = torch_twin(model)
        assert twin.training == model.training
        with torch.no_grad():
            np.testing.assert_allclose(twin(torch.from_numpy(x)).numpy(), model(x), rtol=1e-4, atol=1e-5)


def test_float64_cnn_losses_agree_with_pytorch_and_a_wrong_twin_shows(torch, monkeypatch):
    bs, steps = 8, 5
    x, y, init = _cnn_batches(2, bs, steps)
    hp, peers = w.float64_losses(init, x, y, bs, steps, 0.05, use_torch=True)
    assert loss_diff(hp, peers["pytorch"]) <= F64_RTOL

    def mirrored(model):  # every 3x3 kernel transposed: the kind of slip a hand-made twin has
        twin = torch_twin(model)
        with torch.no_grad():
            for m in twin.modules():
                if isinstance(m, torch.nn.Conv2d):
                    m.weight.copy_(m.weight.transpose(2, 3).clone())
        return twin
    monkeypatch.setattr(w, "torch_twin", mirrored)
    _, wrong = w.float64_losses(init, x, y, bs, steps, 0.05, use_torch=True)
    assert loss_diff(hp, wrong["pytorch"]) > 1e3 * F64_RTOL


def test_the_cnn_rows_run_quick_and_a_wrong_twin_voids_them(torch, monkeypatch):
    from handprop.bench.dataset import load_data
    data = load_data(synthetic=True)
    s = _cnn_session()
    train, infer, conv = w.bench_cnn(s, data), w.bench_cnn_infer(s, data), w.bench_conv(s)
    assert (train.workload, infer.workload, conv.workload) == ("cnn64", "cnninfer", "conv")
    assert train.agree is infer.agree is conv.agree is True
    assert train.handprop > 0 and train.torch > 0 and infer.extra["batch"] == w.CNN_INFER_BATCH
    assert "output, dW, dx: float64" in conv.check and "losses: float64" in train.check

    def shifted(model):  # the twin's first weight nudged: outputs and gradients must disagree
        twin = torch_twin(model)
        with torch.no_grad():
            next(twin.parameters()).mul_(1.01)
        return twin
    monkeypatch.setattr(w, "torch_twin", shifted)
    for row in (w.bench_cnn(s, data), w.bench_cnn_infer(s, data), w.bench_conv(s)):
        assert row.agree is False and "VOID" in row.check, row.name


def test_the_jax_description_refuses_a_layer_it_has_no_twin_for():
    from handprop import nn
    from handprop.bench.jax_peer import net_params
    with pytest.raises(ValueError, match=r"no twin for MaxPool2d"):
        net_params(nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(2)))


@needs_jax
def test_jax_trains_and_infers_the_cnn_as_handprop_does():
    from handprop.bench.jax_peer import net_params
    bs, steps = 8, 4
    x, y, init = _cnn_batches(3, bs, steps)
    hp64, _ = w.float64_losses(init, x, y, bs, steps, 0.05, use_torch=False)
    model = copy_model(init)
    model(x)  # running statistics off 0 and 1
    model.eval()
    with Worker(w.JAX_MODULE, 1) as worker:
        xr, yr = worker.put("x", x), worker.put("y", y)
        _, jax64 = worker.call("train_float64", net_params(init), xr, yr, bs, steps, 0.05)
        _, logits = worker.call("infer", net_params(model), xr, 16)
        conv = copy_model(init)[0].to(np.float64)
        g = np.random.default_rng(4).standard_normal((bs, 16, 28, 28))
        _, (out, dw, _) = worker.call("conv_grads", conv.weight.data, x[:bs].astype(np.float64), g, conv.stride,
                                      conv.padding)
    assert loss_diff(jax64, hp64) <= F64_RTOL
    np.testing.assert_allclose(logits, model(x), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out, conv(x[:bs].astype(np.float64)), rtol=1e-10, atol=1e-10)
    conv.backward(g, input_grad=False)
    np.testing.assert_allclose(dw, conv.weight.grad, rtol=1e-10, atol=1e-9)


@needs_jax
def test_the_cnn_row_times_jax_by_its_jit_step_only(torch):
    from handprop.bench.dataset import load_data
    row = w.bench_cnn(_cnn_session(use_jax=True), load_data(synthetic=True))
    assert row.jax is not None and row.jax_scan is None, "the cnn's lax.scan epoch is left out"


def test_train_load_times_handprop_train_with_its_policy_and_with_every_cpu(monkeypatch, data_root):
    """benchmarks/train_load.py's set-up (minutes when run, so the timing is replaced here): the
    PyTorch script is written from today's config and each contestant is the command it claims."""
    from contextlib import nullcontext
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    train_load = _benchmarks_module("train_load", monkeypatch)
    commands = []
    monkeypatch.setattr(train_load, "_wall", lambda cmd, env: commands.append(cmd) or 1.0)
    monkeypatch.setattr(train_load, "competing_process", nullcontext)
    rows = train_load.bench_train_load(str(data_root), 1)
    assert [r.workload for r in rows] == ["train_load", "train_load_blas_default"]
    policy, every_cpu, torch_script = commands[:3]
    assert policy[3] == "policy" and every_cpu[3] == str(os.cpu_count() or 1)
    assert torch_script[1].endswith("torch_train.py") and len(commands) == 6  # quiet and loaded
