"""Data paths as a user meets them: permissions, mistyped folders, failed downloads, missing
data in the test suite. Each test checks an exit code or exception, the message, and what is
left on disk."""
from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from data.conftest import FILES, env, replace_spec, server, tiny  # noqa: F401 (fixtures)
from handprop.data import DatasetError, load_dataset
from handprop.data import download as download_module
from handprop.data.search import MAX_LINE
from train.helpers import handprop_cmd, run_child, run_main

ROOT = Path(__file__).resolve().parents[2]
DENIED = "Permission denied"
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, PR_CAPBSET_DROP = 1, 2, 24


@pytest.fixture
def tmp():
    """A temporary folder with a short path (``tmp_path``'s are ~70 characters), so that the
    200-character error lines hold their paths in full and the tests can compare them."""
    path = Path(tempfile.mkdtemp(prefix="hp-"))
    yield path
    shutil.rmtree(path)


def _obey_file_permissions() -> None:
    """``preexec_fn`` under root: drop the capabilities that let root ignore file permissions,
    so the child is refused like an ordinary user. (``setuid(nobody)`` would do too, but the
    interpreter may live where nobody cannot reach it, such as a pyenv under /root.)"""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


@pytest.fixture
def unprivileged(tmp):
    """``run(argv, **env)``: a child process that file permissions stop; a skip if none can be
    made. Permissions changed under ``tmp`` are restored afterwards so it can be removed."""
    preexec = _obey_file_permissions if os.geteuid() == 0 else None
    probe = tmp / "probe"
    probe.write_text("secret")
    probe.chmod(0)
    try:
        proc = subprocess.run([sys.executable, "-c", f"open({str(probe)!r})"], preexec_fn=preexec,
                              capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"cannot start a child process that file permissions stop: {exc}")
    if proc.returncode == 0:
        pytest.skip("a child process still reads a mode-000 file (root whose capabilities cannot be dropped)")
    probe.unlink()

    def run(argv, **extra) -> subprocess.CompletedProcess:
        environ = {**os.environ, "OPENBLAS_NUM_THREADS": "1", **extra}
        return subprocess.run([str(a) for a in argv], env=environ, preexec_fn=preexec,
                              capture_output=True, text=True, timeout=120)

    yield run
    for path in tmp.rglob("*"):
        path.chmod(0o755)


def _touch_files(folder: Path) -> None:
    """The four MNIST file names, empty: enough for the search, which does not verify."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        (folder / f"{name}.gz").write_bytes(b"")


def _error_line(proc: subprocess.CompletedProcess, command: str) -> str:
    """The one stderr line of a failed ``handprop <command>``: exit 2, no traceback, and the
    data error's line after the prefix, at most MAX_LINE characters."""
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    (line,) = proc.stderr.splitlines()
    prefix = f"handprop {command}: error: "
    assert line.startswith(prefix) and len(line) - len(prefix) <= MAX_LINE, line
    return line[len(prefix):]


# --- 1. unreadable folders and files (real permissions, in a child process) ----------------------

def test_info_reports_an_unreadable_handprop_data_and_uses_the_cache(tmp, unprivileged):
    locked, cache = tmp / "hd" / "mnist", tmp / "cache" / "handprop" / "mnist"
    _touch_files(locked)
    _touch_files(cache)
    locked.chmod(0)
    proc = unprivileged(handprop_cmd("info"), HANDPROP_DATA=str(tmp / "hd"), XDG_CACHE_HOME=str(tmp / "cache"))
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stdout.splitlines()
    assert f"  mnist: {cache}" in lines
    assert f"      {locked}  (HANDPROP_DATA: cannot read the folder: {DENIED})" in lines
    assert f"    * {cache}  (user cache: ok)" in lines


def test_train_with_an_unreadable_file_in_data_dir_exits_2(tmp, unprivileged):
    folder = tmp / "locked"
    _touch_files(folder)
    (folder / f"{FILES[0]}.gz").chmod(0)
    proc = unprivileged(handprop_cmd("train", "--offline", "--data-dir", folder, "--out", tmp / "run"),
                        HANDPROP_DATA=str(tmp / "none"), XDG_CACHE_HOME=str(tmp / "cache"))
    assert _error_line(proc, "train") == (
        f"mnist: dataset not found in --data-dir {folder} (cannot read {FILES[0]}.gz: {DENIED}), "
        "and downloading is off (--offline); details: `handprop info --data-dir DIR`")
    assert sorted(p.name for p in tmp.iterdir()) == ["locked"]  # no run/, no cache/


def test_real_mnist_loads_from_the_cache_past_an_unreadable_handprop_data(tmp, unprivileged, data_root):
    locked, cache = tmp / "hd" / "mnist", tmp / "cache" / "handprop"
    locked.mkdir(parents=True)
    locked.chmod(0)
    cache.mkdir(parents=True)
    (cache / "mnist").symlink_to(data_root / "mnist", target_is_directory=True)
    code = "from handprop.data import mnist; (x, y), _ = mnist(download=False); print(x.shape, y[:3])"
    proc = unprivileged([sys.executable, "-c", code], HANDPROP_DATA=str(tmp / "hd"), XDG_CACHE_HOME=str(tmp / "cache"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "(60000, 28, 28) [5 0 4]"


def test_info_never_crashes_on_a_bad_handprop_data(tmp, monkeypatch):
    monkeypatch.setenv("HANDPROP_DATA", "~no-such-user-here/data")
    code, out, err = run_main(["info"])
    assert (code, err) == (0, "")
    assert "  mnist: cannot search: HANDPROP_DATA ~no-such-user-here/data: cannot expand '~': no such user" in out


# --- 2. HANDPROP_DATA takes the dataset's folder too, like --data-dir ----------------------------

@pytest.mark.parametrize("given", ["data", "data/mnist"], ids=["parent", "itself"])
def test_info_finds_mnist_through_either_form_of_handprop_data(tmp, monkeypatch, given):
    _touch_files(tmp / "data" / "mnist")
    monkeypatch.setenv("HANDPROP_DATA", str(tmp / given))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp / "cache"))
    code, out, _ = run_main(["info"])
    assert code == 0
    assert f"    * {tmp / 'data' / 'mnist'}  (HANDPROP_DATA: ok)" in out.splitlines()


# --- 3. a failed download leaves no folder behind -------------------------------------------------

def test_mistyped_data_dir_offline_is_not_created(tmp):
    typo = tmp / "typo" / "mnist"
    proc = run_child(["train", "--offline", "--data-dir", typo, "--out", tmp / "run"], tmp / "none",
                     XDG_CACHE_HOME=str(tmp / "cache"))
    assert _error_line(proc, "train") == (f"mnist: dataset not found in --data-dir {typo} (no such folder), and "
                                          "downloading is off (--offline); details: `handprop info --data-dir DIR`")
    assert list(tmp.iterdir()) == []


def test_cli_download_failure_leaves_no_data_dir(tiny, server, env, tmp, monkeypatch):
    """``handprop train --data-dir TYPO`` whose download fails (mirrors on 127.0.0.1 answer 404)."""
    _, _, spec = tiny
    replace_spec(monkeypatch, "mnist", files=spec.files, mirrors=(f"{server.url}/gone/",))
    typo = tmp / "typo" / "mnist"
    code, _, err = run_main(["train", "--data-dir", typo, "--out", tmp / "run"])
    assert (code, err) == (2, f"handprop train: error: mnist: dataset not found in --data-dir {typo} (no such "
                              "folder), and the download failed (HTTP Error 404: Not Found); details: "
                              "`handprop info --data-dir DIR`\n")
    assert server.requests == [f"/gone/{FILES[0]}.gz"]
    assert list(tmp.iterdir()) == [] and not (env / "cache").exists()  # no typo/, no run/, no cache


def test_failed_download_creates_no_cache_folder(tiny, server, env):
    with pytest.raises(DatasetError) as info:
        load_dataset("tiny", mirrors=[f"{server.url}/gone/"], progress=False)
    assert str(info.value) == ("tiny: dataset not found locally, and the download failed (HTTP Error 404: Not Found); "
                               "details: `handprop info`")
    assert not (env / "cache").exists()


def test_failed_download_keeps_an_existing_folder_as_it_was(tiny, server, tmp):
    with pytest.raises(DatasetError):
        load_dataset("tiny", root=tmp, mirrors=[f"{server.url}/gone/"], progress=False)
    assert tmp.is_dir() and list(tmp.iterdir()) == []


def test_successful_download_creates_the_data_dir(tiny, server, tmp):
    _, blobs, _ = tiny
    for name, blob in blobs.items():
        server.routes[f"/ok/{name}.gz"] = ("ok", blob)
    new = tmp / "new" / "deeper"
    load_dataset("tiny", root=new, mirrors=[f"{server.url}/ok/"], progress=False)
    assert sorted(p.name for p in new.iterdir()) == sorted(f"{f}.gz" for f in FILES)


def test_partial_download_keeps_only_the_verified_files(tiny, server, tmp):
    _, blobs, _ = tiny
    for name in FILES[:2]:
        server.routes[f"/half/{name}.gz"] = ("ok", blobs[name])
    with pytest.raises(DatasetError) as info:
        load_dataset("tiny", root=tmp / "new", mirrors=[f"{server.url}/half/"], progress=False)
    line = str(info.value)  # the problem now: the two files the download could not get
    assert line.startswith(f"tiny: dataset not found in --data-dir {tmp / 'new'} (missing ") and len(line) <= MAX_LINE
    assert line.endswith("), and the download failed (HTTP Error 404: Not Found); details: `handprop info --data-dir DIR`")
    assert f"  {tmp / 'new'}  (--data-dir: missing {', '.join(FILES[2:])})" in info.value.details
    assert f"  {server.url}/half/{FILES[2]}.gz: HTTP Error 404: Not Found" in info.value.details
    assert sorted(p.name for p in (tmp / "new").iterdir()) == sorted(f"{f}.gz" for f in FILES[:2])


def test_interrupted_download_removes_the_folders_it_made(tiny, tmp, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(download_module, "fetch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        load_dataset("tiny", root=tmp / "new" / "deeper", progress=False)
    assert list(tmp.iterdir()) == []


def test_download_folder_that_cannot_be_made(tiny, tmp):
    (tmp / "afile").write_text("a file, not a folder")
    with pytest.raises(DatasetError) as info:
        load_dataset("tiny", root=tmp / "afile" / "sub", mirrors=["http://127.0.0.1:9/"], progress=False)
    assert str(info.value).endswith("folder: Not a directory); details: `handprop info --data-dir DIR`")
    assert (f"Download failed: {tmp / 'afile' / 'sub'}: cannot create the download folder: Not a directory"
            in info.value.details)
    assert (tmp / "afile").read_text() == "a file, not a folder"


# --- 5. tests that need real MNIST skip without it, or fail when it is required --------------------

def _run_a_test_needing_mnist(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    test = "tests/data/test_datasets.py::test_mnist_shapes_dtypes_and_labels"
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rsE",
                           "--basetemp", str(tmp_path / "basetemp"), test],
                          cwd=ROOT, env={**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), **env},
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("required", [False, True], ids=["optional", "required"])
def test_tests_needing_mnist_skip_or_fail_without_it(tmp_path, required):
    (tmp_path / "empty").mkdir()
    proc = _run_a_test_needing_mnist(tmp_path, HANDPROP_DATA=str(tmp_path / "empty"),
                                     HANDPROP_REQUIRE_DATA="1" if required else "0")
    reason = f"real MNIST not found in {tmp_path / 'empty'}, {tmp_path / 'empty' / 'mnist'}, "
    if required:
        assert proc.returncode == 1, proc.stdout
        assert f"Failed: HANDPROP_REQUIRE_DATA=1 but {reason}" in proc.stdout
    else:
        assert proc.returncode == 0, proc.stdout
        assert "1 skipped" in proc.stdout and reason in proc.stdout


def test_tests_find_mnist_through_handprop_data_naming_its_folder(tmp_path, data_root):
    """HANDPROP_DATA=<the files' own folder>, whatever its name, serves the tests too."""
    (tmp_path / "digits").symlink_to(data_root / "mnist", target_is_directory=True)
    proc = _run_a_test_needing_mnist(tmp_path, HANDPROP_DATA=str(tmp_path / "digits"), HANDPROP_REQUIRE_DATA="1")
    assert proc.returncode == 0 and "1 passed" in proc.stdout, proc.stdout
