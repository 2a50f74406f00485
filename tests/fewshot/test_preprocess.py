import itertools

import numpy as np
import pytest
import torch

from diffresnet_pyg.fewshot.preprocess import preprocess_episodes


def authors_loop(support, query, base_mean, center, normalize, shift):
    """The steps of the authors' train.py, one episode at a time, in NumPy."""
    out_s, out_q = [], []
    for train_data, test_data in zip(support, query, strict=True):
        train_data = np.array(train_data, dtype=np.float64)
        test_data = np.array(test_data, dtype=np.float64)
        if center:
            train_data = train_data - base_mean
            test_data = test_data - base_mean
        if normalize:
            train_data = train_data / np.linalg.norm(train_data, axis=1, keepdims=True)
            test_data = test_data / np.linalg.norm(test_data, axis=1, keepdims=True)
        if shift:
            eta = train_data.mean(axis=0, keepdims=True) - test_data.mean(
                axis=0, keepdims=True
            )
            test_data = test_data + eta
        out_s.append(train_data)
        out_q.append(test_data)
    return np.stack(out_s), np.stack(out_q)


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    support = torch.rand(6, 5, 8, generator=g, dtype=torch.float64) * 3
    query = torch.rand(6, 12, 8, generator=g, dtype=torch.float64) * 3 + 1
    base_mean = torch.rand(8, generator=g, dtype=torch.float64)
    return support, query, base_mean


@pytest.mark.parametrize(
    "center, normalize, shift", list(itertools.product([True, False], repeat=3))
)
def test_matches_authors_loop(batch, center, normalize, shift):
    support, query, base_mean = batch
    s, q = preprocess_episodes(
        support,
        query,
        base_mean=base_mean,
        center=center,
        normalize=normalize,
        shift=shift,
    )
    es, eq = authors_loop(
        support.numpy(), query.numpy(), base_mean.numpy(), center, normalize, shift
    )
    np.testing.assert_allclose(s.numpy(), es, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(q.numpy(), eq, rtol=1e-12, atol=1e-12)


def test_authors_torch_code_float32(batch):
    """The authors' single_trial (torch, float32), including base_mean's cast."""
    support, query, base_mean = (t.float() for t in batch)
    s, q = preprocess_episodes(support, query, base_mean=base_mean.double())
    assert s.dtype == q.dtype == torch.float32
    for b in range(support.size(0)):
        train_data = support[b] - base_mean
        train_data = train_data / torch.norm(train_data, dim=1, keepdim=True)
        test_data = query[b] - base_mean
        test_data = test_data / torch.norm(test_data, dim=1, keepdim=True)
        eta = train_data.mean(dim=0, keepdim=True) - test_data.mean(dim=0, keepdim=True)
        test_data = test_data + eta
        torch.testing.assert_close(s[b], train_data)
        torch.testing.assert_close(q[b], test_data)


def test_batched_equals_per_episode_and_properties(batch):
    support, query, base_mean = batch
    original = (support.clone(), query.clone())
    s, q = preprocess_episodes(support, query, base_mean=base_mean)
    assert torch.equal(support, original[0]) and torch.equal(query, original[1])
    for b in range(support.size(0)):
        sb, qb = preprocess_episodes(support[b], query[b], base_mean=base_mean)
        assert sb.shape == (5, 8) and qb.shape == (12, 8)
        torch.testing.assert_close(sb, s[b], rtol=0, atol=1e-14)
        torch.testing.assert_close(qb, q[b], rtol=0, atol=1e-14)
    # Support rows are unit vectors; the query mean equals the support mean.
    torch.testing.assert_close(s.norm(dim=-1), torch.ones(6, 5, dtype=torch.float64))
    torch.testing.assert_close(q.mean(dim=1), s.mean(dim=1))


def test_no_centering_without_base_mean(batch):
    support, query, _ = batch
    s, q = preprocess_episodes(
        support, query, center=False, normalize=False, shift=False
    )
    assert torch.equal(s, support) and torch.equal(q, query)


def test_gradients_flow(batch):
    support, query, base_mean = (t.clone().requires_grad_() for t in batch)
    s, q = preprocess_episodes(support, query, base_mean=base_mean)
    (s.sum() + (q**2).sum()).backward()
    assert support.grad is not None and query.grad is not None
    assert base_mean.grad is not None


@pytest.mark.parametrize(
    "support, query, kwargs, error, match",
    [
        (
            torch.ones(2, 3, 4),
            torch.ones(2, 5, 4),
            {},
            ValueError,
            "center=True needs 'base_mean'",
        ),
        (
            torch.ones(2, 3, 4),
            torch.ones(2, 5, 4),
            dict(base_mean=torch.ones(3)),
            ValueError,
            r"shape \[4\] \(the feature dimension\), got \[3\]",
        ),
        (
            torch.ones(2, 3, 4),
            torch.ones(2, 5, 4),
            dict(base_mean=np.ones(4)),
            TypeError,
            "torch.Tensor, got ndarray",
        ),
        (
            torch.ones(2, 3, 4),
            torch.ones(5, 4),
            dict(center=False),
            ValueError,
            "must both be 3-D",
        ),
        (
            torch.ones(3),
            torch.ones(5),
            dict(center=False),
            ValueError,
            "must both be 3-D",
        ),
        (
            torch.ones(2, 3, 4),
            torch.ones(3, 5, 4),
            dict(center=False),
            ValueError,
            "same number of episodes",
        ),
        (
            torch.ones(2, 3, 4),
            torch.ones(2, 5, 3),
            dict(center=False),
            ValueError,
            "feature dimension",
        ),
        (
            torch.ones(2, 3, 4, dtype=torch.long),
            torch.ones(2, 5, 4),
            dict(center=False),
            TypeError,
            "'support'.*floating",
        ),
        (
            torch.ones(2, 3, 4),
            np.ones((2, 5, 4)),
            dict(center=False),
            TypeError,
            "'query'.*ndarray",
        ),
    ],
)
def test_errors(support, query, kwargs, error, match):
    with pytest.raises(error, match=match):
        preprocess_episodes(support, query, **kwargs)
