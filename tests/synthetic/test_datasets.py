import math

import pytest
import torch

from diffresnet_pyg.synthetic import (
    XOR_CENTERS,
    XOR_CLASSES,
    make_two_circles,
    make_two_moons,
    make_two_spirals,
    make_xor_discs,
    resolve_generator,
)

GENERATORS = [make_two_circles, make_two_moons, make_two_spirals]


def test_xor_shapes_labels_and_clusters():
    data = make_xor_discs(seed=0)
    assert data.x.shape == (400, 2) and data.x.dtype == torch.float64
    assert data.y.dtype == torch.long and data.cluster.dtype == torch.long
    assert data.cluster.tolist() == [k for k in range(4) for _ in range(100)]
    assert data.y.tolist() == [XOR_CLASSES[k] for k in data.cluster.tolist()]
    # classes {(0,0), (2,2)} vs {(2,0), (0,2)}
    assert [XOR_CLASSES[XOR_CENTERS.index(c)] for c in XOR_CENTERS] == [0, 0, 1, 1]
    assert XOR_CENTERS == ((0.0, 0.0), (2.0, 2.0), (2.0, 0.0), (0.0, 2.0))


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_xor_points_lie_in_their_disc_and_fill_it(seed):
    data = make_xor_discs(seed=seed)
    centers = torch.tensor(XOR_CENTERS, dtype=torch.float64)[data.cluster]
    radius = (data.x - centers).norm(dim=1)
    assert float(radius.max()) <= 0.75 + 1e-12
    for k in range(4):
        r = radius[data.cluster == k]
        # 100 uniform points: the largest radius is above 0.7 with probability
        # 1 - (0.7 / 0.75)^200 > 0.9999 (fixed seeds, so deterministic anyway)
        assert float(r.max()) > 0.7
        # uniform in area: about half of the points within radius 0.75 / sqrt(2)
        inner = float((r < 0.75 / math.sqrt(2)).double().mean())
        assert 0.3 < inner < 0.7
        assert torch.allclose(
            data.x[data.cluster == k].mean(0), centers[data.cluster == k][0], atol=0.2
        )


def test_xor_diameter_argument():
    data = make_xor_discs(10, diameter=0.5, seed=0)
    centers = torch.tensor(XOR_CENTERS, dtype=torch.float64)[data.cluster]
    assert float((data.x - centers).norm(dim=1).max()) <= 0.25 + 1e-12


@pytest.mark.parametrize("make", [make_xor_discs, *GENERATORS])
def test_seeds_are_reproducible(make):
    a, b, c = make(seed=3), make(seed=3), make(seed=4)
    assert torch.equal(a.x, b.x)
    assert not torch.equal(a.x, c.x)
    # an int seed and a generator seeded with it give the same points
    assert torch.equal(a.x, make(seed=torch.Generator().manual_seed(3)).x)
    # a shared generator advances: two draws differ
    g = torch.Generator().manual_seed(3)
    assert not torch.equal(make(seed=g).x, make(seed=g).x)
    # the global random state is neither used nor changed
    state = torch.get_rng_state()
    make(seed=5)
    assert torch.equal(state, torch.get_rng_state())


@pytest.mark.parametrize("make", GENERATORS)
def test_two_class_shapes(make):
    data = make(37, seed=0)
    assert data.x.shape == (74, 2)
    assert data.y.tolist() == [0] * 37 + [1] * 37
    assert torch.equal(data.y, data.cluster)
    assert make(seed=0).x.shape == (1000, 2)
    assert make(5, seed=0, dtype=torch.float32).x.dtype == torch.float32


def test_circles_geometry():
    clean = make_two_circles(200, noise=0.0)
    radius = clean.x.norm(dim=1)
    assert torch.allclose(radius[:200], torch.ones(200, dtype=torch.float64))
    assert torch.allclose(radius[200:], torch.full((200,), 2.0, dtype=torch.float64))
    # equally spaced angles, no duplicated endpoint
    assert torch.unique(clean.x[:200].round(decimals=9), dim=0).size(0) == 200
    noisy = make_two_circles(seed=0)
    expected = make_two_circles(500, noise=0.0).x
    residual = noisy.x - expected
    assert abs(float(residual.std()) - 0.05) < 0.005
    assert abs(float(residual.mean())) < 0.005


def test_moons_and_spirals_geometry():
    moons = make_two_moons(101, noise=0.0)
    first, second = moons.x[:101], moons.x[101:]
    assert torch.allclose(first.norm(dim=1), torch.ones(101, dtype=torch.float64))
    shifted = second - torch.tensor([1.0, 0.5], dtype=torch.float64)
    assert torch.allclose(shifted.norm(dim=1), torch.ones(101, dtype=torch.float64))
    assert torch.allclose(second, torch.tensor([1.0, 0.5]).double() - first)
    spirals = make_two_spirals(50, noise=0.0)
    assert torch.equal(spirals.x[50:], -spirals.x[:50])
    radius = spirals.x[:50].norm(dim=1)
    assert torch.allclose(radius, 1 + torch.linspace(0, 2 * math.pi, 50).double())
    residual = make_two_spirals(seed=1).x - make_two_spirals(noise=0.0).x
    assert abs(float(residual.std()) - 0.1) < 0.01


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: make_xor_discs(0), "num_per_disc"),
        (lambda: make_xor_discs(diameter=0.0), "diameter"),
        (lambda: make_xor_discs(diameter=-1.0), "diameter"),
        (lambda: make_two_circles(0), "num_per_class"),
        (lambda: make_two_circles(radii=(1.0,)), "radii"),
        (lambda: make_two_moons(noise=-0.1), "noise"),
        (lambda: make_two_moons(noise=math.nan), "noise"),
        (lambda: make_two_spirals(10, seed=-1), "seed"),
        (lambda: make_two_spirals(10, seed=1.5), "seed"),
        (lambda: make_two_spirals(10, dtype=torch.long), "dtype"),
        (lambda: make_xor_discs(True), "num_per_disc"),
    ],
)
def test_invalid_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_resolve_generator():
    g = torch.Generator()
    assert resolve_generator(g) is g
    a = torch.rand(3, generator=resolve_generator(9))
    assert torch.equal(a, torch.rand(3, generator=torch.Generator().manual_seed(9)))
