"""Over-smoothing metrics against dense formulas on small graphs."""

from __future__ import annotations

import math

import pytest
import torch

from diffresnet_pyg.metrics import (
    dirichlet_energy,
    mean_average_distance,
    representation_metrics,
)
from diffresnet_pyg.synthetic.metrics import distance_diameter_ratio


def _random_graph(n: int, p: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A random undirected graph (both directions) and positive weights."""
    g = torch.Generator().manual_seed(seed)
    upper = torch.triu(torch.rand(n, n, generator=g) < p, diagonal=1)
    src, dst = upper.nonzero().t()
    weight = torch.rand(src.numel(), generator=g, dtype=torch.float64) + 0.1
    edge_index = torch.cat([torch.stack([src, dst]), torch.stack([dst, src])], 1)
    return edge_index, torch.cat([weight, weight])


def _dense_adjacency(edge_index, weight, n):
    a = torch.zeros(n, n, dtype=torch.float64)
    for (j, i), w in zip(edge_index.t().tolist(), weight.tolist(), strict=True):
        a[i, j] += w
    return a


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("weighted", [False, True])
def test_dirichlet_energy_equals_the_dense_double_sum(seed, weighted):
    n = 9
    edge_index, weight = _random_graph(n, 0.4, seed)
    weight = weight if weighted else torch.ones_like(weight)
    x = torch.randn(n, 3, generator=torch.Generator().manual_seed(seed + 10))
    a = _dense_adjacency(edge_index, weight, n)
    xd = x.double()
    expected = (
        sum(
            a[i, j] * (xd[i] - xd[j]).square().sum() for i in range(n) for j in range(n)
        )
        / n
    )
    got = dirichlet_energy(x, edge_index, weight if weighted else None)
    assert got == pytest.approx(float(expected), rel=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_sym_dirichlet_energy_is_the_normalized_laplacian_quadratic_form(seed):
    n = 10
    edge_index, weight = _random_graph(n, 0.5, seed)
    a = _dense_adjacency(edge_index, weight, n)
    degree = a.sum(1)
    assert bool((degree > 0).all())
    inv_sqrt = torch.diag(degree.rsqrt())
    laplacian = torch.eye(n, dtype=torch.float64) - inv_sqrt @ a @ inv_sqrt
    x = torch.randn(
        n, 4, generator=torch.Generator().manual_seed(seed), dtype=torch.float64
    )
    expected = 2.0 / n * torch.trace(x.t() @ laplacian @ x)
    got = dirichlet_energy(x, edge_index, weight, normalization="sym")
    assert got == pytest.approx(float(expected), rel=1e-10)
    # zero exactly on sqrt(degree)-proportional signals
    flat = degree.sqrt().unsqueeze(1) * torch.tensor([[2.0, -1.0]], dtype=torch.float64)
    assert dirichlet_energy(flat, edge_index, weight, "sym") == pytest.approx(
        0.0, abs=1e-12
    )


def test_dirichlet_energy_is_zero_on_constant_signals_and_scales_quadratically():
    edge_index, _ = _random_graph(8, 0.5, 1)
    assert dirichlet_energy(torch.full((8, 2), 3.5), edge_index) == 0.0
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, 2, generator=g, dtype=torch.float64)
    assert dirichlet_energy(3 * x, edge_index) == pytest.approx(
        9 * dirichlet_energy(x, edge_index), rel=1e-12
    )


def _dense_mad(x: torch.Tensor, mask: torch.Tensor) -> float:
    """Chen et al.'s MAD, written out pair by pair."""
    n = x.size(0)
    x = x.double()
    row_means = []
    for i in range(n):
        total, count = 0.0, 0
        for j in range(n):
            if not mask[i, j]:
                continue
            ni, nj = x[i].norm(), x[j].norm()
            cos = float(x[i] @ x[j] / (ni * nj)) if ni > 0 and nj > 0 else 0.0
            d = 1.0 - cos
            d = d if d > 1e-12 else 0.0
            total += d
            count += d > 0
        row_means.append(total / count if count else 0.0)
    positive = [m for m in row_means if m > 0]
    return sum(positive) / len(positive) if positive else 0.0


@pytest.mark.parametrize("seed", range(4))
def test_mad_over_all_pairs_equals_the_dense_formula(seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(12, 3, generator=g)
    x[3] = x[5]  # a pair at distance 0 does not count
    x[7] = 0.0  # a zero vector
    mask = ~torch.eye(12, dtype=torch.bool)
    assert mean_average_distance(x) == pytest.approx(_dense_mad(x, mask), rel=1e-10)


def test_mad_in_row_blocks_equals_one_block(monkeypatch):
    import diffresnet_pyg.metrics as metrics

    x = torch.randn(50, 4, generator=torch.Generator().manual_seed(3))
    whole = mean_average_distance(x)
    monkeypatch.setattr(metrics, "_MAD_ROWS", 7)
    assert mean_average_distance(x) == pytest.approx(whole, rel=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_mad_over_edges_equals_the_dense_formula_with_the_adjacency_mask(seed):
    n = 10
    edge_index, weight = _random_graph(n, 0.4, seed)
    mask = _dense_adjacency(edge_index, torch.ones_like(weight), n) > 0
    x = torch.randn(n, 3, generator=torch.Generator().manual_seed(seed))
    got = mean_average_distance(x, edge_index)
    assert got == pytest.approx(_dense_mad(x, mask), rel=1e-10)


def test_mad_is_zero_for_parallel_representations_and_one_for_orthogonal():
    assert mean_average_distance(torch.ones(5, 2) * torch.arange(1, 6.0)[:, None]) == (
        pytest.approx(0.0, abs=1e-12)
    )
    assert mean_average_distance(torch.eye(4)) == pytest.approx(1.0)


def test_representation_metrics_collects_every_measure():
    edge_index, weight = _random_graph(12, 0.4, 0)
    x = torch.randn(12, 3, generator=torch.Generator().manual_seed(1))
    y = torch.arange(12) % 3
    got = representation_metrics(x, edge_index, y, weight)
    assert got == {
        "dirichlet_energy": dirichlet_energy(x, edge_index, weight),
        "dirichlet_energy_sym": dirichlet_energy(x, edge_index, weight, "sym"),
        "mad": mean_average_distance(x),
        "mad_neighbors": mean_average_distance(x, edge_index),
        "distance_diameter_ratio": distance_diameter_ratio(x, y),
    }
    x[0, 0] = math.nan
    assert representation_metrics(x, edge_index, y) == {}


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: dirichlet_energy(
                torch.ones(3), torch.zeros(2, 0, dtype=torch.long)
            ),
            "shape \\[num_nodes, channels\\]",
        ),
        (
            lambda: dirichlet_energy(torch.ones(3, 1), torch.tensor([[0], [3]])),
            "outside \\[0, 2\\]",
        ),
        (
            lambda: dirichlet_energy(torch.ones(3, 1), torch.ones(2, 1)),
            "integer tensor",
        ),
        (
            lambda: dirichlet_energy(
                torch.ones(2, 1), torch.tensor([[0], [1]]), torch.tensor([-1.0])
            ),
            "non-negative",
        ),
        (
            lambda: dirichlet_energy(
                torch.ones(2, 1), torch.tensor([[0], [1]]), torch.ones(2)
            ),
            "one entry per edge",
        ),
        (
            lambda: dirichlet_energy(
                torch.ones(2, 1), torch.tensor([[0], [1]]), None, "rw"
            ),
            "None or 'sym'",
        ),
        (lambda: mean_average_distance(torch.tensor([[math.inf]])), "NaN or infinite"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(call, message):
    with pytest.raises(ValueError, match=message):
        call()
