"""OGB node-property-prediction datasets, tested offline on tiny graphs that
are written in OGB's own raw on-disk format."""

import ast
import gzip
import logging
import shutil
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from torch_geometric.utils import coalesce, is_undirected

import diffresnet_pyg.data
from diffresnet_pyg.data import (
    DATASET_NAMES,
    OGB_NAMES,
    load_dataset,
    load_ogb,
    row_normalize,
)

NUM_NODES = 30
NUM_FEATURES = 5
NUM_CLASSES = 3
#: The split folder and whether ogb adds the reverse of every stored edge,
#: as in ogb's ``nodeproppred/master.csv``.
LAYOUT = {"ogbn-arxiv": ("time", False), "ogbn-products": ("sales_ranking", True)}


class DownloadAttempted(RuntimeError):
    pass


def _refuse(*args, **kwargs):
    raise DownloadAttempted(f"download attempted: {args}")


def _write_csv_gz(path: Path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt") as f:
        for row in rows:
            f.write(",".join(str(v) for v in row) + "\n")


def _tiny_graph():
    """27 nodes in one (directed) component, 3 nodes in another."""
    rng = np.random.default_rng(0)
    chain = [(i, i + 1) for i in range(26)]
    extra = [(5, 0), (20, 3), (13, 7), (26, 11)]
    small = [(27, 28), (29, 28)]
    edges = np.array(chain + extra + small, dtype=np.int64)
    edges = edges[rng.permutation(len(edges))]  # OGB's files are not sorted
    x = rng.normal(size=(NUM_NODES, NUM_FEATURES)).astype(np.float32)
    y = np.arange(NUM_NODES, dtype=np.int64) % NUM_CLASSES
    year = 2000 + np.arange(NUM_NODES, dtype=np.int64) % 7
    split = {
        "train": np.arange(0, 18),
        "valid": np.arange(18, 24),
        "test": np.array([24, 25, 26, 27, 28, 29]),
    }
    return edges, x, y, year, split


def write_ogb_dataset(root: Path, name: str = "ogbn-arxiv"):
    """Write the tiny graph exactly where ``PygNodePropPredDataset`` reads it.

    ``PygNodePropPredDataset(name, root)`` reads ``root/<name with _>/``: the
    ``RELEASE_v<version>.txt`` marker (without it ogb asks whether to delete
    the folder), ``raw/*.csv.gz`` (no header) and ``split/<split>/*.csv.gz``.
    """
    split_name, _ = LAYOUT[name]
    edges, x, y, year, split = _tiny_graph()
    folder = root / name.replace("-", "_")
    raw = folder / "raw"
    _write_csv_gz(raw / "edge.csv.gz", edges.tolist())
    _write_csv_gz(raw / "node-feat.csv.gz", [[float(v) for v in r] for r in x])
    _write_csv_gz(raw / "node-label.csv.gz", [[v] for v in y.tolist()])
    _write_csv_gz(raw / "num-node-list.csv.gz", [[NUM_NODES]])
    _write_csv_gz(raw / "num-edge-list.csv.gz", [[len(edges)]])
    if name == "ogbn-arxiv":
        _write_csv_gz(raw / "node_year.csv.gz", [[v] for v in year.tolist()])
    for part, index in split.items():
        _write_csv_gz(folder / "split" / split_name / f"{part}.csv.gz", index[:, None])
    (folder / "RELEASE_v1.txt").write_text("tiny test release\n")
    return folder


@pytest.fixture
def ogb_offline(monkeypatch):
    """``ogb`` imported, every download path of it failing loudly."""
    pytest.importorskip("ogb")
    import ogb.nodeproppred.dataset_pyg as dataset_pyg
    import ogb.utils.url

    monkeypatch.setattr(urllib.request, "urlopen", _refuse)
    monkeypatch.setattr(ogb.utils.url, "download_url", _refuse)
    monkeypatch.setattr(dataset_pyg, "download_url", _refuse)
    return dataset_pyg


@pytest.fixture
def ogb_no_download(ogb_offline, monkeypatch):
    """Like :func:`ogb_offline`, and ogb's ``download()`` itself refuses."""
    monkeypatch.setattr(ogb_offline, "decide_download", _refuse)
    monkeypatch.setattr(ogb_offline.PygNodePropPredDataset, "download", _refuse)
    return ogb_offline


def test_names():
    assert OGB_NAMES == ("ogbn-arxiv", "ogbn-products")
    assert "ogb/ogbn-arxiv" in DATASET_NAMES
    assert "ogb/ogbn-products" in DATASET_NAMES


@pytest.mark.parametrize("name", ["ogbn-arxiv", "ogbn-products"])
def test_load_from_raw_files_offline(tmp_path, ogb_no_download, name):
    write_ogb_dataset(tmp_path / "ogb", name)
    edges, x, y, year, split = _tiny_graph()
    data = load_dataset(
        f"ogb/{name}", tmp_path, standardize=False, normalize_features=False
    )

    assert data.num_nodes == NUM_NODES
    edge_index = torch.from_numpy(edges.T.copy())
    if LAYOUT[name][1]:  # ogb stores ogbn-products with both directions
        edge_index = torch.cat([edge_index, edge_index.flip(0)], dim=1)
    expected = coalesce(edge_index, num_nodes=NUM_NODES)
    assert data.edge_index.dtype == torch.long
    assert torch.equal(data.edge_index, expected)
    assert is_undirected(data.edge_index) == LAYOUT[name][1]
    assert data.x.dtype == torch.float32
    assert torch.equal(data.x, torch.from_numpy(x))
    assert data.y.dtype == torch.long and data.y.shape == (NUM_NODES,)
    assert torch.equal(data.y, torch.from_numpy(y))
    masks = (("train", "train_mask"), ("valid", "val_mask"), ("test", "test_mask"))
    for part, attr in masks:
        mask = data[attr]
        assert mask.dtype == torch.bool and mask.shape == (NUM_NODES,)
        assert mask.nonzero().view(-1).tolist() == split[part].tolist()
    if name == "ogbn-arxiv":
        assert data.node_year.view(-1).tolist() == year.tolist()
    folder = tmp_path / "ogb" / name.replace("-", "_")
    assert (folder / "processed" / "geometric_data_processed.pt").is_file()

    # A second load reads ogb's processed file; the bare name works too.
    again = load_ogb(name.upper(), tmp_path)
    for key in ("edge_index", "x", "y", "train_mask", "val_mask", "test_mask"):
        assert torch.equal(again[key], data[key])


def test_standardize_keeps_split_on_largest_component(
    tmp_path, ogb_no_download, caplog
):
    write_ogb_dataset(tmp_path / "ogb")
    raw = load_ogb("ogbn-arxiv", tmp_path)
    with caplog.at_level(logging.WARNING, logger="diffresnet_pyg.data.datasets"):
        data = load_dataset("ogbn-arxiv", tmp_path)  # the defaults

    keep = torch.arange(27)
    assert data.num_nodes == 27
    assert torch.equal(data.orig_index, keep)
    assert is_undirected(data.edge_index)
    assert not bool((data.edge_index[0] == data.edge_index[1]).any())
    # Undirected: every stored edge of the component, in both directions.
    assert data.edge_index.size(1) == 2 * 30
    # The masks are the official ones restricted to the kept nodes: the
    # test nodes 27, 28, 29 outside the component are gone.
    for attr in ("train_mask", "val_mask", "test_mask"):
        assert torch.equal(data[attr], raw[attr][keep])
    assert int(data.test_mask.sum()) == 3
    # Real-valued features are not binarized, only row-normalized (with a
    # warning: the embeddings have negative entries).
    assert torch.allclose(data.x, row_normalize(raw.x[keep]))
    assert "negative entries" in caplog.text
    assert torch.equal(data.y, raw.y[keep])


def test_missing_files_without_download(tmp_path, ogb_no_download):
    with pytest.raises(FileNotFoundError) as info:
        load_ogb("ogbn-arxiv", tmp_path, download=False)
    message = str(info.value)
    assert str(tmp_path / "ogb" / "ogbn_arxiv") in message
    assert "raw/edge.csv.gz" in message
    assert "arxiv.zip" in message


def test_failed_download_is_clear_and_leaves_nothing(tmp_path, ogb_offline):
    # ogb's own download() runs and hits the refused network.
    for _ in range(2):  # no leftover folder, so no stdin prompt the 2nd time
        with pytest.raises(FileNotFoundError, match="download failed") as info:
            load_dataset("ogb/ogbn-arxiv", tmp_path)
        assert str(tmp_path / "ogb" / "ogbn_arxiv") in str(info.value)
        assert "raw/edge.csv.gz" in str(info.value)
        assert isinstance(info.value.__cause__, DownloadAttempted)
        assert not (tmp_path / "ogb").exists()


def test_download_path_with_a_local_zip(tmp_path, ogb_offline, monkeypatch):
    # ogb's real download path, with the "server" being a zip built here in
    # the layout of http://snap.stanford.edu/ogb/data/nodeproppred/arxiv.zip.
    staging = write_ogb_dataset(tmp_path / "staging").rename(
        tmp_path / "staging" / "arxiv"
    )
    archive = Path(shutil.make_archive(str(tmp_path / "arxiv"), "zip", staging.parent))
    urls = []

    def fake_download_url(url, folder, log=True):
        urls.append(url)
        return shutil.copy(archive, Path(folder) / url.rpartition("/")[2])

    monkeypatch.setattr(ogb_offline, "decide_download", lambda url: True)
    monkeypatch.setattr(ogb_offline, "download_url", fake_download_url)
    data = load_ogb("ogbn-arxiv", tmp_path / "root")
    assert urls == ["http://snap.stanford.edu/ogb/data/nodeproppred/arxiv.zip"]
    assert data.num_nodes == NUM_NODES and int(data.train_mask.sum()) == 18
    folder = tmp_path / "root" / "ogb" / "ogbn_arxiv"
    assert (folder / "RELEASE_v1.txt").is_file()
    assert not (tmp_path / "root" / "ogb" / "arxiv.zip").exists()


def test_declined_download_is_an_error(tmp_path, ogb_offline, monkeypatch):
    # ogb asks before downloading more than 1 GB and calls exit() on "no".
    monkeypatch.setattr(ogb_offline, "decide_download", lambda url: False)
    with pytest.raises(FileNotFoundError, match="download failed"):
        load_ogb("ogbn-products", tmp_path)
    assert not (tmp_path / "ogb").exists()


def test_incomplete_folder_is_not_downloaded_over(tmp_path, ogb_no_download):
    folder = write_ogb_dataset(tmp_path / "ogb")
    (folder / "raw" / "node-label.csv.gz").unlink()
    with pytest.raises(FileNotFoundError, match="node-label.csv.gz"):
        load_ogb("ogbn-arxiv", tmp_path)


def test_folder_without_release_marker(tmp_path, ogb_no_download):
    folder = write_ogb_dataset(tmp_path / "ogb")
    (folder / "RELEASE_v1.txt").unlink()
    with pytest.raises(FileNotFoundError, match="RELEASE_v1.txt"):
        load_ogb("ogbn-arxiv", tmp_path)


def test_unknown_names():
    with pytest.raises(ValueError, match="ogbn-arxiv"):
        load_dataset("ogbn-mag")
    with pytest.raises(ValueError, match="ogbn-products"):
        load_ogb("ogb/ogbn-proteins")


def test_without_ogb_the_error_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ogb", None)  # "import ogb" now fails
    with pytest.raises(ImportError) as info:
        load_dataset("ogbn-arxiv", tmp_path)
    assert 'pip install -e ".[ogb]"' in str(info.value)
    assert "pip install" in str(info.value) and "ogb" in str(info.value)


def test_ogb_not_imported_at_module_level():
    """``ogb`` is imported inside the loader only (checked on the source)."""
    package = Path(diffresnet_pyg.data.__file__).parent
    for path in package.rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in tree.body:  # module level only, functions are not walked
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not any(n == "ogb" or n.startswith("ogb.") for n in names), path


@pytest.mark.network
def test_real_ogbn_arxiv(tmp_path):
    pytest.importorskip("ogb")
    data = load_dataset(
        "ogbn-arxiv", tmp_path, standardize=False, normalize_features=False
    )
    assert data.num_nodes == 169343
    # 1,166,243 stored (directed) edges; coalescing drops duplicates, if any.
    assert 1_150_000 <= data.edge_index.size(1) <= 1_166_243
    assert data.x.shape == (169343, 128) and data.x.dtype == torch.float32
    assert int(data.y.max()) + 1 == 40
    sizes = [int(data[m].sum()) for m in ("train_mask", "val_mask", "test_mask")]
    assert sizes == [90941, 29799, 48603]
