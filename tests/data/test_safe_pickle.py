"""Pickled data files are read without running code: the shared allow list.

Each format that holds pickles (GraphData npz object arrays, Planetoid raw
files; the few-shot feature pickles are tested in tests/fewshot) gets a file
whose payload would create a file when unpickled with plain :mod:`pickle`;
loading must fail with a message naming the file and the global, and the
file must not appear.
"""

import collections
import io
import os
import pickle
import shutil

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from torch_geometric.datasets import Planetoid

from diffresnet_pyg.data import (
    DatasetFileError,
    load_dataset,
    load_graphdata_npz,
    load_pyg_dataset,
    read_dataset_file,
)
from diffresnet_pyg.data._npz import RestrictedUnpickler as NpzUnpickler
from diffresnet_pyg.data.pyg_datasets import _check_pickled_raw_files
from diffresnet_pyg.data.safe_pickle import (
    ALLOWED_GLOBALS,
    RefusedGlobalError,
    RestrictedUnpickler,
    safe_load,
)
from tests.fake_data import write_planetoid_raw

SYSTEM = f"{os.system.__module__}.system"
PLANETOID_URL = Planetoid.url


class _TouchesFile:
    """Unpickled by plain pickle, creates :attr:`target` (through a shell)."""

    refused = SYSTEM

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


class _Execs:
    """Unpickled by plain pickle, creates :attr:`target` (through ``exec``)."""

    refused = "builtins.exec"

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (exec, (f"open({str(self.target)!r}, 'w').close()",))


PAYLOADS = [_TouchesFile, _Execs]


def _boxed(value):
    box = np.empty((), dtype=object)
    box[()] = value
    return box


# --- the allow list ------------------------------------------------------------


def test_one_allow_list():
    assert NpzUnpickler is RestrictedUnpickler
    assert "numpy.ndarray" in ALLOWED_GLOBALS
    assert "collections.defaultdict" in ALLOWED_GLOBALS
    assert not any(
        name.startswith(("os.", "posix.", "torch")) for name in ALLOWED_GLOBALS
    )


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_allowed_objects_round_trip(protocol):
    objects = {
        "arrays": [np.arange(6).reshape(2, 3)[:, ::2], np.zeros((2, 2), order="F")],
        "scalars": (np.float32(1.5), np.int64(3), np.dtype("f4")),
        "strings": np.array(["a", "bc"]),
        "csr": sp.csr_matrix(np.eye(3)),
        "csr_array": sp.csr_array(np.eye(2)),
        "coo": sp.coo_matrix(np.eye(2)),
        "dok": sp.dok_matrix(np.eye(2)),
        "graph": collections.defaultdict(list, {0: [1, 2]}),
        "ordered": collections.OrderedDict(a=1),
        "plain": {"set": {1, 2}, "frozen": frozenset([3]), "bytes": b"xy"},
        "more": [1j, bytearray(b"z"), range(3), slice(1, 2)],
    }
    loaded = safe_load(io.BytesIO(pickle.dumps(objects, protocol=protocol)))
    for key in ("csr", "csr_array", "coo", "dok"):
        assert type(loaded[key]) is type(objects[key])
        assert (loaded[key] != objects[key]).nnz == 0
    np.testing.assert_array_equal(loaded["arrays"][0], objects["arrays"][0])
    assert loaded["scalars"] == objects["scalars"]
    assert (
        loaded["graph"] == objects["graph"] and loaded["graph"].default_factory is list
    )
    assert loaded["plain"] == objects["plain"] and loaded["more"] == objects["more"]


@pytest.mark.parametrize(
    ("obj", "refused"),
    [
        (torch.ones(2), "torch._utils._rebuild_tensor_v2"),
        (print, "builtins.print"),
        (shutil.rmtree, "shutil.rmtree"),
        (getattr, "builtins.getattr"),
    ],
)
def test_refused_globals(obj, refused):
    with pytest.raises(RefusedGlobalError) as info:
        safe_load(io.BytesIO(pickle.dumps({"a": obj})))
    assert info.value.global_name == refused
    assert str(info.value) == (
        f"refusing to unpickle the global {refused} (only numpy arrays, scipy "
        "sparse matrices and plain containers are read)"
    )


# --- GraphData npz: pickled object arrays ----------------------------------------


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize("member", ["adj_matrix", "node_attr", "node_label"])
def test_graphdata_payload_is_never_run(tmp_path, payload, member):
    target = tmp_path / "pwned"
    arrays = {
        "adj_matrix": _boxed(sp.csr_matrix(np.eye(2))),
        "node_attr": _boxed(sp.csr_matrix(np.ones((2, 2)))),
        "node_label": np.array([0, 1]),
    }
    arrays[member] = _boxed(payload(target))
    path = tmp_path / "evil.npz"
    np.savez(path, **arrays)
    expected = (
        f"{path}: refusing to unpickle the global {payload.refused} named by the "
        f"array '{member}' (pickled arrays may only hold numpy arrays, scipy "
        "sparse matrices and plain containers; nothing was run); convert the "
        "file to plain arrays, e.g. the csr format: np.savez(path, indptr=..., "
        "indices=..., features=..., labels=...)"
    )
    for load in (load_graphdata_npz, read_dataset_file, lambda p: load_dataset(path=p)):
        with pytest.raises(DatasetFileError) as info:
            load(path)
        assert str(info.value) == expected
    assert not target.exists()


# --- Planetoid raw files ---------------------------------------------------------


def _planetoid_root(tmp_path):
    raw = write_planetoid_raw(tmp_path / "planetoid" / "Cora" / "raw")
    return tmp_path, raw


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize("part", ["x", "ally", "graph"])
def test_planetoid_payload_is_never_run(tmp_path, payload, part):
    root, raw = _planetoid_root(tmp_path / "root")
    target = tmp_path / "pwned"
    evil = raw / f"ind.cora.{part}"
    with open(evil, "wb") as handle:
        pickle.dump(collections.defaultdict(list, {0: [payload(target)]}), handle)
    with pytest.raises(DatasetFileError) as info:
        load_pyg_dataset("planetoid", "Cora", root, download=False)
    assert str(info.value) == (
        f"{evil}: refusing to unpickle the global {payload.refused} (Planetoid raw "
        "files may only hold numpy arrays, scipy sparse matrices and plain "
        "containers; nothing was run); replace the file with the original from "
        f"{PLANETOID_URL}"
    )
    assert not target.exists()
    with pytest.raises(DatasetFileError, match="refusing to unpickle"):
        load_dataset("planetoid/cora", root, download=False)
    assert not target.exists()


def test_planetoid_downloaded_files_are_checked(tmp_path, monkeypatch):
    """A raw file that PyG downloads is checked before PyG unpickles it."""
    root, raw = _planetoid_root(tmp_path / "root")
    target = tmp_path / "pwned"
    missing = raw / "ind.cora.tx"
    missing.unlink()

    def download(self):
        with open(missing, "wb") as handle:
            pickle.dump(_TouchesFile(target), handle)

    monkeypatch.setattr(Planetoid, "download", download)
    with pytest.raises(DatasetFileError, match=f"{missing}: refusing to unpickle"):
        load_pyg_dataset("planetoid", "Cora", root)
    assert not target.exists()


def test_planetoid_damaged_file(tmp_path):
    root, raw = _planetoid_root(tmp_path)
    cut = raw / "ind.cora.allx"
    cut.write_bytes(cut.read_bytes()[:100])
    with pytest.raises(DatasetFileError) as info:
        load_pyg_dataset("planetoid", "Cora", root, download=False)
    message = str(info.value)
    assert message.startswith(
        f"{cut}: not a readable Planetoid raw file, it is damaged or truncated ("
    )
    assert message.endswith(
        f"); replace the file with the original from {PLANETOID_URL}"
    )
    assert "\n" not in message


@pytest.mark.real_data
@pytest.mark.parametrize("name", ["Cora", "CiteSeer"])
def test_real_planetoid_files_pass_the_check(shared_data, tmp_path, name):
    raw = shutil.copytree(shared_data / "planetoid" / name / "raw", tmp_path / "raw")
    names = sorted(p.name for p in raw.iterdir())
    assert len(names) == 8
    _check_pickled_raw_files(raw, names, PLANETOID_URL)  # nothing refused
    with open(raw / f"ind.{name.lower()}.graph", "rb") as handle:
        graph = safe_load(handle, encoding="latin1")
    assert isinstance(graph, collections.defaultdict) and graph.default_factory is list
