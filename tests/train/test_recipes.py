"""The notebooks' results, reproduced by ``handprop train --recipe``: checked in metrics.json.

Both recipes run as child processes started together (one BLAS thread each), so on two cores
the pair costs about as long as the slower one.
"""
from __future__ import annotations

import re
import subprocess

import pytest

from .helpers import child_env, handprop_cmd, read_metrics, run_main

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def recipe_runs(tmp_path_factory, data_root):
    base = tmp_path_factory.mktemp("recipes")
    procs = {name: subprocess.Popen(handprop_cmd("train", "--recipe", name, "--quiet", "--out", base / name),
                                    env=child_env(data_root), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True)
             for name in ("fastai", "epfl")}
    results = {}
    for name, proc in procs.items():
        try:
            stdout, stderr = proc.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        results[name] = (proc.returncode, stdout, stderr, base / name)
    return results


def test_fastai_recipe_reaches_92_percent_validation_accuracy(recipe_runs):
    code, stdout, stderr, out = recipe_runs["fastai"]
    assert code == 0, stderr
    m = read_metrics(out)
    assert m["config"]["recipe"] == "fastai"
    assert len(m["history"]) == 1
    assert m["history"][-1]["valid_accuracy"] >= 0.92
    assert m["test_accuracy"] >= 0.92


def test_epfl_recipe_reproduces_the_course_result(recipe_runs):
    code, stdout, stderr, out = recipe_runs["epfl"]
    assert code == 0, stderr
    m = read_metrics(out)
    assert m["config"]["recipe"] == "epfl"
    assert m["history"][-1]["epoch"] == 1000
    assert m["history"][-1]["train_error"] <= 0.01
    assert 0.12 <= m["test_error"] <= 0.18
    assert m["test_error"] == pytest.approx(1 - m["test_accuracy"])
    assert sum(map(sum, m["confusion_matrix"])) == 1000, "the first 1,000 test images"


def test_epfl_logs_every_100_steps(recipe_runs):
    out = recipe_runs["epfl"][3]
    rows = (out / "metrics.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + 1000, "metrics.csv has every step"
    assert rows[0].startswith("epoch,")


def test_evaluate_reproduces_the_epfl_test_error(recipe_runs, hp_data):
    out = recipe_runs["epfl"][3]
    code, stdout, stderr = run_main(["evaluate", out])
    assert code == 0, stderr
    assert "1,000 images" in stdout
    err = float(re.search(r"test error ([\d.]+)%", stdout).group(1))
    assert err == pytest.approx(100 * read_metrics(out)["test_error"], abs=0.005)
