import hashlib
import shutil
import urllib.request

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch_geometric.data
import torch_geometric.data.download
from torch_geometric.datasets import Amazon, Coauthor, Planetoid
from torch_geometric.utils import is_undirected

from diffresnet_pyg.data import (
    DATA_ENV_VAR,
    DATASET_NAMES,
    GNNBENCH_URL,
    load_dataset,
    load_gnnbench,
    load_gnnbench_npz,
    load_graphdata,
    load_pyg_dataset,
)
from diffresnet_pyg.data.gnnbench import BUNDLED_NAMES, bundled_path
from tests.fake_data import write_planetoid_raw


class DownloadAttempted(RuntimeError):
    pass


def _refuse(*args, **kwargs):
    raise DownloadAttempted(f"download attempted: {args}")


@pytest.fixture
def no_download(monkeypatch):
    """Make every download path of PyG (and ours) fail loudly."""
    monkeypatch.setattr(torch_geometric.data, "download_url", _refuse)
    monkeypatch.setattr(torch_geometric.data.download, "download_url", _refuse)
    monkeypatch.setattr(urllib.request, "urlopen", _refuse)
    for cls in (Planetoid, Coauthor, Amazon):
        monkeypatch.setattr(cls, "download", _refuse)
    return monkeypatch


# --- gnn-benchmark files ----------------------------------------------------
# cora_root: the synthetic Cora-shaped file, then the real one (real_data).


@pytest.fixture(scope="module")
def cora(cora_root):
    return load_dataset("cora", cora_root, download=False)


@pytest.mark.real_data
def test_cora_lcc(data_cache):
    cora = load_dataset("cora", data_cache, download=False)
    assert cora.num_nodes == 2485
    assert cora.edge_index.size(1) == 10138
    assert cora.edge_index.dtype == torch.long
    assert is_undirected(cora.edge_index)
    assert not bool((cora.edge_index[0] == cora.edge_index[1]).any())
    assert torch.bincount(cora.y).tolist() == [285, 406, 726, 379, 214, 131, 344]
    assert cora.y.dtype == torch.long
    assert cora.x.shape == (2485, 1433) and cora.x.dtype == torch.float32
    assert cora.orig_index.shape == (2485,)
    assert torch.all(cora.orig_index[1:] > cora.orig_index[:-1])


def test_edge_index_is_coalesced(cora):
    ei = cora.edge_index
    key = ei[0] * cora.num_nodes + ei[1]
    assert torch.all(key[1:] > key[:-1])


@pytest.mark.real_data
def test_citeseer_lcc(data_cache):
    data = load_dataset("citeseer", data_cache, download=False)
    assert data.num_nodes == 2110
    assert data.edge_index.size(1) == 2 * 3668
    assert int(data.y.max()) + 1 == 6
    assert data.y.unique().tolist() == list(range(6))


def test_features_binary_then_row_normalized(cora_root, cora):
    binary = load_dataset("cora", cora_root, normalize_features=False)
    assert set(binary.x.unique().tolist()) <= {0.0, 1.0}
    sums = cora.x.sum(dim=1)
    ones = torch.isclose(sums, torch.ones_like(sums))
    assert torch.all(ones | (sums == 0))
    expected = binary.x / binary.x.sum(1, keepdim=True).clamp(min=1)
    assert torch.allclose(cora.x, expected)


def test_raw_load_is_unprocessed(cora_root):
    data = load_gnnbench("cora", cora_root)
    assert data.num_nodes == 2708
    assert "orig_index" not in data
    assert not is_undirected(data.edge_index)
    same = load_gnnbench_npz(cora_root / "gnnbench" / "cora.npz")
    assert torch.equal(same.edge_index, data.edge_index)


def test_names_are_case_insensitive_with_alias(cora_root, cora):
    for name in ("CORA", "gnnbench/cora", " Cora "):
        other = load_dataset(name, cora_root, download=False)
        assert torch.equal(other.edge_index, cora.edge_index)


def test_env_var_root(cora_root, monkeypatch, cora):
    monkeypatch.setenv(DATA_ENV_VAR, str(cora_root))
    data = load_dataset("cora", download=False)
    assert torch.equal(data.x, cora.x)


def test_missing_file_download_fails_clearly(tmp_path, no_download):
    expected_path = tmp_path / "gnnbench" / "pubmed.npz"
    with pytest.raises(FileNotFoundError) as info:
        load_dataset("pubmed", tmp_path)
    message = str(info.value)
    assert str(expected_path) in message
    assert f"{GNNBENCH_URL}pubmed.npz" in message
    assert isinstance(info.value.__cause__, DownloadAttempted)
    assert not list((tmp_path / "gnnbench").glob("*"))


def test_missing_file_without_download(tmp_path, no_download):
    with pytest.raises(FileNotFoundError, match="pubmed.npz"):
        load_gnnbench("pubmed", tmp_path, download=False)


@pytest.mark.parametrize("name", BUNDLED_NAMES)
def test_shipped_copy_is_read_without_root_file_or_network(name, tmp_path, no_download):
    data = load_dataset(name, tmp_path)  # no file under the root, no download
    assert data.num_nodes == {"cora": 2485, "citeseer": 2110}[name]
    assert not (tmp_path / "gnnbench").exists()  # nothing written


@pytest.mark.parametrize("name", BUNDLED_NAMES)
def test_shipped_copy_is_the_documented_file(name):
    digest = hashlib.sha256(bundled_path(name).read_bytes()).hexdigest()
    readme = (bundled_path(name).parent / "README.md").read_text()
    assert f"| `{name}.npz` |" in readme and digest in readme


@pytest.mark.real_data
@pytest.mark.parametrize("name", BUNDLED_NAMES)
def test_shipped_copy_equals_upstream_file(name, shared_data):
    upstream = shared_data / "gnnbench" / f"{name}.npz"
    assert bundled_path(name).read_bytes() == upstream.read_bytes()


def test_root_file_wins_over_shipped_copy(tmp_path, no_download):
    folder = tmp_path / "gnnbench"
    folder.mkdir()
    shipped = load_gnnbench_npz(bundled_path("cora"))
    np.savez(
        folder / "cora.npz",
        adj_data=np.ones(2),
        adj_indices=np.array([1, 0]),
        adj_indptr=np.array([0, 1, 2]),
        adj_shape=np.array([2, 2]),
        labels=np.array([0, 1]),
    )
    mine = load_gnnbench("cora", tmp_path)
    assert mine.num_nodes == 2 != shipped.num_nodes


def test_missing_file_is_downloaded_to_the_root(tmp_path, cora_root, monkeypatch):
    calls = []

    def fake_download(url, folder, log=True, filename=None):
        calls.append(url)
        target = f"{folder}/{filename}"
        shutil.copyfile(cora_root / "gnnbench" / "cora.npz", target)
        return target

    monkeypatch.setattr(torch_geometric.data, "download_url", fake_download)
    data = load_gnnbench("pubmed", tmp_path)  # not shipped: downloaded
    assert calls == [f"{GNNBENCH_URL}pubmed.npz"]
    assert (tmp_path / "gnnbench" / "pubmed.npz").is_file()
    assert not (tmp_path / "gnnbench" / "pubmed.npz.part").exists()
    source = load_gnnbench_npz(cora_root / "gnnbench" / "cora.npz")
    assert torch.equal(data.edge_index, source.edge_index)
    # Present now: no second download.
    load_gnnbench("pubmed", tmp_path)
    assert len(calls) == 1


def save_csr_npz(path, adj, labels, **extra):
    """Write a gnn-benchmark style npz with CSR adjacency and CSR labels."""
    np.savez(
        path,
        adj_data=adj.data,
        adj_indices=adj.indices,
        adj_indptr=adj.indptr,
        adj_shape=adj.shape,
        labels_data=labels.data,
        labels_indices=labels.indices,
        labels_indptr=labels.indptr,
        labels_shape=labels.shape,
        **extra,
    )
    return path


def test_gnnbench_npz_variants(tmp_path):
    adj = sp.csr_matrix(
        (np.array([1.0, 2.0, 1.0]), (np.array([0, 1, 2]), np.array([1, 2, 0]))),
        shape=(3, 3),
    )
    labels = sp.csr_matrix(np.array([[0, 1], [1, 0], [0, 1]], dtype=np.float32))
    path = save_csr_npz(
        tmp_path / "variant.npz",
        adj,
        labels,
        attr_matrix=np.array([[0.5, 0.0], [0.0, 0.0], [1.0, 1.0]]),
    )
    data = load_gnnbench_npz(path)
    assert data.edge_index.tolist() == [[0, 1, 2], [1, 2, 0]]
    assert data.edge_weight.tolist() == [1.0, 2.0, 1.0]
    assert data.x.dtype == torch.float32
    assert data.x.tolist() == [[0.5, 0.0], [0.0, 0.0], [1.0, 1.0]]
    assert data.y.tolist() == [1, 0, 1]
    assert data.y.dtype == torch.long


def test_not_a_gnnbench_file(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, something=np.zeros(3))
    with pytest.raises(ValueError, match="adj_data"):
        load_gnnbench_npz(path)


# --- PyG datasets -------------------------------------------------------------


def test_planetoid_synthetic_raw_files_without_network(tmp_path, no_download):
    write_planetoid_raw(tmp_path / "planetoid" / "Cora" / "raw")
    data = load_pyg_dataset("planetoid", "Cora", tmp_path)
    assert data.num_nodes == 900 and data.x.size(1) == 100
    assert data.x.dtype == torch.float32 and data.y.dtype == torch.long
    masks = (data.train_mask, data.val_mask, data.test_mask)
    assert [int(m.sum()) for m in masks] == [140, 500, 200]
    assert torch.bincount(data.y[data.train_mask]).tolist() == [20] * 7
    # nothing is written under the root (it may be shared or read-only)
    assert sorted(p.name for p in (tmp_path / "planetoid" / "Cora").iterdir()) == [
        "raw"
    ]
    standardized = load_dataset("planetoid/cora", tmp_path)
    assert standardized.num_nodes == 900  # connected
    assert torch.equal(standardized.train_mask, data.train_mask)


@pytest.mark.real_data
@pytest.mark.parametrize(("name", "num_nodes"), [("Cora", 2708), ("CiteSeer", 3327)])
def test_planetoid_from_raw_files_without_network(
    data_cache, no_download, name, num_nodes
):
    data = load_pyg_dataset("planetoid", name, data_cache)
    assert data.num_nodes == num_nodes
    assert data.x.dtype == torch.float32 and data.y.dtype == torch.long
    assert not (data_cache / "planetoid" / name / "processed").exists()


@pytest.mark.real_data
def test_planetoid_cora_standardized_lcc(data_cache, no_download):
    data = load_dataset("planetoid/cora", data_cache)
    assert data.num_nodes == 2485
    assert data.edge_index.size(1) == 10138
    assert data.train_mask.shape == (2485,)


def test_pyg_missing_raw_download_fails_clearly(tmp_path, no_download):
    raw_dir = tmp_path / "planetoid" / "Cora" / "raw"
    with pytest.raises(FileNotFoundError) as info:
        load_dataset("planetoid/Cora", tmp_path)
    assert str(raw_dir) in str(info.value)
    assert "ind.cora.x" in str(info.value)
    with pytest.raises(FileNotFoundError, match="CS"):
        load_pyg_dataset("coauthor", "cs", tmp_path, download=False)


def test_pyg_unknown_names():
    with pytest.raises(ValueError, match="planetoid"):
        load_pyg_dataset("wiki", "Cora")
    with pytest.raises(ValueError, match="Computers"):
        load_pyg_dataset("amazon", "Books")


# --- GraphData files ----------------------------------------------------------


@pytest.mark.real_data
def test_graphdata_coauthor_cs(data_cache):
    data = load_dataset(
        "graphdata/coauthor_cs", data_cache, standardize=False, normalize_features=False
    )
    assert data.num_nodes == 18333
    assert data.x.shape == (18333, 6805)
    assert data.x.dtype == torch.float32
    assert int(data.y.max()) + 1 == 15
    assert data.y.dtype == torch.long


@pytest.mark.real_data
def test_graphdata_amazon_cs_is_symmetrized(data_cache):
    raw = load_graphdata("amazon_cs", data_cache)
    assert raw.num_nodes == 13752 and raw.x.size(1) == 767
    assert not is_undirected(raw.edge_index)
    data = load_dataset("graphdata/amazon_cs", data_cache)
    assert is_undirected(data.edge_index)
    assert data.num_nodes <= raw.num_nodes
    assert data.y.unique().tolist() == list(range(10))


def test_graphdata_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="coauthor_phy.npz"):
        load_graphdata("coauthor_phy", tmp_path)


# --- dispatcher ---------------------------------------------------------------


def test_unknown_dataset_name_lists_allowed():
    with pytest.raises(ValueError) as info:
        load_dataset("cornell")
    message = str(info.value)
    assert "cornell" in message
    for name in ("cora", "planetoid/Cora", "graphdata/coauthor_cs"):
        assert name in message


def test_dataset_names_listed():
    assert "cora" in DATASET_NAMES
    assert "amazon/Computers" in DATASET_NAMES
    assert "graphdata/amazon_cs" in DATASET_NAMES


def test_min_class_size_needs_standardize(fake_root):
    with pytest.raises(ValueError, match="standardize"):
        load_dataset("cora", fake_root, standardize=False, min_class_size=5)


def test_min_class_size_drops_classes(cora_root):
    data = load_dataset("cora", cora_root, min_class_size=214)
    # Classes of 131 and 214 nodes go; the rest is re-standardized.
    assert int(data.y.max()) + 1 == 5
    assert torch.bincount(data.y).min() > 214


@pytest.mark.network
def test_pubmed_gnnbench(tmp_path):
    data = load_dataset("pubmed", tmp_path)
    assert int(data.y.max()) + 1 == 3
    from diffresnet_pyg.data import protocol_split

    split = protocol_split(data.y, 0)
    assert (split.train_idx.numel(), split.val_idx.numel()) == (60, 90)
    assert split.test_idx.numel() == data.num_nodes - 150


@pytest.mark.network
def test_pubmed_planetoid(tmp_path):
    data = load_dataset("planetoid/PubMed", tmp_path, standardize=False)
    assert data.num_nodes == 19717


def test_gnnbench_npz_multilabel_and_no_attributes(tmp_path):
    adj = sp.csr_matrix(np.array([[0, 1], [1, 0]], dtype=np.float32))
    labels = sp.csr_matrix(np.array([[1, 1, 0], [0, 0, 1]], dtype=np.float32))
    path = save_csr_npz(tmp_path / "multi.npz", adj, labels)
    data = load_gnnbench_npz(path)
    assert "x" not in data
    assert "edge_weight" not in data
    assert data.y.tolist() == [[1, 1, 0], [0, 0, 1]]
