"""Downloading from mirrors, against a local HTTP server on 127.0.0.1 serving fixture IDX files."""
from __future__ import annotations

import gzip
import socket

import numpy as np
import pytest

from handprop.data import DatasetError, cache_dir, load_dataset
from handprop.data.download import fetch

from .conftest import FILES, full_message


def _serve(server, prefix, blobs, mode="ok"):
    for name, blob in blobs.items():
        server.routes[f"/{prefix}/{name}.gz"] = (mode, blob)
    return f"{server.url}/{prefix}/"


def _files(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_good_mirror_fills_the_cache_once(tiny, server):
    arrays, blobs, _ = tiny
    good = _serve(server, "good", blobs)
    (x_train, y_train), (x_test, y_test) = load_dataset("tiny", mirrors=[good], progress=False)
    for got, want in zip((x_train, y_train, x_test, y_test), arrays):
        np.testing.assert_array_equal(got, want)
    assert _files(cache_dir() / "tiny") == sorted(f"{f}.gz" for f in FILES)
    assert len(server.requests) == 4
    load_dataset("tiny", mirrors=[good], progress=False)
    assert len(server.requests) == 4  # second load comes from the cache


def test_wrong_checksum_is_rejected_and_the_next_mirror_tried(tiny, server):
    arrays, blobs, _ = tiny
    wrong = {name: gzip.compress(gzip.decompress(blob)[:-1] + b"\x07") for name, blob in blobs.items()}
    bad = _serve(server, "bad", wrong)
    good = _serve(server, "good", blobs)
    (x_train, _), _ = load_dataset("tiny", mirrors=[bad, good], progress=False)
    np.testing.assert_array_equal(x_train, arrays[0])
    assert server.requests[:2] == [f"/bad/{FILES[0]}.gz", f"/good/{FILES[0]}.gz"]
    assert _files(cache_dir() / "tiny") == sorted(f"{f}.gz" for f in FILES)


@pytest.mark.parametrize("mode", ["cut", "cut-chunkless"])
def test_connection_cut_mid_file_leaves_no_file(tiny, server, mode):
    _, blobs, _ = tiny
    cut = _serve(server, "cut", blobs, mode=mode)
    with pytest.raises(DatasetError) as info:
        load_dataset("tiny", mirrors=[cut], progress=False)
    reason = "connection closed after" if mode == "cut" else "truncated gzip stream"
    assert f"the download failed ({reason}" in str(info.value)
    assert any(line.startswith(f"  {cut}{FILES[0]}.gz: {reason}") for line in info.value.details)
    assert not cache_dir().exists()  # no partial file, no temp file, no folder


def test_cut_mirror_then_good_mirror(tiny, server):
    _, blobs, _ = tiny
    mirrors = [_serve(server, "cut", blobs, mode="cut"), f"{server.url}/404/", _serve(server, "good", blobs)]
    load_dataset("tiny", mirrors=mirrors, progress=False)
    assert server.requests[:3] == [f"/cut/{FILES[0]}.gz", f"/404/{FILES[0]}.gz", f"/good/{FILES[0]}.gz"]
    assert _files(cache_dir() / "tiny") == sorted(f"{f}.gz" for f in FILES)


def test_only_missing_files_are_fetched_into_an_explicit_root(tiny, server, env):
    _, blobs, _ = tiny
    root = env / "mine"
    root.mkdir()
    (root / f"{FILES[0]}.gz").write_bytes(blobs[FILES[0]])
    load_dataset("tiny", root=root, mirrors=[_serve(server, "good", blobs)], progress=False)
    assert sorted(server.requests) == sorted(f"/good/{f}.gz" for f in FILES[1:])
    assert _files(root) == sorted(f"{f}.gz" for f in FILES)
    assert not cache_dir().exists()


def test_no_network_lists_every_place_url_and_remedy(tiny, env):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/"
    with pytest.raises(DatasetError) as info:
        load_dataset("tiny", mirrors=[dead], timeout=2, progress=False)
    assert "the download failed (Connection refused)" in str(info.value)  # the cause, not urllib's wrapper
    message = full_message(info.value)
    assert f"{dead}{FILES[0]}.gz: <urlopen error [Errno 111] Connection refused>" in message
    for expected in ("--data-dir", "HANDPROP_DATA", str(cache_dir() / "tiny"), str(env / "system" / "tiny")):
        assert expected in message
    assert not cache_dir().exists()  # the cache folders made for the download are removed again


def test_timeout_moves_on(tiny, server):
    _, blobs, _ = tiny
    hang = _serve(server, "hang", {FILES[0]: blobs[FILES[0]]}, mode="hang")  # then 404s
    good = _serve(server, "good", blobs)
    load_dataset("tiny", mirrors=[hang, good], timeout=0.3, progress=False)
    assert server.requests[:2] == [f"/hang/{FILES[0]}.gz", f"/good/{FILES[0]}.gz"]


def test_progress_lines_when_not_a_terminal(tiny, server, env, capsys):
    _, blobs, spec = tiny
    good = _serve(server, "good", blobs)
    fetch(f"{good}{FILES[1]}.gz", env / "x.gz", spec.files[FILES[1]], progress=None)
    err = capsys.readouterr().err
    assert f"downloading {good}{FILES[1]}.gz" in err and "received" in err
    fetch(f"{good}{FILES[1]}.gz", env / "y.gz", spec.files[FILES[1]], progress=False)
    assert capsys.readouterr().err == ""
    assert (env / "x.gz").read_bytes() == (env / "y.gz").read_bytes() == blobs[FILES[1]]
