import numpy as np
import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.transforms import Compose

from diffresnet_pyg.data import (
    RowNormalizeFeatures,
    Standardize,
    remove_small_classes,
    row_normalize,
    standardize,
)


def tiny_graph() -> Data:
    """Three components: {3, 4, 5, 6} (largest), {0, 1}, {2}.

    Edge 3->4 has weight 2.5 and only one direction, 4<->5 is stored both
    ways, 5->5 and 2->2 are self loops, 6->3 is directed.
    """
    edge_index = torch.tensor(
        [
            [3, 4, 5, 5, 6, 0, 2],
            [4, 5, 4, 5, 3, 1, 2],
        ]
    )
    edge_weight = torch.tensor([2.5, 1.0, 1.0, 3.0, 1.0, 1.0, 1.0])
    x = torch.tensor(
        [
            [1.0, 1.0, 1.0],
            [2.0, 0.0, 0.0],
            [0.0, 0.0, 7.0],
            [0.5, 0.0, -1.0],
            [0.0, 0.0, 0.0],
            [3.0, 0.0, 0.0],
            [0.0, 2.0, 0.0],
        ]
    )
    y = torch.tensor([0, 0, 5, 7, 3, 7, 9])
    mask = torch.tensor([True, False, True, False, True, True, False])
    return Data(
        edge_index=edge_index,
        edge_weight=edge_weight,
        x=x,
        y=y,
        node_mask=mask,
        num_nodes=7,
    )


# Worked out by hand: nodes 3, 4, 5, 6 become 0, 1, 2, 3; edges 3-4, 4-5, 6-3
# become 0-1, 1-2, 3-0 in both directions; the self loop 5-5 and all weights
# disappear; labels 7, 3, 7, 9 become 1, 0, 1, 2 (sorted classes 3, 7, 9).
EXPECTED_EDGE_INDEX = [[0, 0, 1, 1, 2, 3], [1, 3, 0, 2, 1, 0]]
EXPECTED_X = [
    [1.0, 0.0, 1.0],
    [0.0, 0.0, 0.0],
    [1.0, 0.0, 0.0],
    [0.0, 1.0, 0.0],
]
EXPECTED_Y = [1, 0, 1, 2]
EXPECTED_ORIG = [3, 4, 5, 6]
EXPECTED_X_NORMALIZED = [
    [0.5, 0.0, 0.5],
    [0.0, 0.0, 0.0],
    [1.0, 0.0, 0.0],
    [0.0, 1.0, 0.0],
]


def test_standardize_tiny_graph_by_hand():
    data = tiny_graph()
    out = standardize(data)
    assert out.num_nodes == 4
    assert out.edge_index.dtype == torch.long
    assert out.edge_index.tolist() == EXPECTED_EDGE_INDEX
    assert out.x.tolist() == EXPECTED_X
    assert out.x.dtype == torch.float32
    assert out.y.tolist() == EXPECTED_Y
    assert out.y.dtype == torch.long
    assert out.orig_index.tolist() == EXPECTED_ORIG
    assert out.node_mask.tolist() == [False, True, True, False]
    assert "edge_weight" not in out


def test_standardize_does_not_modify_input():
    data = tiny_graph()
    before = {k: v.clone() for k, v in data.items() if torch.is_tensor(v)}
    standardize(data)
    for key, value in before.items():
        assert torch.equal(data[key], value)


def test_standardize_accepts_sparse_features():
    data = tiny_graph()
    data.x = data.x.to_sparse()
    out = standardize(data)
    assert out.x.layout == torch.strided
    assert out.x.tolist() == EXPECTED_X


def test_standardize_options():
    out = standardize(tiny_graph(), largest_component=False, binarize_features=False)
    assert out.num_nodes == 7
    assert out.orig_index.tolist() == list(range(7))
    assert torch.equal(out.x, tiny_graph().x)
    # Undirected and loop-free even without the component step.
    assert out.edge_index.tolist() == [
        [0, 1, 3, 3, 4, 4, 5, 6],
        [1, 0, 4, 6, 3, 5, 4, 3],
    ]
    assert out.y.tolist() == [0, 0, 2, 3, 1, 3, 4]


def test_standardize_twice_composes_orig_index():
    once = standardize(tiny_graph())
    twice = standardize(once)
    assert twice.orig_index.tolist() == EXPECTED_ORIG
    assert twice.edge_index.tolist() == EXPECTED_EDGE_INDEX
    assert torch.equal(twice.x, once.x)
    assert torch.equal(twice.y, once.y)


def test_standardize_tie_follows_gnnbench_argsort():
    # Two components of size 2: {0, 1} and {2, 3}.
    data = Data(edge_index=torch.tensor([[0, 2], [1, 3]]), num_nodes=4)
    out = standardize(data)
    sizes = np.array([2, 2])
    winner = int(np.argsort(sizes)[::-1][:1][0])
    assert out.orig_index.tolist() == [2 * winner, 2 * winner + 1]


def test_standardize_without_features_or_labels():
    data = Data(edge_index=torch.tensor([[0, 1], [1, 2]]), num_nodes=4)
    out = standardize(data)
    assert out.num_nodes == 3
    assert "x" not in out and "y" not in out


def test_standardize_transform_class():
    data = tiny_graph()
    transform = Standardize()
    out = transform(data)
    assert out.edge_index.tolist() == EXPECTED_EDGE_INDEX
    assert "Standardize" in repr(transform)
    assert torch.equal(data.x, tiny_graph().x)


def test_compose_standardize_then_row_normalize():
    out = Compose([Standardize(), RowNormalizeFeatures()])(tiny_graph())
    assert out.x.tolist() == EXPECTED_X_NORMALIZED
    assert "RowNormalizeFeatures" in repr(RowNormalizeFeatures())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_row_normalize_by_hand(dtype):
    x = torch.tensor([[1.0, 3.0, 0.0], [0.0, 0.0, 0.0], [2.0, 2.0, 4.0]], dtype=dtype)
    out = row_normalize(x)
    expected = torch.tensor(
        [[0.25, 0.75, 0.0], [0.0, 0.0, 0.0], [0.25, 0.25, 0.5]], dtype=dtype
    )
    assert out.dtype == dtype
    assert torch.equal(out, expected)
    assert torch.equal(x[0], torch.tensor([1.0, 3.0, 0.0], dtype=dtype))


def test_row_normalize_sparse_matches_dense():
    x = torch.tensor([[1.0, 3.0, 0.0], [0.0, 0.0, 0.0], [2.0, 2.0, 4.0]])
    out = row_normalize(x.to_sparse())
    assert out.is_sparse
    assert torch.equal(out.to_dense(), row_normalize(x))


def test_row_normalize_integer_input_and_bad_shape():
    assert row_normalize(torch.tensor([[1, 1]])).tolist() == [[0.5, 0.5]]
    with pytest.raises(ValueError, match="2-D"):
        row_normalize(torch.ones(3))


def test_remove_small_classes():
    data = Data(
        edge_index=torch.tensor([[0, 1, 2, 3], [1, 2, 3, 4]]),
        x=torch.eye(5),
        y=torch.tensor([0, 1, 0, 2, 2]),
        num_nodes=5,
    )
    out = remove_small_classes(data, 1)
    assert out.orig_index.tolist() == [0, 2, 3, 4]
    assert out.y.tolist() == [0, 0, 2, 2]
    assert out.edge_index.tolist() == [[1, 2], [2, 3]]
    restandardized = standardize(out)
    assert restandardized.orig_index.tolist() == [2, 3, 4]
    assert restandardized.y.tolist() == [0, 1, 1]
    with pytest.raises(ValueError, match="min_size"):
        remove_small_classes(data, -1)
