import math

import pytest
import torch

from diffresnet_pyg.synthetic import sbm as sbm_module
from diffresnet_pyg.synthetic import sparse_stochastic_blockmodel_graph

SIZES = [30, 50, 70]
PROBS = [[0.3, 0.05, 0.1], [0.05, 0.4, 0.02], [0.1, 0.02, 0.2]]


def block_of(sizes):
    return torch.arange(len(sizes)).repeat_interleave(torch.tensor(sizes))


def block_counts(edge_index, sizes):
    """Directed edge counts per ordered block pair."""
    block = block_of(sizes)
    b = len(sizes)
    key = block[edge_index[0]] * b + block[edge_index[1]]
    return torch.bincount(key, minlength=b * b).view(b, b).double()


def possible_pairs(sizes, directed):
    n = torch.tensor(sizes, dtype=torch.float64)
    m = n.view(-1, 1) * n.view(1, -1)
    diag = n * (n - 1) if directed else n * (n - 1) / 2
    return m - torch.diag(m.diagonal()) + torch.diag(diag)


def check_simple(edge_index, num_nodes, directed):
    src, dst = edge_index
    assert edge_index.dtype == torch.long
    assert bool((src != dst).all())
    key = src * num_nodes + dst
    assert bool((key[1:] > key[:-1]).all())  # sorted, no duplicates
    if not directed:
        assert torch.equal(key.sort().values, (dst * num_nodes + src).sort().values)


@pytest.mark.parametrize("dense_path", [True, False])
@pytest.mark.parametrize("directed", [False, True])
def test_block_edge_counts_match_the_probabilities(monkeypatch, dense_path, directed):
    if not dense_path:  # force drawing with replacement and rejecting repeats
        monkeypatch.setattr(sbm_module, "DENSE_SAMPLING_MAX_PAIRS", 0)
    probs = torch.tensor(PROBS)
    if directed:
        probs[0, 1] = 0.15  # a non-symmetric matrix
    runs = 40
    total = torch.zeros(3, 3, dtype=torch.float64)
    for seed in range(runs):
        edge_index = sparse_stochastic_blockmodel_graph(
            SIZES, probs, directed=directed, seed=seed
        )
        check_simple(edge_index, sum(SIZES), directed)
        counts = block_counts(edge_index, SIZES)
        if not directed:  # count each undirected edge once
            assert torch.equal(counts, counts.t())
            counts = counts.triu()
            counts.diagonal().div_(2)
        total += counts
    m = possible_pairs(SIZES, directed)
    p = probs.double()
    if not directed:
        m, p = m.triu(), p.triu()
    expected = runs * m * p
    std = (runs * m * p * (1 - p)).sqrt()
    mask = m > 0
    z = ((total - expected).abs() / std)[mask]
    assert float(z.max()) < 4.5, (total, expected)


@pytest.mark.parametrize("dense_path", [True, False])
def test_every_pair_is_an_edge_with_its_probability(monkeypatch, dense_path):
    # Uniformity over the pairs (and the pair numbering): each pair's frequency.
    if not dense_path:
        monkeypatch.setattr(sbm_module, "DENSE_SAMPLING_MAX_PAIRS", 0)
    sizes, probs, runs = [6, 5], [[0.4, 0.2], [0.2, 0.7]], 300
    n = sum(sizes)
    freq = torch.zeros(n, n)
    counts = []
    for seed in range(runs):
        src, dst = sparse_stochastic_blockmodel_graph(sizes, probs, seed=seed)
        freq[src, dst] += 1
        counts.append(int(((src < 6) & (dst < 6) & (src < dst)).sum()))
    block = block_of(sizes)
    p = torch.tensor(probs)[block.view(-1, 1), block.view(1, -1)]
    off = ~torch.eye(n, dtype=torch.bool)
    z = (freq / runs - p).abs() / (p * (1 - p) / runs).sqrt()
    assert float(z[off].max()) < 4.5
    assert float(freq.diagonal().sum()) == 0
    # edge count inside block 0: Binomial(15, 0.4), mean 6 and variance 3.6
    counts = torch.tensor(counts, dtype=torch.float64)
    assert abs(float(counts.mean()) - 6.0) < 4.5 * math.sqrt(3.6 / runs)
    assert 0.7 * 3.6 < float(counts.var()) < 1.3 * 3.6


def test_large_sparse_block_pairs():
    # 2 x 3000 nodes: the cross-block pair has 9e6 > DENSE_SAMPLING_MAX_PAIRS pairs
    p_in, p_out = 2e-3, 1e-4
    sizes = [3000, 3000]
    edge_index = sparse_stochastic_blockmodel_graph(
        sizes, [[p_in, p_out], [p_out, p_in]], seed=3
    )
    check_simple(edge_index, 6000, directed=False)
    counts = block_counts(edge_index, sizes)
    m_in, m_out = 3000 * 2999 / 2, 3000 * 3000
    assert m_out > sbm_module.DENSE_SAMPLING_MAX_PAIRS
    for got, m, p in [
        (counts[0, 0] / 2, m_in, p_in),
        (counts[1, 1] / 2, m_in, p_in),
        (counts[0, 1], m_out, p_out),
    ]:
        assert abs(float(got) - m * p) < 5 * math.sqrt(m * p * (1 - p))


def test_extreme_probabilities():
    edge_index = sparse_stochastic_blockmodel_graph([3, 4], [[1.0, 0.0], [0.0, 1.0]])
    dense = torch.zeros(7, 7)
    dense[edge_index[0], edge_index[1]] = 1
    expected = torch.block_diag(torch.ones(3, 3), torch.ones(4, 4)) - torch.eye(7)
    assert torch.equal(dense, expected)
    directed = sparse_stochastic_blockmodel_graph(
        [2, 2], [[0.0, 1.0], [0.0, 0.0]], directed=True
    )
    assert directed.tolist() == [[0, 0, 1, 1], [2, 3, 2, 3]]
    empty = sparse_stochastic_blockmodel_graph([5], [[0.0]])
    assert empty.shape == (2, 0) and empty.dtype == torch.long
    single = sparse_stochastic_blockmodel_graph([1, 1], [[1.0, 1.0], [1.0, 1.0]])
    assert single.tolist() == [[0, 1], [1, 0]]


def test_triangle_numbering_is_a_bijection():
    for n in (2, 3, 7, 40):
        t = torch.arange(n * (n - 1) // 2)
        i, j = sbm_module._triangle_pairs(t, n)
        expected = [(a, b) for a in range(n) for b in range(a + 1, n)]
        assert list(zip(i.tolist(), j.tolist(), strict=True)) == expected
    n = 2_000_003  # float rounding territory: check the row bounds directly
    t = torch.randint(
        n * (n - 1) // 2, (10000,), generator=torch.Generator().manual_seed(0)
    )
    t = torch.cat([t, torch.tensor([0, n * (n - 1) // 2 - 1])])
    i, j = sbm_module._triangle_pairs(t, n)
    assert bool(((i >= 0) & (i < j) & (j < n)).all())
    assert torch.equal(i * (2 * n - i - 1) // 2 + (j - i - 1), t)


def test_seed_reproducibility():
    a = sparse_stochastic_blockmodel_graph(SIZES, PROBS, seed=5)
    b = sparse_stochastic_blockmodel_graph(SIZES, PROBS, seed=5)
    c = sparse_stochastic_blockmodel_graph(SIZES, PROBS, seed=6)
    assert torch.equal(a, b) and not torch.equal(a, c)
    gen = torch.Generator().manual_seed(5)
    assert torch.equal(sparse_stochastic_blockmodel_graph(SIZES, PROBS, seed=gen), a)


@pytest.mark.parametrize(
    "sizes, probs, kwargs, match",
    [
        ([], [], {}, "at least one block"),
        ([3, 0], [[0.1, 0.1], [0.1, 0.1]], {}, "integers >= 1"),
        ([3, -1], [[0.1, 0.1], [0.1, 0.1]], {}, "integers >= 1"),
        ([3, 2.0], [[0.1, 0.1], [0.1, 0.1]], {}, "integers >= 1"),
        ([3, True], [[0.1, 0.1], [0.1, 0.1]], {}, "integers >= 1"),
        (torch.tensor([3.0]), [[0.1]], {}, "1-D integer tensor"),
        ([3, 2], [[0.1, 0.1]], {}, r"shape \[2, 2\]"),
        ([3, 2], [0.1, 0.1], {}, r"shape \[2, 2\]"),
        ([3, 2], [[0.1, 1.5], [1.5, 0.1]], {}, r"in \[0, 1\]"),
        ([3, 2], [[0.1, -0.1], [-0.1, 0.1]], {}, r"in \[0, 1\]"),
        ([3], [[float("nan")]], {}, r"in \[0, 1\]"),
        ([3, 2], [[0.1, 0.2], [0.3, 0.1]], {}, "symmetric"),
        ([3], [[0.1]], {"directed": 1}, "'directed' must be a bool"),
        ([3], [[0.1]], {"seed": -1}, "'seed'"),
    ],
)
def test_validation_errors(sizes, probs, kwargs, match):
    with pytest.raises(ValueError, match=match):
        sparse_stochastic_blockmodel_graph(sizes, probs, **kwargs)
