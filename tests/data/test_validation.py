"""Invalid content in dataset files: refused with a message naming what and where.

Every case writes a small file with one defect and checks the whole message
(after ``<path>: ``): the key, how many entries are wrong and the first one.
The checks run when the file is read, so they do not depend on the
preprocessing (``standardize``) asked for.
"""

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from torch_geometric.data import Data

from diffresnet_pyg.data import (
    DatasetFileError,
    load_dataset,
    load_gnnbench_npz,
    load_graphdata_npz,
    read_dataset_file,
)

NAMES = ["Case_Based", "Genetic_Algorithms", "Neural_Networks", "Theory"]

#: A 5-node path graph (4 classes, class 0 twice) in CSR.
ADJ = sp.csr_matrix(
    (np.ones(8, np.float32), ([0, 1, 1, 2, 2, 3, 3, 4], [1, 0, 2, 1, 3, 2, 4, 3])),
    shape=(5, 5),
)
ATTR = sp.csr_matrix(np.eye(5, 3, dtype=np.float32) + np.eye(5, 3, -2))
LABELS = np.array([0, 1, 2, 3, 0])


def _gnnbench(adj=ADJ, attr=ATTR, **extra):
    arrays = {
        "adj_data": adj.data,
        "adj_indices": adj.indices,
        "adj_indptr": adj.indptr,
        "adj_shape": np.array(adj.shape),
        "labels": LABELS,
    }
    if attr is not None:
        arrays.update(
            attr_data=attr.data,
            attr_indices=attr.indices,
            attr_indptr=attr.indptr,
            attr_shape=np.array(attr.shape),
        )
    arrays.update(extra)
    return arrays


def _with_nan_attr():
    attr = ATTR.copy()
    attr.data[2] = np.nan  # row 2, column 0 (row 1 holds one entry)
    return _gnnbench(attr=attr)


def _with_weights(*changes):
    adj = ADJ.copy()
    for position, value in changes:
        adj.data[position] = value
    return _gnnbench(adj=adj)


def _with_indptr(indptr):
    return _gnnbench(adj_indptr=np.array(indptr, dtype=np.int32))


def _one_hot(rows):
    matrix = np.zeros((5, 4), np.float32)
    for node, label in rows:
        matrix[node, label] = 1
    return matrix


def _with_label_matrix(matrix):
    """The file with its labels as CSR parts ``labels_*`` (a label matrix)."""
    hot = sp.csr_matrix(matrix)
    arrays = {k: v for k, v in _gnnbench().items() if k != "labels"}
    arrays.update(
        labels_data=hot.data,
        labels_indices=hot.indices,
        labels_indptr=hot.indptr,
        labels_shape=np.array(hot.shape),
    )
    return arrays


GNNBENCH_CASES = [
    (
        "NaN feature",
        _with_nan_attr(),
        "'attr_data' has 1 NaN or infinite value, the first (nan) at row 2, "
        "column 0; features must be finite",
    ),
    (
        "infinite dense features",
        _gnnbench(
            attr=None,
            attr_matrix=np.where(np.eye(5, 2) > 0, -np.inf, 0.0),
        ),
        "'attr_matrix' has 2 NaN or infinite values, the first (-inf) at row 0, "
        "column 0; features must be finite",
    ),
    (
        "negative edge weight",
        _with_weights((3, -2.0)),
        "'adj_data' has 1 negative edge weight, the first (-2) at stored entry "
        "3, edge 2 -> 1; edge weights must be finite and >= 0",
    ),
    (
        "NaN edge weights",
        _with_weights((1, np.nan), (5, np.inf)),
        "'adj_data' has 2 NaN or infinite edge weights, the first (nan) at "
        "stored entry 1, edge 1 -> 0; edge weights must be finite and >= 0",
    ),
    (
        "edge past the nodes",
        _gnnbench(adj_indices=np.array([1, 0, 2, 1, 3, 2, 4, 7], np.int32)),
        "'adj_indices' has 1 node index outside 0..4 (5 nodes), the first 7 in "
        "row 4 (stored entry 7)",
    ),
    (
        "negative node index",
        _gnnbench(adj_indices=np.array([-1, 0, 2, 1, 3, 2, 4, 3], np.int32)),
        "'adj_indices' has 1 node index outside 0..4 (5 nodes), the first -1 in "
        "row 0 (stored entry 0)",
    ),
    (
        "decreasing row pointers",
        _with_indptr([0, 1, 3, 2, 7, 8]),
        "'adj_indptr' decreases after position 2; row pointers must start at 0, "
        "never decrease and end at len('adj_indices')",
    ),
    (
        "row pointers too short",
        _with_indptr([0, 1, 3, 5, 8]),
        "'adj_indptr' has 5 entries for 5 rows (needs 6); row pointers must "
        "start at 0, never decrease and end at len('adj_indices')",
    ),
    (
        "feature column past the shape",
        _gnnbench(attr_shape=np.array([5, 2])),
        "'attr_indices' has 2 column indices outside 0..1 (2 columns), the "
        "first 2 in row 2 (stored entry 3)",
    ),
    (
        "negative label",
        _gnnbench(labels=np.array([0, 1, -1, 3, -1])),
        "'labels' has 2 negative labels, the first -1 at node 2; labels must be "
        "class indices 0..C-1 (unlabeled nodes are not supported)",
    ),
    (
        "a label far past the others",
        _gnnbench(labels=np.array([0, 1, 2, 99, 0])),
        "'labels' leaves 96 classes of the 100 in 0..max label without any "
        "node: 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, ... (96 in all); labels must be "
        "consecutive class indices 0..C-1",
    ),
    (
        "a class without nodes",
        _gnnbench(labels=np.array([0, 2, 2, 3, 0])),
        "'labels' leaves 1 class of the 4 in 0..max label without any node: 1; "
        "labels must be consecutive class indices 0..C-1",
    ),
    (
        "label past the class names",
        _gnnbench(labels=np.array([0, 1, 2, 99, 3]), class_names=np.array(NAMES)),
        "'labels' has 1 label >= 4, the number of classes in 'class_names', the "
        "first 99 at node 3",
    ),
    (
        "a named class without nodes",
        _gnnbench(labels=np.array([0, 1, 2, 2, 0]), class_names=np.array(NAMES)),
        "'labels' leaves 1 class of the 4 in 'class_names' without any node: 3 "
        "('Theory'); labels must be consecutive class indices 0..C-1",
    ),
    (
        "fractional labels",
        _gnnbench(labels=np.array([0.0, 1.0, 2.5, 3.0, np.nan])),
        "'labels' has 2 labels that are not integers, the first (2.5) at node 2; "
        "labels must be class indices 0..C-1",
    ),
    (
        "unlabeled rows of a label matrix",
        _with_label_matrix(_one_hot([(0, 0), (1, 1), (3, 3)])),
        "'labels_data' (a label matrix) has 2 rows without a label, the first at "
        "node 2; every node needs a label (unlabeled nodes are not supported)",
    ),
    (
        "label count",
        _gnnbench(labels=np.array([0, 1, 2, 3])),
        "'labels' has 4 labels for 5 nodes; the file is inconsistent",
    ),
]


@pytest.mark.parametrize(
    ("arrays", "expected"),
    [case[1:] for case in GNNBENCH_CASES],
    ids=[case[0] for case in GNNBENCH_CASES],
)
def test_bad_gnnbench_files(tmp_path, arrays, expected):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    for load in (
        load_gnnbench_npz,
        read_dataset_file,
        lambda p: load_dataset(path=p),
        lambda p: load_dataset(path=p, standardize=False, normalize_features=False),
    ):
        with pytest.raises(DatasetFileError) as info:
            load(path)
        assert str(info.value) == f"{path}: {expected}"


def test_gnnbench_good_file_still_loads(tmp_path):
    path = tmp_path / "good.npz"
    np.savez(path, **_gnnbench(class_names=np.array(NAMES)))
    data = load_gnnbench_npz(path)
    assert data.y.tolist() == LABELS.tolist()
    assert torch.equal(data.x, torch.from_numpy(ATTR.toarray()))
    weighted = tmp_path / "weighted.npz"
    np.savez(weighted, **_with_weights((0, 0.0), (1, 0.0), (2, 2.5)))
    assert load_gnnbench_npz(weighted).edge_weight.tolist()[:3] == [0.0, 0.0, 2.5]
    multi = tmp_path / "multi.npz"
    hot = _one_hot([(0, 0), (0, 1), (1, 1), (2, 2), (3, 3), (4, 0)])
    np.savez(multi, **_with_label_matrix(hot))
    assert load_gnnbench_npz(multi).y.shape == (5, 4)  # multi-label: kept


# --- GraphData: pickled scipy matrices, never validated by scipy ----------------


def _boxed(value):
    box = np.empty((), dtype=object)
    box[()] = value
    return box


def _graphdata(adj=ADJ, attr=ATTR, labels=LABELS, metadata=None):
    arrays = {
        "adj_matrix": _boxed(adj),
        "node_attr": _boxed(attr),
        "node_label": labels,
    }
    if metadata is not None:
        arrays["metadata"] = _boxed(metadata)
    return arrays


def _adj_with_index(position, value):
    adj = ADJ.copy()
    adj.indices[position] = value  # scipy does not check this
    return adj


def _nan_attr():
    attr = ATTR.copy()
    attr.data[-1] = np.nan  # row 4, column 2
    return attr


GRAPHDATA_CASES = [
    (
        "pickled index past the shape",
        _graphdata(adj=_adj_with_index(4, 9)),
        "'adj_matrix.indices' has 1 column index outside 0..4 (5 columns), the "
        "first 9 in row 2 (stored entry 4)",
    ),
    (
        "negative pickled weight",
        _graphdata(adj=ADJ.multiply(-1).tocsr()),
        "'adj_matrix' has 8 negative edge weights, the first (-1) at stored "
        "entry 0, edge 0 -> 1; edge weights must be finite and >= 0",
    ),
    (
        "NaN pickled feature",
        _graphdata(attr=_nan_attr()),
        "'node_attr' has 1 NaN or infinite value, the first (nan) at row 4, "
        "column 2; features must be finite",
    ),
    (
        "label past metadata class names",
        _graphdata(
            labels=np.array([0, 1, 2, 3, 4], np.int32),
            metadata={"class_names": np.array(NAMES, dtype=object)},
        ),
        "'node_label' has 1 label >= 4, the number of classes in "
        "metadata['class_names'], the first 4 at node 4",
    ),
    (
        "a class without nodes",
        _graphdata(labels=np.array([0, 1, 3, 3, 0], np.int32)),
        "'node_label' leaves 1 class of the 4 in 0..max label without any node: "
        "2; labels must be consecutive class indices 0..C-1",
    ),
]


@pytest.mark.parametrize(
    ("arrays", "expected"),
    [case[1:] for case in GRAPHDATA_CASES],
    ids=[case[0] for case in GRAPHDATA_CASES],
)
def test_bad_graphdata_files(tmp_path, arrays, expected):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    for load in (load_graphdata_npz, read_dataset_file):
        with pytest.raises(DatasetFileError) as info:
            load(path)
        assert str(info.value) == f"{path}: {expected}"


def test_graphdata_coo_index_past_the_shape(tmp_path):
    coo = sp.coo_matrix((np.ones(2), ([0, 1], [1, 0])), shape=(5, 5))
    coo.row[1] = 6  # scipy does not check an unpickled matrix
    path = tmp_path / "coo.npz"
    np.savez(path, **_graphdata(adj=coo))
    with pytest.raises(DatasetFileError) as info:
        load_graphdata_npz(path)
    assert str(info.value) == (
        f"{path}: 'adj_matrix' has 1 row index outside 0..4 (5 rows), the first "
        "6 at stored entry 1"
    )


def test_graphdata_metadata_class_names(tmp_path):
    path = tmp_path / "named.npz"
    metadata = {"class_names": np.array(NAMES, dtype=object)}
    np.savez(path, **_graphdata(metadata=metadata))
    assert load_graphdata_npz(path).y.tolist() == LABELS.tolist()


# --- the other registered formats -------------------------------------------------


def test_csr_file_with_a_label_gap(tmp_path):
    path = tmp_path / "gap.npz"
    np.savez(
        path,
        indptr=ADJ.indptr,
        indices=ADJ.indices,
        x=ATTR.toarray(),
        y=np.array([0, 1, 5, 1, 0]),
    )
    for standardize in (True, False):
        with pytest.raises(DatasetFileError) as info:
            load_dataset(path=path, standardize=standardize)
        assert str(info.value) == (
            f"{path}: 'y' leaves 3 classes of the 6 in 0..max label without any "
            "node: 2, 3, 4; labels must be consecutive class indices 0..C-1"
        )


def test_heterophilous_file_with_nan_features(tmp_path):
    path = tmp_path / "h.npz"
    x = ATTR.toarray()
    x[3, 1] = np.nan
    edges = np.array([[0, 1], [1, 2], [2, 3], [3, 4]])
    np.savez(path, node_features=x, node_labels=LABELS, edges=edges)
    with pytest.raises(DatasetFileError) as info:
        read_dataset_file(path)
    assert str(info.value) == (
        f"{path}: 'node_features' has 1 NaN or infinite value, the first (nan) at "
        "row 3, column 1; features must be finite"
    )


def _pyg_data(**changes):
    data = Data(
        edge_index=torch.tensor([[0, 1, 1, 2, 2, 3, 3, 4], [1, 0, 2, 1, 3, 2, 4, 3]]),
        x=torch.from_numpy(ATTR.toarray()),
        y=torch.from_numpy(LABELS),
        num_nodes=5,
    )
    for key, value in changes.items():
        data[key] = value
    return data


PYG_CASES = [
    (
        "label gap",
        _pyg_data(y=torch.tensor([0, 1, 4, 4, 0])),
        "'y' leaves 2 classes of the 5 in 0..max label without any node: 2, 3; "
        "labels must be consecutive class indices 0..C-1",
    ),
    (
        "NaN feature",
        _pyg_data(x=torch.tensor([[0.0], [1.0], [float("nan")], [0.0], [0.0]])),
        "'x' has 1 NaN or infinite value, the first (nan) at row 2, column 0; "
        "features must be finite",
    ),
    (
        "negative weight",
        _pyg_data(edge_weight=torch.tensor([1.0, 1, 1, 1, 1, -0.5, 1, 1])),
        "'edge_weight' has 1 negative edge weight, the first (-0.5) at stored "
        "entry 5, edge 3 -> 2; edge weights must be finite and >= 0",
    ),
]


@pytest.mark.parametrize(
    ("data", "expected"),
    [case[1:] for case in PYG_CASES],
    ids=[case[0] for case in PYG_CASES],
)
def test_bad_pyg_files(tmp_path, data, expected):
    path = tmp_path / "g.pt"
    torch.save(data.to_dict(), path)
    with pytest.raises(DatasetFileError) as info:
        read_dataset_file(path)
    assert str(info.value) == f"{path}: {expected}"
