"""The reference Laplacian on the real Cora / Citeseer LCCs (SPEC figures)."""

import pytest
import torch
from torch_geometric.utils import scatter

from diffresnet_pyg.data import load_dataset
from diffresnet_pyg.nn import DiffusionConv, laplacian_max_eigenvalue, split_laplacian

pytestmark = pytest.mark.real_data


@pytest.mark.parametrize("name, lam", [("cora", 5.78), ("citeseer", 4.21)])
def test_reference_lambda_max(data_cache, name, lam):
    data = load_dataset(name, data_cache)
    got = laplacian_max_eigenvalue(data.edge_index, num_nodes=data.num_nodes)
    assert got == pytest.approx(lam, abs=0.005)


def test_cora_row_sums_of_a_hat(data_cache):
    data = load_dataset("cora", data_cache)
    n = data.num_nodes
    lap = split_laplacian(data.edge_index, num_nodes=n, dtype=torch.float64)
    deg = (
        scatter(
            torch.ones(data.num_edges, dtype=torch.float64),
            data.edge_index[1],
            dim_size=n,
        )
        + 1
    )
    row_sums = lap.diag + 1 / deg  # off-diagonal part plus the self-loop term
    assert row_sums.min().item() == pytest.approx(0.455, abs=5e-4)
    assert row_sums.max().item() == pytest.approx(5.748, abs=5e-4)
    assert row_sums.mean().item() == pytest.approx(0.919, abs=5e-4)


def test_authors_step_is_stable_and_large_step_rejected(data_cache):
    data = load_dataset("cora", data_cache)
    x = torch.randn(data.num_nodes, 4)
    DiffusionConv(0.25, 2)(x, data.edge_index)
    with pytest.raises(ValueError, match="unstable"):
        DiffusionConv(0.35, 2)(x, data.edge_index)


@pytest.mark.parametrize("name, lam", [("cora", 5.78), ("citeseer", 4.21)])
def test_bounds_of_lambda_max(data_cache, name, lam):
    data = load_dataset(name, data_cache)
    lap = split_laplacian(data.edge_index, num_nodes=data.num_nodes)
    assert lap.max_eigenvalue_estimate() == pytest.approx(lam, abs=0.005)
    assert lam - 0.005 <= lap.max_eigenvalue_upper_bound() < 1.15 * lam


def test_step_between_the_diagonal_and_lambda_max_is_rejected(data_cache):
    # max diagonal 5.748 < lambda_max 5.780: 0.3475 * 5.748 < 2 < 0.3475 * 5.780
    data = load_dataset("cora", data_cache)
    x = torch.randn(data.num_nodes, 4)
    with pytest.raises(ValueError, match=r"lambda_max >= 5\.7"):
        DiffusionConv(0.3475, 2)(x, data.edge_index)
    DiffusionConv(0.345, 2)(x, data.edge_index)
