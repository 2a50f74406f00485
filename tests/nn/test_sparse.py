import pytest
import torch
from torch_geometric.utils import coalesce, to_torch_csr_tensor

from diffresnet_pyg.nn.sparse import csr_with_transpose


def csr_parts(adj):
    return adj.crow_indices(), adj.col_indices(), adj.values()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("repeated", [False, True])
def test_csr_with_transpose(dtype, repeated):
    g = torch.Generator().manual_seed(0)
    n = 30
    index = torch.randint(0, n - 3, (2, 200), generator=g)  # empty rows, columns
    if not repeated:
        index = coalesce(index, num_nodes=n)
    value = torch.randn(index.size(1), generator=g, dtype=dtype)
    adj, adj_t = csr_with_transpose(index[0], index[1], value, n)
    dense = torch.zeros(n, n, dtype=dtype).index_put_(
        (index[0], index[1]), value, accumulate=True
    )
    torch.testing.assert_close(adj.to_dense(), dense)
    # A^T holds A's stored values exactly (repeated entries summed once)
    assert torch.equal(adj_t.to_dense(), adj.to_dense().t())
    assert adj.layout == adj_t.layout == torch.sparse_csr
    assert all(t.dtype == torch.int64 for t in csr_parts(adj_t)[:2])
    # A itself is PyG's to_torch_csr_tensor, entry for entry
    expected = to_torch_csr_tensor(index, value, size=(n, n))
    for got, want in zip(csr_parts(adj), csr_parts(expected), strict=True):
        assert torch.equal(got, want)


def test_csr_with_transpose_empty():
    empty = torch.empty(0, dtype=torch.long)
    adj, adj_t = csr_with_transpose(empty, empty, torch.empty(0), 4)
    assert adj_t.shape == (4, 4) and adj_t.values().numel() == 0
    assert torch.equal(adj_t.to_dense(), torch.zeros(4, 4))
