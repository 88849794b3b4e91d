"""The search never crashes and never lies: unreadable places are skipped with their reason,
HANDPROP_DATA and --data-dir accept the same folders, and the not-found error is one short line."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from handprop.data import DatasetError, cache_dir, find_dataset, load_dataset, search_paths
from handprop.data.search import MAX_LINE, search_report
from handprop.info import dataset_lines

from .conftest import FILES, full_message, write_files

DENIED = "Permission denied"


def _place_line(name: str, folder: Path, root=None) -> str:
    """The search report's line for ``folder``."""
    return next(line for line in search_report(name, root) if line[2:].startswith(f"{folder}  ("))


# --- unreadable places are skipped, with their reason --------------------------------------------

def test_unreadable_handprop_data_folder_falls_through_to_the_cache(tiny, env, monkeypatch, deny):
    arrays, _, _ = tiny
    monkeypatch.setenv("HANDPROP_DATA", str(env / "data"))
    write_files(env / "data" / "tiny", arrays)
    write_files(cache_dir() / "tiny", arrays)
    deny(env / "data" / "tiny")
    assert find_dataset("tiny") == cache_dir() / "tiny"
    (x, _), _ = load_dataset("tiny", download=False)
    np.testing.assert_array_equal(x, arrays[0])
    assert _place_line("tiny", env / "data" / "tiny").endswith(f"(HANDPROP_DATA: cannot read the folder: {DENIED})")
    assert _place_line("tiny", cache_dir() / "tiny").startswith("* ")


def test_unreadable_file_falls_through_and_is_named(tiny, env, monkeypatch, deny):
    arrays, _, spec = tiny
    monkeypatch.setenv("HANDPROP_DATA", str(env / "data"))
    write_files(env / "data" / "tiny", arrays)
    write_files(Path(spec.system_dirs[0]), arrays)
    deny(env / "data" / "tiny" / f"{FILES[2]}.gz")
    assert find_dataset("tiny") == Path(spec.system_dirs[0])
    assert _place_line("tiny", env / "data" / "tiny").endswith(f"(HANDPROP_DATA: cannot read {FILES[2]}.gz: {DENIED})")


def test_unreadable_parent_is_reported_not_raised(tiny, env, monkeypatch, deny):
    monkeypatch.setenv("HANDPROP_DATA", str(env / "data"))
    deny(env / "data")  # even stat(data/tiny) fails
    assert find_dataset("tiny") is None
    assert _place_line("tiny", env / "data" / "tiny").endswith(f"(HANDPROP_DATA: cannot read the folder: {DENIED})")


def test_only_copy_unreadable_is_a_dataset_error_saying_so(tiny, env, deny):
    arrays, _, _ = tiny
    write_files(env / "mine", arrays)
    deny(env / "mine" / f"{FILES[0]}.gz")
    with pytest.raises(DatasetError) as info:
        load_dataset("tiny", root=env / "mine", download=False)
    assert f"(cannot read {FILES[0]}.gz: {DENIED})" in str(info.value)
    assert f"  {env / 'mine'}  (--data-dir: cannot read {FILES[0]}.gz: {DENIED})" in info.value.details


def test_a_fifo_is_not_taken_for_a_file(tiny, env):
    """Opening a FIFO to probe it would block forever: it counts as missing."""
    arrays, _, _ = tiny
    write_files(env / "mine", arrays)
    (env / "mine" / f"{FILES[1]}.gz").unlink()
    os.mkfifo(env / "mine" / f"{FILES[1]}.gz")
    assert find_dataset("tiny", env / "mine") is None
    assert _place_line("tiny", env / "mine", env / "mine").endswith(f"(--data-dir: missing {FILES[1]})")


def test_a_file_given_as_the_folder(tiny, env):
    (env / "afile").write_text("not a folder")
    assert _place_line("tiny", env / "afile", env / "afile").endswith("(--data-dir: not a folder)")
    assert _place_line("tiny", env / "afile" / "tiny", env / "afile").endswith("(--data-dir: no such folder)")


# --- HANDPROP_DATA takes what --data-dir takes ----------------------------------------------------

@pytest.mark.parametrize("given", ["data", "data/tiny"], ids=["parent", "itself"])
def test_handprop_data_is_the_folder_or_its_parent_like_data_dir(tiny, env, monkeypatch, given):
    arrays, _, _ = tiny
    write_files(env / "data" / "tiny", arrays)
    monkeypatch.setenv("HANDPROP_DATA", str(env / given))
    assert search_paths("tiny")[:2] == search_paths("tiny", root=env / given)
    assert find_dataset("tiny") == find_dataset("tiny", env / given) == env / "data" / "tiny"
    (x, _), _ = load_dataset("tiny", download=False)
    np.testing.assert_array_equal(x, arrays[0])


def test_a_folder_named_after_another_dataset_is_not_offered(tiny, env, monkeypatch):
    """MNIST and Fashion-MNIST share file names: HANDPROP_DATA=.../mnist must not serve fashion."""
    arrays, _, _ = tiny
    write_files(env / "mnist", arrays)  # "tiny" uses the same file names as MNIST
    monkeypatch.setenv("HANDPROP_DATA", str(env / "mnist"))
    assert search_paths("tiny")[0] == env / "mnist" / "tiny"
    assert find_dataset("tiny") is None
    assert search_paths("tiny", root=env / "mnist")[0] == env / "mnist" / "tiny"
    assert search_paths("mnist", root=env / "mnist")[0] == env / "mnist"


# --- the not-found error: one short line, the details behind it ----------------------------------

def _not_found(call) -> DatasetError:
    with pytest.raises(DatasetError) as info:
        call()
    line = str(info.value)
    assert "\n" not in line and len(line) <= MAX_LINE, line
    assert line.startswith("tiny: dataset not found ")
    return info.value


def test_not_found_line_points_to_handprop_info(tiny, env, monkeypatch):
    monkeypatch.setenv("HANDPROP_DATA", str(env / "data"))
    error = _not_found(lambda: load_dataset("tiny", download=False))
    assert str(error) == ("tiny: dataset not found locally, and downloading is off (--offline); "
                          "details: `handprop info`")
    assert error.details[0] == "Searched, in order (* = used):"
    assert error.details[1:1 + len(search_paths("tiny"))] == search_report("tiny")
    if hasattr(error, "add_note"):  # Python 3.11+: a traceback shows the details
        assert error.__notes__ == ["\n".join(error.details)]


def test_not_found_line_names_the_most_telling_problem(tiny, env, monkeypatch):
    arrays, _, _ = tiny
    monkeypatch.setenv("HANDPROP_DATA", str(env / "data"))
    write_files(cache_dir() / "tiny", arrays[:3])
    error = _not_found(lambda: load_dataset("tiny", download=False))
    assert str(error).startswith("tiny: dataset not found locally (user cache /")  # the path, maybe shortened
    assert f"/tiny: missing {FILES[3]}), and downloading is off (--offline);" in str(error)


def test_not_found_in_data_dir_says_which_and_why(tiny, env):
    error = _not_found(lambda: load_dataset("tiny", root=env / "typo", download=False))
    assert str(error) == (f"tiny: dataset not found in --data-dir {env / 'typo'} (no such folder), and "
                          "downloading is off (--offline); details: `handprop info --data-dir DIR`")
    assert "  (--data-dir replaces the search of HANDPROP_DATA, the user cache and system folders)" in error.details
    assert not (env / "typo").exists()


def test_not_found_line_stays_short_with_long_paths_and_reasons(tiny, env):
    deep = env.joinpath(*[f"a-rather-long-folder-name-{i}" for i in range(12)])
    error = _not_found(lambda: load_dataset("tiny", root=deep, download=False))
    assert "--data-dir " in str(error) and "…" in str(error) and str(error).endswith("`handprop info --data-dir DIR`")
    assert f"  {deep}  (--data-dir: no such folder)" in error.details  # in full, below
    error = _not_found(lambda: load_dataset("tiny", root=deep, mirrors=[f"http://127.0.0.1:9/{'x' * 300}/"],
                                            timeout=2, progress=False))
    assert "the download failed (" in str(error) and "x" * 300 in full_message(error)


# --- the search itself cannot start: a clear error, and `handprop info` reports it ---------------

def test_no_home_and_no_xdg_cache(tiny, env, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")

    def no_home():
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(Path, "home", staticmethod(no_home))
    with pytest.raises(DatasetError, match="cannot locate the user cache: HOME is not set and "
                                           "XDG_CACHE_HOME is not an absolute path"):
        find_dataset("tiny")
    (line,) = dataset_lines("tiny")
    assert line.startswith("  tiny: cannot search: cannot locate the user cache")


def test_unknown_user_in_handprop_data(tiny, monkeypatch):
    monkeypatch.setenv("HANDPROP_DATA", "~no-such-user-here/data")
    with pytest.raises(DatasetError, match="HANDPROP_DATA ~no-such-user-here/data: cannot expand '~': no such user"):
        search_paths("tiny")


def test_info_lines_report_each_place_and_remedies(tiny, env, monkeypatch, deny):
    arrays, _, spec = tiny
    monkeypatch.setenv("HANDPROP_DATA", str(env / "data"))
    write_files(env / "data" / "tiny", arrays)
    deny(env / "data" / "tiny")
    lines = dataset_lines("tiny")
    assert lines[0] == "  tiny: not found locally (train and evaluate download it unless --offline)"
    assert f"      {env / 'data' / 'tiny'}  (HANDPROP_DATA: cannot read the folder: {DENIED})" in lines
    assert "    to add a copy, any of:" in lines
    write_files(cache_dir() / "tiny", arrays)
    write_files(Path(spec.system_dirs[0]), arrays)
    lines = dataset_lines("tiny")
    assert lines[0] == f"  tiny: {cache_dir() / 'tiny'}"
    assert f"    * {cache_dir() / 'tiny'}  (user cache: ok)" in lines
    assert f"      {spec.system_dirs[0]}  (system copy: ok)" in lines  # usable, but not the one used
    assert not any("to add a copy" in line for line in lines)


def test_an_unreadable_file_in_the_download_folder_is_downloaded_again(tiny, server, env, deny):
    arrays, blobs, _ = tiny
    write_files(cache_dir() / "tiny", arrays)
    deny(cache_dir() / "tiny" / f"{FILES[1]}.gz")
    server.routes[f"/ok/{FILES[1]}.gz"] = ("ok", blobs[FILES[1]])
    (_, y), _ = load_dataset("tiny", mirrors=[f"{server.url}/ok/"], progress=False)
    np.testing.assert_array_equal(y, arrays[1])
    assert server.requests == [f"/ok/{FILES[1]}.gz"]  # only the unreadable file was replaced
