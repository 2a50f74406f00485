"""The stability check of DiffusionConv and the bounds of lambda_max behind it."""

import functools

import numpy as np
import pytest
import torch
from torch_geometric.utils import (
    barabasi_albert_graph,
    erdos_renyi_graph,
    to_undirected,
)

from diffresnet_pyg.nn import (
    LAPLACIANS,
    DiffResNet,
    DiffusionConv,
    SplitLaplacian,
    diffusion,
    laplacian_max_eigenvalue,
    split_laplacian,
)
from diffresnet_pyg.nn.batched import BatchedDiffResNet


def path_graph(n):
    s = torch.arange(n - 1)
    return torch.stack([torch.cat([s, s + 1]), torch.cat([s + 1, s])])


def grid_graph(k):
    idx = torch.arange(k * k).view(k, k)
    right = torch.stack([idx[:, :-1].flatten(), idx[:, 1:].flatten()])
    down = torch.stack([idx[:-1].flatten(), idx[1:].flatten()])
    return to_undirected(torch.cat([right, down], dim=1))


@functools.cache
def random_graphs():
    """Undirected weighted graphs of 20 to 150 nodes, several shapes."""
    g = torch.Generator().manual_seed(0)
    state = torch.get_rng_state()
    graphs = []
    for i, n in enumerate([20, 33, 64, 150]):
        torch.manual_seed(i)  # PyG's generators draw from the global RNG
        shapes = [
            erdos_renyi_graph(n, 4.0 / n),
            barabasi_albert_graph(n, 2),
            path_graph(n),
            grid_graph(int(n**0.5)),
        ]
        for edge_index in shapes:
            num_nodes = int(edge_index.max()) + 1
            weight = torch.rand(edge_index.size(1), generator=g, dtype=torch.float64)
            edge_index, weight = to_undirected(edge_index, weight, reduce="mean")
            graphs.append((edge_index, weight + 0.05, num_nodes))
    torch.set_rng_state(state)
    return graphs


def dense_lambda_max(lap: SplitLaplacian) -> float:
    dense = lap.to_dense().double().numpy()
    if (dense == dense.T).all():
        return float(np.linalg.eigvalsh(dense).max())
    return float(np.linalg.eigvals(dense).real.max())


SYMMETRIC = ("reference", "sym", "combinatorial")


@pytest.mark.parametrize("laplacian", SYMMETRIC)
def test_estimate_is_a_close_lower_bound(laplacian):
    for edge_index, weight, n in random_graphs():
        for w in (None, weight):
            lap = split_laplacian(edge_index, w, n, laplacian, True, torch.float64)
            assert lap.is_symmetric()
            true = dense_lambda_max(lap)
            est = lap.max_eigenvalue_estimate()
            assert est <= true * (1 + 1e-6)
            assert est >= true * (1 - 1e-2), (n, laplacian, est, true)
            if n <= 32:  # the Krylov space is exhausted: exact
                assert est == pytest.approx(true, rel=1e-9)
            gershgorin = lap.max_eigenvalue_upper_bound(steps=0)
            assert true <= lap.max_eigenvalue_upper_bound() <= gershgorin


def test_estimate_is_deterministic_and_leaves_the_global_rng_alone():
    edge_index, weight, n = random_graphs()[-3]
    lap = split_laplacian(edge_index, weight, n, "reference", dtype=torch.float32)
    state = torch.get_rng_state()
    first = lap.max_eigenvalue_estimate()
    assert lap.is_symmetric()
    assert torch.equal(torch.get_rng_state(), state)
    torch.manual_seed(123)
    assert lap.max_eigenvalue_estimate() == first
    # a layer that runs the check draws nothing either: same seed, same output
    x = torch.randn(n, 4)
    conv = DiffusionConv(0.3, 3, dropout=0.5)
    torch.manual_seed(5)
    out = conv(x, edge_index, weight.float())
    torch.manual_seed(5)
    unchecked = DiffusionConv(0.3, 3, dropout=0.5, check_stability=False)
    torch.testing.assert_close(unchecked(x, edge_index, weight.float()), out)


def test_symmetry_probe():
    edge_index = path_graph(6)
    assert split_laplacian(edge_index).is_symmetric()
    assert not split_laplacian(edge_index, laplacian="rw").is_symmetric()
    directed = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 0]])
    assert not split_laplacian(directed).is_symmetric()
    weight = torch.ones(10)
    weight[3] = 2.0  # one edge heavier than its reverse
    assert not split_laplacian(edge_index, weight).is_symmetric()
    with pytest.raises(ValueError, match="not symmetric"):
        split_laplacian(directed).max_eigenvalue_estimate()


@pytest.mark.parametrize("laplacian", LAPLACIANS)
@pytest.mark.parametrize("add_self_loops", [True, False])
def test_path_graph_step_the_diagonal_let_through_is_refused(laplacian, add_self_loops):
    n = 10
    edge_index = path_graph(n)
    lap = split_laplacian(edge_index, None, n, laplacian, add_self_loops)
    lam = laplacian_max_eigenvalue(
        edge_index, laplacian=laplacian, add_self_loops=add_self_loops
    )
    step = 1.9
    assert step * lam > 2.0  # unstable: |1 - step * lambda_max| > 1
    x = torch.randn(n, 3, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="unstable") as info:
        DiffusionConv(step, 20, laplacian, add_self_loops)(x, edge_index)
    message = str(info.value)
    assert "step_size=1.9 " in message and repr(laplacian) in message
    assert f"lambda_max >= {lam:.6g}" in message  # exact on 10 nodes
    assert f"2 / lambda_max <= {2 / lam:.6g}" in message
    if step * float(lap.diag.max()) < 2.0:  # what the diagonal bound missed
        out = DiffusionConv(step, 20, laplacian, add_self_loops, check_stability=False)(
            x, edge_index
        )
        assert out.abs().max() > 100 * x.abs().max()  # it does blow up
        with pytest.raises(ValueError, match="unstable"):
            diffusion(
                x,
                edge_index,
                step_size=step,
                laplacian=laplacian,
                add_self_loops=add_self_loops,
            )


@pytest.mark.parametrize("laplacian", LAPLACIANS)
def test_steps_near_the_bound(laplacian):
    for edge_index, weight, n in random_graphs()[:8]:
        lam = laplacian_max_eigenvalue(edge_index, weight, n, laplacian)
        x = torch.randn(n, 2, dtype=torch.float64)
        DiffusionConv(0.999 * 2 / lam, 2, laplacian)(x, edge_index, weight)
        DiffusionConv(2 / lam, 2, laplacian)(x, edge_index, weight)  # marginal
        unstable = 1.001 if n <= 32 else 1.02  # exact estimate up to 32 nodes
        with pytest.raises(ValueError, match="unstable"):
            DiffusionConv(unstable * 2 / lam, 2, laplacian)(x, edge_index, weight)


def test_rw_is_checked_through_sym():
    # a star: rw is not symmetric, but has the eigenvalues of sym
    leaves = torch.arange(1, 12)
    hub = torch.zeros_like(leaves)
    edge_index = torch.stack([torch.cat([leaves, hub]), torch.cat([hub, leaves])])
    lam = laplacian_max_eigenvalue(edge_index, laplacian="sym", add_self_loops=False)
    rw = split_laplacian(edge_index, laplacian="rw", add_self_loops=False)
    assert dense_lambda_max(rw) == pytest.approx(lam)
    x = torch.randn(12, 2)
    DiffusionConv(0.99 * 2 / lam, 1, "rw", add_self_loops=False)(x, edge_index)
    with pytest.raises(ValueError, match="'rw' Laplacian has lambda_max >= 2 "):
        DiffusionConv(1.01 * 2 / lam, 1, "rw", add_self_loops=False)(x, edge_index)


def test_upper_bound_holds_for_directed_graphs():
    g = torch.Generator().manual_seed(3)
    for laplacian in LAPLACIANS:
        edge_index = torch.randint(0, 30, (2, 120), generator=g)
        weight = torch.rand(120, generator=g, dtype=torch.float64)
        lap = split_laplacian(edge_index, weight, 30, laplacian, dtype=torch.float64)
        modulus = np.abs(np.linalg.eigvals(lap.to_dense().numpy())).max()
        assert modulus <= lap.max_eigenvalue_upper_bound(steps=10)


def test_directed_graph_checks_the_diagonal_only():
    # a directed star into node 0: the combinatorial Laplacian is triangular,
    # its eigenvalues are its diagonal (0 and 11)
    leaves = torch.arange(1, 12)
    edge_index = torch.stack([leaves, torch.zeros_like(leaves)])
    x = torch.randn(12, 2)
    DiffusionConv(0.18, 1, "combinatorial")(x, edge_index)
    with pytest.raises(ValueError, match="largest diagonal entry"):
        DiffusionConv(0.19, 1, "combinatorial")(x, edge_index)


def test_estimate_runs_once_per_cached_graph_and_only_when_needed(monkeypatch):
    calls = []
    original = SplitLaplacian.max_eigenvalue_estimate

    def counting(self, *args, **kwargs):
        calls.append(self.num_nodes)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SplitLaplacian, "max_eigenvalue_estimate", counting)
    edge_index, weight, n = random_graphs()[1]  # Barabasi-Albert: hubs
    lap = split_laplacian(edge_index, weight, n, dtype=torch.float64)
    lam = lap.max_eigenvalue_estimate()  # exact: 20 nodes
    step = 1.99 / lam  # stable, but the upper bound cannot tell
    assert step * lap.max_eigenvalue_upper_bound() >= 2.0
    calls.clear()
    x = torch.randn(n, 2, dtype=torch.float64)
    conv = DiffusionConv(step, 3, cached=True)
    for _ in range(3):
        conv(x, edge_index, weight)
    assert calls == [n]
    entry = conv._cache.value
    assert entry.lambda_max == pytest.approx(lam, rel=1e-9)
    DiffusionConv(step, 3)(x, edge_index, weight)  # uncached: once per call
    assert calls == [n, n]
    # a step the upper bound shows stable needs no estimate
    small = 1.9 / lap.max_eigenvalue_upper_bound(steps=0)
    DiffusionConv(small, 3, cached=True)(x, edge_index, weight)
    assert calls == [n, n]


def test_models_refuse_through_their_layers():
    n = 10
    edge_index = path_graph(n)
    x = torch.randn(n, 4)
    model = DiffResNet(
        4, 8, 3, diffusion_steps=2, step_size=1.9, add_self_loops=False
    )  # the "sym" Laplacian
    with pytest.raises(ValueError, match="unstable"):
        model(x, edge_index)
    batched = BatchedDiffResNet.from_modules([model, model])
    with pytest.raises(ValueError, match="unstable"):
        batched(x, edge_index)
