"""Dataset files in every registered format: reading, detection, checks."""

import pickle

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from torch_geometric.data import Data

from diffresnet_pyg.data import (
    DatasetFileError,
    detect_format,
    format_names,
    load_dataset,
    read_dataset_file,
)
from tests.fake_data import small_graph, write_graph_file

FORMATS = ("csr", "gnnbench", "graphdata", "heterophilous", "pyg")
WITH_MASKS = ("csr", "heterophilous", "pyg")
SUFFIX = {"pyg": ".pt"}


@pytest.fixture(scope="module")
def graph():
    return small_graph()


def write(tmp_path, fmt, graph, name="graph"):
    return write_graph_file(tmp_path / f"{name}{SUFFIX.get(fmt, '.npz')}", fmt, graph)


def edge_set(edge_index):
    return set(map(tuple, edge_index.t().tolist()))


def test_every_format_is_registered():
    assert format_names() == FORMATS


@pytest.mark.parametrize("fmt", FORMATS)
def test_read_returns_what_was_written(tmp_path, graph, fmt):
    path = write(tmp_path, fmt, graph)
    assert detect_format(path) == fmt
    data = read_dataset_file(path)
    assert data.num_nodes == graph["y"].size
    assert torch.equal(data.x, torch.from_numpy(graph["x"]))
    assert data.y.tolist() == graph["y"].tolist()
    assert edge_set(data.edge_index) == set(map(tuple, graph["edges"].tolist()))
    if fmt in WITH_MASKS:
        for key in ("train", "val", "test"):
            mask = data[f"{key}_mask"]
            assert mask.dtype == torch.bool and mask.shape == (data.num_nodes, 2)
            assert torch.equal(mask, torch.from_numpy(graph[f"{key}_masks"].T))
    else:
        assert "train_mask" not in data
    assert torch.equal(read_dataset_file(path, fmt).x, data.x)


@pytest.mark.parametrize("fmt", FORMATS)
def test_load_dataset_standardizes_a_file(tmp_path, graph, fmt):
    path = write(tmp_path, fmt, graph)
    n, isolated = graph["y"].size, 2
    data = load_dataset(path=path)
    assert data.num_nodes == n - isolated  # the largest component
    assert data.orig_index.tolist() == list(range(n - isolated))
    assert not bool((data.edge_index[0] == data.edge_index[1]).any())
    assert data.is_undirected()
    assert torch.allclose(data.x.sum(1)[data.x.sum(1) > 0], torch.tensor(1.0))
    if fmt in WITH_MASKS:
        assert data.train_mask.shape == (n - isolated, 2)


def test_standardization_steps_one_by_one(tmp_path, graph):
    path = write(tmp_path, "csr", graph)
    n, stored = graph["y"].size, len(graph["edges"])
    whole = load_dataset(path=path, largest_component=False)
    assert whole.num_nodes == n and whole.is_undirected()
    directed = load_dataset(path=path, symmetrize=False, largest_component=False)
    assert directed.edge_index.size(1) == stored - 1  # the self loop is removed
    counts = load_dataset(path=path, binarize=False, normalize_features=False)
    assert counts.x.max() == 2
    binary = load_dataset(path=path, normalize_features=False)
    assert set(binary.x.unique().tolist()) <= {0.0, 1.0}
    raw = load_dataset(path=path, standardize=False, normalize_features=False)
    assert raw.num_nodes == n and raw.edge_index.size(1) == stored
    assert torch.equal(raw.x, torch.from_numpy(graph["x"]))
    only_binary = load_dataset(
        path=path, standardize=False, binarize=True, normalize_features=False
    )
    assert only_binary.num_nodes == n and only_binary.x.max() == 1
    with pytest.raises(ValueError, match="largest_component=True .* standardize"):
        load_dataset(path=path, standardize=False, largest_component=True)


def test_name_or_path(tmp_path, graph):
    path = write(tmp_path, "csr", graph)
    with pytest.raises(ValueError, match="not both"):
        load_dataset("cora", path=path)
    with pytest.raises(ValueError, match="not neither"):
        load_dataset()
    with pytest.raises(ValueError, match="root is only used"):
        load_dataset(path=path, root=tmp_path)
    with pytest.raises(ValueError, match="unknown dataset format 'npy'"):
        load_dataset(path=path, format="npy")
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        load_dataset(path=tmp_path / "missing.npz")


def test_pyg_data_saved_as_a_dict(tmp_path, graph):
    data = read_dataset_file(write(tmp_path, "pyg", graph))
    path = tmp_path / "as_dict.pth"
    torch.save(data.to_dict(), path)
    again = read_dataset_file(path)
    assert torch.equal(again.x, data.x) and torch.equal(
        again.train_mask, data.train_mask
    )


class _RunsCode:
    def __reduce__(self):
        return (exec, ("raise SystemExit('pickled code ran')",))


def test_pickled_code_is_never_run(tmp_path, graph):
    path = tmp_path / "evil.pt"
    torch.save({"x": torch.zeros(2, 1), "payload": _RunsCode()}, path)
    with pytest.raises(DatasetFileError, match="evil.pt.*not a PyG Data class"):
        read_dataset_file(path)
    npz = tmp_path / "evil.npz"
    box = np.empty((), dtype=object)
    box[()] = _RunsCode()
    adj = np.empty((), dtype=object)
    adj[()] = sp.csr_matrix(np.eye(2))
    np.savez(npz, adj_matrix=adj, node_attr=box, node_label=np.zeros(2, np.int32))
    with pytest.raises(DatasetFileError, match="evil.npz.*refusing to unpickle"):
        read_dataset_file(npz)


def test_plain_formats_refuse_pickles(tmp_path):
    path = tmp_path / "objects.npz"
    box = np.empty((), dtype=object)
    box[()] = {"a": 1}
    np.savez(path, indptr=np.array([0, 0]), indices=np.array([], int), x=box, y=[0])
    with pytest.raises(DatasetFileError, match="'x' holds pickled Python objects"):
        read_dataset_file(path)


def test_not_an_npz_and_truncated(tmp_path, graph):
    text = tmp_path / "notes.npz"
    text.write_text("not an archive")
    with pytest.raises(DatasetFileError, match="notes.npz: it is not an npz archive"):
        read_dataset_file(text)
    with pytest.raises(DatasetFileError, match="notes.npz is not an npz archive"):
        read_dataset_file(text, "csr")
    good = write(tmp_path, "heterophilous", graph)
    cut = tmp_path / "cut.npz"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(DatasetFileError, match="cut.npz"):
        read_dataset_file(cut, "heterophilous")
    with pytest.raises(DatasetFileError, match="cut.npz"):
        read_dataset_file(cut)
    pt = write(tmp_path, "pyg", graph)
    cut_pt = tmp_path / "cut.pt"
    cut_pt.write_bytes(pt.read_bytes()[:200])
    with pytest.raises(DatasetFileError, match="cut.pt"):
        read_dataset_file(cut_pt)


def test_detection_errors(tmp_path):
    unknown = tmp_path / "other.npz"
    np.savez(unknown, weights=np.zeros(3))
    with pytest.raises(DatasetFileError) as info:
        read_dataset_file(unknown)
    message = str(info.value)
    assert "other.npz: no dataset format recognizes it" in message
    assert "'weights'" in message
    assert all(f"{fmt}:" in message for fmt in FORMATS)
    both = tmp_path / "both.npz"
    np.savez(
        both,
        indptr=[0],
        indices=[],
        adj_data=[],
        adj_indices=[],
        adj_indptr=[0],
        adj_shape=[0, 0],
    )
    with pytest.raises(DatasetFileError, match="ambiguous.*csr, gnnbench"):
        read_dataset_file(both)


def _csr_arrays(graph):
    edges, n = graph["edges"], graph["y"].size
    adj = sp.csr_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n, n))
    return {
        "indptr": adj.indptr,
        "indices": adj.indices,
        "x": graph["x"],
        "y": graph["y"],
    }


def _bad_edges(a):
    a["indices"] = a["indices"].copy()
    a["indices"][3] = 99
    return a


def _with(key, value):
    def change(a):
        a = dict(a)
        a[key] = value(a) if callable(value) else value
        return a

    return change


BAD_FILES = [
    (
        "missing labels",
        lambda a: {k: v for k, v in a.items() if k != "y"},
        r"exactly one of the keys \['labels', 'y'\]",
    ),
    (
        "edge past the nodes",
        _bad_edges,
        r"'indices' has 1 node index outside 0\.\.29 \(30 nodes\), the first 99 "
        r"in row 1 \(stored entry 3\)$",
    ),
    ("label count", _with("y", lambda a: a["y"][:-1]), "29 labels for 30 nodes"),
    (
        "negative labels",
        _with("y", lambda a: a["y"] - 1),
        r"'y' has 12 negative labels, the first -1 at node 0; labels must be "
        r"class indices 0\.\.C-1 \(unlabeled nodes are not supported\)$",
    ),
    (
        "NaN features",
        _with("x", lambda a: np.where(np.eye(30, 5) > 0, np.nan, a["x"])),
        r"'x' has 5 NaN or infinite values, the first \(nan\) at row 0, column 0; "
        "features must be finite$",
    ),
    (
        "inf features",
        _with("x", lambda a: a["x"] + np.inf),
        r"'x' has 150 NaN or infinite values, the first \(inf\) at row 0, column 0",
    ),
    (
        "negative weights",
        _with("data", lambda a: -np.ones(a["indices"].size)),
        r"'data' has 35 negative edge weights, the first \(-1\) at stored entry 0, "
        "edge 0 -> 0; edge weights must be finite and >= 0$",
    ),
    (
        "NaN weights",
        _with("data", lambda a: np.full(a["indices"].size, np.nan)),
        r"'data' has 35 NaN or infinite edge weights, the first \(nan\) at stored "
        "entry 0, edge 0 -> 0; edge weights must be finite and >= 0$",
    ),
    (
        "two masks",
        _with("train_mask", lambda a: np.ones(30, bool)),
        r"\['val_mask', 'test_mask'\] are missing",
    ),
    (
        "float labels",
        _with("y", lambda a: a["y"] + 0.5),
        r"'y' has 30 labels that are not integers, the first \(0\.5\) at node 0; "
        r"labels must be class indices 0\.\.C-1$",
    ),
]


@pytest.mark.parametrize(
    "change, match", [c[1:] for c in BAD_FILES], ids=[c[0] for c in BAD_FILES]
)
def test_bad_csr_files(tmp_path, graph, change, match):
    path = tmp_path / "bad.npz"
    np.savez(path, **change(_csr_arrays(graph)))
    with pytest.raises(DatasetFileError, match=match) as info:
        load_dataset(path=path)
    assert str(path) in str(info.value)


def test_bad_heterophilous_and_gnnbench_files(tmp_path, graph):
    path = tmp_path / "h.npz"
    np.savez(path, node_features=graph["x"], node_labels=graph["y"])
    with pytest.raises(DatasetFileError, match=r"keys \['edges'\] are missing"):
        read_dataset_file(path, "heterophilous")
    edges = graph["edges"].copy()
    edges[0, 1] = 30
    np.savez(path, node_features=graph["x"], node_labels=graph["y"], edges=edges)
    with pytest.raises(
        DatasetFileError,
        match=r"h.npz: 'edges' has 1 node index outside 0\.\.29 \(30 nodes\), "
        r"the first 30 at edges\[0, 1\]$",
    ):
        read_dataset_file(path)
    np.savez(
        path,
        node_features=graph["x"],
        node_labels=graph["y"],
        edges=graph["edges"],
        train_masks=graph["train_masks"],
    )
    with pytest.raises(
        DatasetFileError, match=r"\['val_masks', 'test_masks'\] are missing"
    ):
        read_dataset_file(path)
    gb = tmp_path / "g.npz"
    np.savez(
        gb, adj_data=[1.0], adj_indices=[5], adj_indptr=[0, 1, 1], adj_shape=[2, 2]
    )
    with pytest.raises(
        DatasetFileError,
        match=r"g.npz: 'adj_indices' has 1 node index outside 0\.\.1 \(2 nodes\), "
        r"the first 5 in row 0 \(stored entry 0\)$",
    ):
        read_dataset_file(gb)
    np.savez(gb, adj_data=[1.0], adj_indices=[1], adj_indptr=[0, 1])
    with pytest.raises(DatasetFileError, match=r"\['adj_shape'\] are missing"):
        read_dataset_file(gb, "gnnbench")


def test_bad_pyg_data(tmp_path):
    path = tmp_path / "g.pt"
    torch.save(Data(edge_index=torch.tensor([[0], [3]]), num_nodes=2), path)
    with pytest.raises(
        DatasetFileError,
        match=r"g.pt: 'edge_index' has 1 node index outside 0\.\.1 \(2 nodes\), "
        r"the first 3 at edge_index\[1, 0\]$",
    ):
        read_dataset_file(path)
    torch.save([1, 2], path)
    with pytest.raises(DatasetFileError, match="holds a list"):
        read_dataset_file(path)


def test_restricted_unpickler_reads_old_scipy_pickles():
    from diffresnet_pyg.data._npz import RestrictedUnpickler

    matrix = sp.csr_matrix(np.eye(3))
    import io

    loaded = RestrictedUnpickler(io.BytesIO(pickle.dumps(matrix))).load()
    assert (loaded != matrix).nnz == 0


def test_reading_leaves_torchs_safe_globals_as_they_were(tmp_path, graph):
    path = write(tmp_path, "pyg", graph)
    # torch's first load in a process registers safe globals of its own
    # (torch.distributed.tensor); take the list after that one. Its order is
    # not kept by torch, its contents must be.
    read_dataset_file(path)
    before = list(torch.serialization.get_safe_globals())
    read_dataset_file(path)
    after = torch.serialization.get_safe_globals()
    assert len(after) == len(before) and all(g in before for g in after)
    # the classes allowed for the load only are not left allowed
    from diffresnet_pyg.data.formats.pyg_data import SAFE_PYG_CLASSES

    assert [c for c in SAFE_PYG_CLASSES if c in after] == [Data]
    assert Data in before  # PyG's own registration
