import itertools
import math

import numpy as np
import pytest
import torch

from diffresnet_pyg.synthetic import (
    cluster_diameters,
    cluster_geometry,
    distance_diameter_ratio,
    fit_log_slope,
    is_linearly_separable,
    linear_separability,
    max_intra_cluster_diameter,
    min_inter_cluster_distance,
    pairwise_distances,
)

# (points, clusters, L, per-cluster diameters), computed by hand
CASES = [
    # two pairs on a line: gap 3 between 1 and 4
    ([[0.0, 0.0], [1.0, 0.0], [4.0, 0.0], [6.0, 0.0]], [0, 0, 1, 1], 3.0, [1.0, 2.0]),
    # a 3-4-5 triangle split 2 + 1: L = min(5, 4) = 4, diameters 3 and 0
    ([[0.0, 0.0], [3.0, 0.0], [3.0, 4.0]], [0, 0, 1], 4.0, [3.0, 0.0]),
    # interleaved ids, unit square corners: L = 1 (sides), diameters sqrt(2)
    (
        [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]],
        [0, 1, 0, 1],
        1.0,
        [math.sqrt(2), math.sqrt(2)],
    ),
    # three clusters, one empty id (1): diameter 0 for it
    (
        [[0.0, 0.0], [0.0, 2.0], [10.0, 0.0], [10.0, 0.5]],
        [0, 0, 2, 2],
        10.0,
        [2.0, 0.0, 0.5],
    ),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("points, cluster, dist, diams", CASES)
def test_hand_computed(points, cluster, dist, diams, dtype):
    x = torch.tensor(points, dtype=dtype)
    c = torch.tensor(cluster)
    tol = 1e-6 if dtype == torch.float32 else 1e-12
    assert min_inter_cluster_distance(x, c) == pytest.approx(dist, rel=tol)
    assert cluster_diameters(x, c).tolist() == pytest.approx(diams, rel=tol)
    assert max_intra_cluster_diameter(x, c) == pytest.approx(max(diams), rel=tol)
    assert distance_diameter_ratio(x, c) == pytest.approx(dist / max(diams), rel=tol)
    geo_dist, geo_diams = cluster_geometry(x, c)
    assert geo_dist == pytest.approx(dist, rel=tol)
    assert geo_diams.tolist() == pytest.approx(diams, rel=tol)


def brute_force(x, c):
    n = len(x)
    dist, diams = math.inf, {}
    for i, j in itertools.product(range(n), range(n)):
        d = math.sqrt(sum((x[i][k] - x[j][k]) ** 2 for k in range(len(x[i]))))
        if c[i] == c[j]:
            diams[c[i]] = max(diams.get(c[i], 0.0), d)
        else:
            dist = min(dist, d)
    return dist, diams


@pytest.mark.parametrize("seed", range(4))
def test_against_brute_force(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(40, 3)) + rng.integers(0, 3, size=(40, 1))
    c = rng.integers(0, 4, size=40)
    dist, diams = brute_force(x.tolist(), c.tolist())
    xt, ct = torch.from_numpy(x), torch.from_numpy(c)
    assert min_inter_cluster_distance(xt, ct) == pytest.approx(dist, rel=1e-12)
    got = cluster_diameters(xt, ct)
    for k, d in diams.items():
        assert float(got[k]) == pytest.approx(d, rel=1e-12)
    assert cluster_geometry(xt, ct)[1].tolist() == pytest.approx(got.tolist())
    assert distance_diameter_ratio(xt, ct) == pytest.approx(
        dist / max(diams.values()), rel=1e-12
    )
    ref = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
    assert np.allclose(pairwise_distances(xt).numpy(), ref, rtol=0, atol=1e-12)


def test_pairwise_distances_keeps_tiny_distances():
    x = torch.tensor([[2.0, 2.0], [2.0 + 1e-9, 2.0]], dtype=torch.float64)
    d = pairwise_distances(x)
    assert d[0, 0] == 0 and float(d[0, 1]) == pytest.approx(1e-9, rel=1e-6)


def test_ratio_is_inf_for_collapsed_clusters():
    x = torch.tensor([[0.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
    assert distance_diameter_ratio(x, torch.tensor([0, 0, 1])) == math.inf


@pytest.mark.parametrize(
    "x, c, match",
    [
        (torch.zeros(3, 2), torch.zeros(3, dtype=torch.long), "two clusters"),
        (torch.zeros(3, 2), torch.zeros(2, dtype=torch.long), "entries"),
        (torch.zeros(3, 2), torch.zeros(3), "integer"),
        (torch.zeros(3, 2), torch.tensor([0, -1, 1]), "non-negative"),
        (torch.zeros(3), torch.zeros(3, dtype=torch.long), "shape"),
        (torch.tensor([[0.0], [math.nan]]), torch.tensor([0, 1]), "NaN"),
    ],
)
def test_invalid_inputs(x, c, match):
    with pytest.raises(ValueError, match=match):
        min_inter_cluster_distance(x, c)


XOR4 = torch.tensor([[0.0, 0.0], [1.0, 1.0], [1.0, 0.0], [0.0, 1.0]])


def test_hard_margin_check():
    assert not is_linearly_separable(XOR4, torch.tensor([0, 0, 1, 1]))
    assert is_linearly_separable(XOR4, torch.tensor([0, 1, 1, 1]))
    assert is_linearly_separable(XOR4, torch.tensor([0, 0, 0, 0]))
    # touching classes (same point, two labels) are not separable
    x = torch.tensor([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0]])
    assert not is_linearly_separable(x, torch.tensor([0, 1, 1]))
    # tiny but separated clusters (collapsed features) are separable
    g = torch.Generator().manual_seed(0)
    blob = 1e-9 * torch.randn(20, 2, generator=g, dtype=torch.float64)
    x = torch.cat([blob + 5.0, blob + 5.0 + 1e-6])
    assert is_linearly_separable(x, torch.tensor([0] * 20 + [1] * 20))
    with pytest.raises(ValueError, match="two classes"):
        is_linearly_separable(XOR4, torch.tensor([0, 1, 2, 1]))


def brute_force_separable_1d(x, y):
    """1-D: separable iff some threshold splits the sorted labels."""
    order = np.argsort(x)
    labels = np.asarray(y)[order]
    return any(
        (labels[:k] == a).all() and (labels[k:] == 1 - a).all()
        for k in range(len(labels) + 1)
        for a in (0, 1)
    )


@pytest.mark.parametrize("seed", range(6))
def test_hard_margin_matches_brute_force_in_1d(seed):
    rng = np.random.default_rng(seed)
    x = rng.permutation(8).astype(float)
    y = rng.integers(0, 2, size=8)
    if seed < 2:  # make some cases separable
        y = (x > seed + 2).astype(int)
    expected = brute_force_separable_1d(x, y)
    xt = torch.from_numpy(x).unsqueeze(1)
    assert is_linearly_separable(xt, torch.from_numpy(y)) == expected
    acc = linear_separability(xt, torch.from_numpy(y))
    assert (acc == 1.0) == expected


def test_logistic_accuracy():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(50, 2, generator=g, dtype=torch.float64)
    x = torch.cat([a, a + 10.0])
    y = torch.tensor([0] * 50 + [1] * 50)
    assert linear_separability(x, y) == 1.0
    # three classes, separable along one axis
    x3 = torch.cat([a * 0.1, a * 0.1 + 3.0, a * 0.1 + 6.0])
    y3 = torch.tensor([0] * 50 + [1] * 50 + [2] * 50)
    assert linear_separability(x3, y3) == 1.0
    # concentric circles are not linearly separable: at most ~ majority + a bit
    t = torch.linspace(0, 2 * math.pi, 101, dtype=torch.float64)[:-1]
    ring = torch.stack([t.cos(), t.sin()], 1)
    x = torch.cat([ring, 2 * ring])
    acc = linear_separability(x, torch.tensor([0] * 100 + [1] * 100))
    assert acc < 0.8
    assert not is_linearly_separable(x, torch.tensor([0] * 100 + [1] * 100))


def test_fit_log_slope():
    t = np.arange(30)
    values = 0.3 * np.exp(0.07 * t)
    slope, intercept = fit_log_slope(values.tolist())
    assert slope == pytest.approx(0.07, rel=1e-10)
    assert intercept == pytest.approx(math.log(0.3), rel=1e-10)
    slope, _ = fit_log_slope(torch.tensor(values[::3]), torch.tensor(t[::3]))
    assert slope == pytest.approx(0.07, rel=1e-10)
    with pytest.raises(ValueError, match="positive"):
        fit_log_slope([1.0, 0.0])
    with pytest.raises(ValueError, match="two or more"):
        fit_log_slope([1.0])
    with pytest.raises(ValueError, match="two or more"):
        fit_log_slope([1.0, 2.0], [0.0])
