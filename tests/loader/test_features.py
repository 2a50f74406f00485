import pytest
import torch

from diffresnet_pyg.loader import select_rows


def features() -> torch.Tensor:
    x = torch.rand(7, 5, generator=torch.Generator().manual_seed(0))
    x[x < 0.6] = 0.0
    x[3] = 0.0  # an empty row
    return x


@pytest.mark.parametrize("layout", ["dense", "coo", "csr"])
@pytest.mark.parametrize(
    "index", [[4, 1, 3], [0, 0, 6, 3, 3], [], [3], list(range(7))[::-1]]
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_select_rows_equals_dense_indexing(layout, index, dtype):
    x = features().to(dtype)
    given = {"dense": x, "coo": x.to_sparse(), "csr": x.to_sparse_csr()}[layout]
    index = torch.tensor(index, dtype=torch.long)
    out = select_rows(given, index)
    assert out.layout == given.layout and out.dtype == dtype
    assert out.shape == (index.numel(), 5)
    assert out.to_dense().equal(x[index])


def test_select_rows_keeps_gradients_of_dense_features():
    x = features().requires_grad_()
    select_rows(x, torch.tensor([1, 1, 2])).sum().backward()
    assert x.grad[:, 0].tolist() == [0.0, 2.0, 1.0, 0.0, 0.0, 0.0, 0.0]


@pytest.mark.parametrize(
    "x,index,match",
    [
        (torch.zeros(3), torch.tensor([0]), r"must be a matrix \[N, F\]"),
        (torch.zeros(3, 2), torch.tensor([[0]]), "1-D integer tensor"),
        (torch.zeros(3, 2), torch.tensor([0.0]), "1-D integer tensor"),
        (torch.zeros(3, 2), torch.tensor([3]), r"row ids outside \[0, 2\]"),
        (torch.zeros(3, 2).to_sparse_csr(), torch.tensor([-1]), "outside"),
        (torch.zeros(3, 2).to_sparse_csc(), torch.tensor([0]), "unsupported layout"),
    ],
)
def test_select_rows_errors(x, index, match):
    with pytest.raises(ValueError, match=match):
        select_rows(x, index)
