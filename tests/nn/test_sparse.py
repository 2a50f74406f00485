import subprocess
import sys

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


README_SNIPPET = """
import torch
from diffresnet_pyg.nn import DiffusionConv, laplacian_max_eigenvalue
edge_index = torch.tensor([[0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 3, 2]])
x = torch.randn(4, 16)
conv = DiffusionConv(step_size=0.25, num_steps=20, laplacian="reference")
out = conv(x, edge_index)
print(2 / laplacian_max_eigenvalue(edge_index))
from diffresnet_pyg.nn import DiffResNet
m = DiffResNet.reference(16, 3, step_size=0.25, layer_num=4, dropout=0.25, cached=True)
m(x.to_sparse_csr(), edge_index)
"""

#: The library's other sparse paths, each first in its process: a COO input
#: (converted to CSR) and its dropout, the batched input, and the
#: differentiable operator on a sparse adjacency.
LIBRARY_PATHS = """
import torch
from diffresnet_pyg.nn import DiffResNet, DiffusionConv
from diffresnet_pyg.nn.batched import BatchedDiffResNet
from diffresnet_pyg.nn.sparse import sparse_dropout
edge_index = torch.tensor([[0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 3, 2]])
x = torch.eye(4).to_sparse()
{}
"""

CASES = [
    README_SNIPPET,
    LIBRARY_PATHS.format(
        "DiffResNet(4, 8, 3, input_dropout=0.5)(x, edge_index).sum().backward()"
    ),
    LIBRARY_PATHS.format("sparse_dropout(x.coalesce(), 0.5)"),
    LIBRARY_PATHS.format(
        "m = DiffResNet(4, 8, 3, input_dropout=0.5)\n"
        "BatchedDiffResNet.from_modules([m, m])(x, edge_index)"
    ),
    LIBRARY_PATHS.format(
        "w = torch.ones(6, requires_grad=True)\n"
        "adj = torch.sparse_coo_tensor(edge_index.flip(0), w, (4, 4), "
        "check_invariants=False)\n"
        "DiffusionConv(0.2, 2)(torch.randn(4, 2), adj).sum().backward()"
    ),
]


def run_python(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-W", "default", "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stderr


@pytest.mark.parametrize(
    "code",
    CASES,
    ids=["readme", "coo_input", "coo_dropout", "batched", "differentiable_adj"],
)
def test_library_sparse_tensors_raise_no_pytorch_sparse_warnings(code):
    stderr = run_python(code)
    assert "beta state" not in stderr
    assert "invariant checks" not in stderr


def test_the_warnings_are_silenced_only_inside_the_library():
    stderr = run_python(
        "import torch\n"
        "torch.sparse_csr_tensor(torch.tensor([0, 1]), torch.tensor([0]), "
        "torch.tensor([1.0]), (1, 1))"
    )
    assert "beta state" in stderr and "invariant checks" in stderr
