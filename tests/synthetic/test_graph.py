import math

import numpy as np
import pytest
import torch

from diffresnet_pyg.nn import DiffusionConv
from diffresnet_pyg.synthetic import (
    diffuse,
    diffusion_step,
    gaussian_kernel_graph,
    gaussian_kernel_weights,
    make_two_moons,
    make_xor_discs,
    synthetic_diffusion_conv,
)


def authors_weight(x, sigma, n_top):
    """The authors' construction, written independently with NumPy loops."""
    n = len(x)
    w = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            w[i, j] = np.exp(-((x[i] - x[j]) ** 2).sum() / sigma**2)
    for i in range(n):
        idx = np.argpartition(w[i], -n_top)[:-n_top]
        w[i, idx] = 0.0
        w[i] /= w[i].sum()
    return w


@pytest.mark.parametrize("n_top, sigma", [(1, 0.5), (5, 0.5), (12, 0.3), (60, 2.0)])
def test_weights_match_the_authors_formula(n_top, sigma):
    data = make_xor_discs(15, seed=0)
    w = gaussian_kernel_weights(data.x, n_top=n_top, sigma=sigma)
    ref = authors_weight(data.x.numpy(), sigma, n_top)
    assert np.allclose(w.numpy(), ref, rtol=1e-12, atol=1e-15)


def test_weight_structure():
    x = make_two_moons(40, seed=1).x
    w = gaussian_kernel_weights(x, n_top=7)
    assert torch.allclose(w.sum(1), torch.ones(80, dtype=torch.float64))
    assert ((w > 0).sum(1) == 7).all()
    # the point itself has kernel value 1, the largest of its row
    assert torch.equal(w.argmax(1), torch.arange(80))
    # not symmetric in general (kNN and row normalization)
    assert not torch.allclose(w, w.t())


def test_graph_equals_dense_weights():
    x = make_xor_discs(20, seed=2).x
    edge_index, edge_weight = gaussian_kernel_graph(x, n_top=6, sigma=0.7)
    assert edge_index.shape == (2, 80 * 6) and edge_weight.shape == (80 * 6,)
    dense = torch.zeros(80, 80, dtype=torch.float64)
    dense[edge_index[1], edge_index[0]] = edge_weight  # row = target
    assert torch.equal(dense, gaussian_kernel_weights(x, n_top=6, sigma=0.7))


@pytest.mark.parametrize("tau", [1.0, 0.5, 1.5])
def test_library_operator_equals_dense_diffusion(tau):
    x = make_two_moons(30, seed=0).x
    w = gaussian_kernel_weights(x, n_top=5)
    edge_index, edge_weight = gaussian_kernel_graph(x, n_top=5)
    h = torch.randn(60, 3, generator=torch.Generator().manual_seed(0)).double()
    conv = synthetic_diffusion_conv(7, tau)
    assert isinstance(conv, DiffusionConv) and conv.laplacian == "combinatorial"
    out = conv(h, edge_index, edge_weight)
    assert torch.allclose(out, diffuse(h, w, 7, tau=tau), rtol=0, atol=1e-12)
    # x - tau (I - W) x, written out
    step = h - tau * (h - w @ h)
    assert torch.allclose(diffusion_step(h, w, tau), step, rtol=0, atol=1e-15)
    # tau = 1 is plain averaging x <- W x
    assert torch.allclose(diffusion_step(h, w, 1.0), w @ h, rtol=0, atol=1e-15)


def test_library_operator_gradient_matches_dense():
    x = make_two_moons(20, seed=3).x
    w = gaussian_kernel_weights(x, n_top=4)
    edge_index, edge_weight = gaussian_kernel_graph(x, n_top=4)
    h = torch.randn(40, 2, dtype=torch.float64, requires_grad=True)
    g = torch.randn(40, 2, dtype=torch.float64)
    (synthetic_diffusion_conv(5)(h, edge_index, edge_weight) * g).sum().backward()
    grad_sparse = h.grad.clone()
    h.grad = None
    (diffuse(h, w, 5) * g).sum().backward()
    assert torch.allclose(grad_sparse, h.grad, rtol=0, atol=1e-12)


def test_trajectory():
    x = make_xor_discs(5, seed=0).x
    w = gaussian_kernel_weights(x, n_top=3)
    traj = diffuse(x, w, 4, return_trajectory=True)
    assert traj.shape == (5, 20, 2)
    assert torch.equal(traj[0], x)
    assert torch.allclose(traj[-1], diffuse(x, w, 4))
    assert torch.equal(diffuse(x, w, 0), x)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_top": 11}, "larger than the number of points"),
        ({"n_top": 0}, "n_top"),
        ({"n_top": 2.0}, "n_top"),
        ({"n_top": 2, "sigma": 0.0}, "sigma"),
        ({"n_top": 2, "sigma": -1.0}, "sigma"),
        ({"n_top": 2, "sigma": math.inf}, "sigma"),
    ],
)
def test_invalid_graph_arguments(kwargs, match):
    x = torch.randn(10, 2)
    for build in (gaussian_kernel_weights, gaussian_kernel_graph):
        with pytest.raises(ValueError, match=match):
            build(x, **kwargs)


def test_invalid_inputs():
    with pytest.raises(ValueError, match="shape"):
        gaussian_kernel_weights(torch.randn(10), n_top=2)
    with pytest.raises(ValueError, match="floating"):
        gaussian_kernel_weights(torch.ones(4, 2, dtype=torch.long), n_top=2)
    with pytest.raises(ValueError, match="NaN"):
        gaussian_kernel_weights(torch.tensor([[0.0], [math.nan]]), n_top=1)
    w = torch.eye(3)
    with pytest.raises(ValueError, match="tau"):
        diffusion_step(torch.ones(3, 2), w, tau=0.0)
    with pytest.raises(ValueError, match="shape"):
        diffusion_step(torch.ones(4, 2), w)
    with pytest.raises(ValueError, match="num_steps"):
        diffuse(torch.ones(3, 2), w, -1)
    with pytest.raises(ValueError, match="tau"):
        synthetic_diffusion_conv(3, tau=-1.0)
