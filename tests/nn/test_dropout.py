import math

import pytest
import torch

from diffresnet_pyg.nn import keep_mask, keep_mask_bytes


@pytest.mark.parametrize("p", [0.25, 0.5, 0.125, 3 / 1024, 0.3, 0.0])
def test_keep_probability_is_exact(p):
    torch.manual_seed(0)
    n = 2**21
    mask = keep_mask((n // 8, 8), p)
    assert mask.dtype == torch.bool and mask.shape == (n // 8, 8)
    sigma = math.sqrt(p * (1 - p) / n) + 1e-12
    assert abs(mask.float().mean().item() - (1 - p)) < 5 * sigma
    # every byte position inside a 64-bit draw is unbiased (no top-bit bias)
    sigma_col = math.sqrt(p * (1 - p) / (n // 8)) + 1e-12
    per_column = mask.float().mean(0)
    assert ((per_column - (1 - p)).abs() < 5 * sigma_col).all(), per_column


def test_masks_are_reproducible_and_independent():
    torch.manual_seed(3)
    a = keep_mask((1000, 50), 0.25)
    b = keep_mask((1000, 50), 0.25)
    torch.manual_seed(3)
    assert torch.equal(keep_mask((1000, 50), 0.25), a)
    assert not torch.equal(a, b)
    # independent consecutive masks: P(both kept) = 0.75 ** 2
    both = (a & b).float().mean().item()
    assert abs(both - 0.5625) < 0.01
    g = torch.Generator().manual_seed(5)
    c = keep_mask((10, 10), 0.5, generator=g)
    g.manual_seed(5)
    assert torch.equal(keep_mask((10, 10), 0.5, generator=g), c)


def test_bytes_are_zeros_and_ones():
    torch.manual_seed(0)
    mask = keep_mask_bytes((300, 7), 0.25)
    assert mask.dtype == torch.uint8
    assert set(mask.unique().tolist()) <= {0, 1}


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5])
def test_bad_probability(p):
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        keep_mask((3, 3), p)


@pytest.mark.parametrize("p", [0.0, 0.25, 0.5, 0.1015625, 3 / 2**16, 0.3])
@pytest.mark.parametrize("n, c, members", [(7, 5, 3), (300, 16, 4), (1, 1, 1)])
def test_member_keep_mask_is_each_members_own_mask(p, n, c, members):
    from diffresnet_pyg.nn.dropout import keep_mask_from_seed, member_keep_mask

    seeds = tuple(range(10, 10 + members))
    mask = member_keep_mask((n, members * c), p, seeds)
    assert mask.dtype == torch.uint8 and mask.shape == (n, members * c)
    for b, seed in enumerate(seeds):
        want = keep_mask_from_seed((n, c), p, seed)
        assert torch.equal(mask.view(n, members, c)[:, b], want)
    assert torch.equal(
        member_keep_mask((n, c), p, 10), keep_mask_from_seed((n, c), p, 10)
    )
