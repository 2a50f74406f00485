import shutil

import numpy as np
import pytest
import torch

from diffresnet_pyg.fewshot import episodes as episodes_module
from diffresnet_pyg.fewshot.episodes import EpisodeIndex, Episodes, sample_episodes
from diffresnet_pyg.fewshot.features import ClassFeatures
from diffresnet_pyg.fewshot.preprocess import preprocess_episodes


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def ragged_table(counts, dim=3, seed=0) -> ClassFeatures:
    """Rows whose first feature is their own row index (to check gathering)."""
    num_rows = sum(counts)
    x = torch.randn(num_rows, dim, generator=gen(seed), dtype=torch.float64)
    x[:, 0] = torch.arange(num_rows, dtype=torch.float64)
    ptr = torch.tensor([0, *np.cumsum(counts).tolist()])
    return ClassFeatures(x, ptr, tuple(f"class{c}" for c in range(len(counts))))


def check_invariants(index: EpisodeIndex, feats: ClassFeatures, way, shot, query, num):
    """Checks every episode with plain Python loops over the indices."""
    assert len(index) == num
    assert (index.way, index.shot, index.query_per_class) == (way, shot, query)
    assert index.support.shape == (num, way * shot)
    assert index.query.shape == (num, way * query)
    assert index.classes.shape == (num, way)
    ptr = feats.ptr.tolist()
    for b in range(num):
        classes = index.classes[b].tolist()
        assert len(set(classes)) == way
        support = index.support[b].tolist()
        queries = index.query[b].tolist()
        assert len(set(support)) == way * shot
        assert len(set(queries)) == way * query
        assert not set(support) & set(queries)  # no leakage
        for i, c in enumerate(classes):
            for row in support[i * shot : (i + 1) * shot]:
                assert ptr[c] <= row < ptr[c + 1]
            for row in queries[i * query : (i + 1) * query]:
                assert ptr[c] <= row < ptr[c + 1]


# ---------------------------------------------------------------------------
# Sampling
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "way, shot, query", [(5, 1, 15), (5, 5, 15), (3, 2, 1), (1, 1, 1)]
)
def test_counts_and_invariants(way, shot, query):
    feats = ragged_table([20] * 8)
    index = sample_episodes(feats, way, shot, query, num_episodes=50, generator=gen(0))
    check_invariants(index, feats, way, shot, query, 50)


def test_ragged_classes():
    counts = [3, 7, 20, 4, 3, 12]
    feats = ragged_table(counts)
    index = sample_episodes(
        feats, way=4, shot=1, query=2, num_episodes=300, generator=gen(1)
    )
    check_invariants(index, feats, 4, 1, 2, 300)
    # A class with exactly shot + query rows uses all of them in every episode.
    for b in range(300):
        classes = index.classes[b].tolist()
        if 0 in classes:
            i = classes.index(0)
            rows = {
                index.support[b, i].item(),
                *index.query[b, 2 * i : 2 * i + 2].tolist(),
            }
            assert rows == {0, 1, 2}


def test_determinism():
    feats = ragged_table([6, 9, 8, 10, 7])
    a = sample_episodes(feats, 3, 2, 3, 40, gen(123))
    b = sample_episodes(feats, 3, 2, 3, 40, gen(123))
    c = sample_episodes(feats, 3, 2, 3, 40, gen(124))
    for name in ("support", "query", "classes"):
        assert torch.equal(getattr(a, name), getattr(b, name))
    assert not torch.equal(a.support, c.support)
    assert not torch.equal(a.classes, c.classes)
    # The generator's state advances: a second draw differs from the first.
    g = gen(123)
    first = sample_episodes(feats, 3, 2, 3, 40, g)
    second = sample_episodes(feats, 3, 2, 3, 40, g)
    assert torch.equal(first.support, a.support)
    assert not torch.equal(first.support, second.support)


def within_sigmas(observed, expected, var, sigmas=5.0):
    observed = np.asarray(observed, dtype=np.float64)
    return np.abs(observed - expected) <= sigmas * np.sqrt(var)


def test_uniform_class_and_row_frequencies():
    counts = [5, 9, 6, 12, 5, 8, 20, 7]
    feats = ragged_table(counts)
    num, way, shot, query = 20000, 3, 1, 4
    index = sample_episodes(feats, way, shot, query, num, gen(7))
    num_classes = len(counts)
    # Each class is in an episode with probability way / C.
    p = way / num_classes
    class_freq = torch.bincount(index.classes.flatten(), minlength=num_classes)
    assert within_sigmas(class_freq, num * p, num * p * (1 - p)).all()
    # Label positions are uniform too: class c is label i with probability 1 / C.
    for i in range(way):
        freq = torch.bincount(index.classes[:, i], minlength=num_classes)
        assert within_sigmas(freq, num / num_classes, num / num_classes).all()
    # Given its class is drawn, a row is a support row with probability shot / n_c
    # and a query row with probability query / n_c.
    support_freq = torch.bincount(index.support.flatten(), minlength=sum(counts))
    query_freq = torch.bincount(index.query.flatten(), minlength=sum(counts))
    for c, n_c in enumerate(counts):
        rows = slice(int(feats.ptr[c]), int(feats.ptr[c + 1]))
        drawn = int(class_freq[c])
        for k, freq in ((shot, support_freq), (query, query_freq)):
            q = k / n_c
            assert within_sigmas(
                freq[rows], drawn * q, drawn * q * (1 - q) + 1e-9
            ).all()


def test_internal_chunks(monkeypatch):
    """Small key blocks (many internal chunks) keep every invariant and determinism."""
    monkeypatch.setattr(episodes_module, "_BLOCK_ENTRIES", 50)
    feats = ragged_table([4, 11, 6, 8, 5])
    a = sample_episodes(feats, 2, 1, 3, 37, gen(0))
    b = sample_episodes(feats, 2, 1, 3, 37, gen(0))
    check_invariants(a, feats, 2, 1, 3, 37)
    assert torch.equal(a.support, b.support) and torch.equal(a.query, b.query)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(way=0), ValueError, "'way' must be an integer >= 1, got 0"),
        (dict(shot=0), ValueError, "'shot'"),
        (dict(query=-1), ValueError, "'query'"),
        (dict(query=2.0), ValueError, "'query'"),
        (dict(shot=True), ValueError, "'shot'"),
        (dict(num_episodes=0), ValueError, "'num_episodes'"),
        (dict(way=6), ValueError, "way=6 needs at least 6 classes.*5"),
        (
            dict(shot=2, query=3),
            ValueError,
            r"2 \+ 3 = 5.*'class1' \(position 1\) has 4",
        ),
        (dict(generator=0), TypeError, "torch.Generator"),
    ],
)
def test_sampling_errors(kwargs, error, match):
    feats = ragged_table([6, 4, 5, 9, 7])
    args = dict(way=2, shot=1, query=1, num_episodes=3, generator=gen(0))
    args.update(kwargs)
    with pytest.raises(error, match=match):
        sample_episodes(feats, **args)
    with pytest.raises(TypeError, match="ClassFeatures"):
        sample_episodes(feats.features, 2, 1, 1, 3, gen(0))


# ---------------------------------------------------------------------------
# Index chunks and materialized episodes
# ---------------------------------------------------------------------------


def test_gather_matches_indices():
    feats = ragged_table([9, 8, 10, 7, 12], dim=4)
    index = sample_episodes(feats, 3, 2, 4, 25, gen(3))
    ep = index.gather(feats)
    assert isinstance(ep, Episodes) and len(ep) == 25
    assert ep.support.shape == (25, 6, 4) and ep.query.shape == (25, 12, 4)
    assert ep.support.dtype == torch.float64
    for b in range(25):
        for j in range(6):
            row = index.support[b, j].item()
            assert torch.equal(ep.support[b, j], feats.features[row])
            assert ep.support_labels[b, j].item() == j // 2
        for j in range(12):
            row = index.query[b, j].item()
            assert torch.equal(ep.query[b, j], feats.features[row])
            assert ep.query_labels[b, j].item() == j // 4
    assert ep.support_labels.dtype == torch.long
    nodes = ep.nodes()
    assert nodes.shape == (25, 18, 4)
    assert torch.equal(nodes[:, :6], ep.support) and torch.equal(nodes[:, 6:], ep.query)


def test_chunking_equals_whole():
    feats = ragged_table([9, 8, 10, 7, 12])
    index = sample_episodes(feats, 3, 1, 5, 23, gen(4))
    whole = index.gather(feats)
    chunks = index.split(7)
    assert [len(c) for c in chunks] == [7, 7, 7, 2]
    parts = [c.gather(feats) for c in chunks]
    for name in ("support", "query", "support_labels", "query_labels"):
        joined = torch.cat([getattr(p, name) for p in parts])
        assert torch.equal(joined, getattr(whole, name))
    sliced = index[5:12]
    assert len(sliced) == 7 and torch.equal(sliced.classes, index.classes[5:12])
    assert torch.equal(sliced.gather(feats).query, whole.query[5:12])
    assert len(index[30:]) == 0 and index[30:].gather(feats).support.shape == (0, 3, 3)
    with pytest.raises(TypeError, match="slice"):
        index[0]
    with pytest.raises(ValueError, match="chunk_size"):
        index.split(0)


def test_gather_and_construction_errors():
    feats = ragged_table([9, 8, 10, 7, 12])
    index = sample_episodes(feats, 3, 1, 5, 4, gen(0))
    with pytest.raises(ValueError, match="another table"):
        index.gather(feats.select([0, 1, 2]))
    with pytest.raises(TypeError, match="ClassFeatures"):
        index.gather(feats.features)
    with pytest.raises(ValueError, match="'support' must have shape"):
        EpisodeIndex(index.support[:, :2], index.query, index.classes, 3, 1, 5)
    with pytest.raises(TypeError, match="long"):
        EpisodeIndex(index.support.int(), index.query, index.classes, 3, 1, 5)
    with pytest.raises(ValueError, match="'shot'"):
        EpisodeIndex(index.support, index.query, index.classes, 3, 0, 5)
    ep = index.gather(feats)
    with pytest.raises(ValueError, match="'query' must have shape"):
        Episodes(
            ep.support, ep.query[:, 1:], ep.support_labels, ep.query_labels, 3, 1, 5
        )
    with pytest.raises(ValueError, match="3-D"):
        Episodes(ep.support[0], ep.query, ep.support_labels, ep.query_labels, 3, 1, 5)


# ---------------------------------------------------------------------------
# Real data: Omniglot evaluation characters as pooled pixel features
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def omniglot_pixels(shared_data, tmp_path_factory):
    """The first 30 evaluation characters, 105x105 pooled to 15x15 (stroke = 1)."""
    source = shared_data / "omniglot" / "images_evaluation.npz"
    if not source.is_file():
        pytest.skip(f"{source} not found")
    copy = tmp_path_factory.mktemp("omniglot") / "images_evaluation.npz"
    shutil.copy(source, copy)
    with np.load(copy) as archive:
        strokes = ~archive["images"][:30]
        labels = archive["labels"][:30]
    pooled = strokes.reshape(30, 20, 15, 7, 15, 7).mean(axis=(3, 5), dtype=np.float32)
    return pooled.reshape(30, 20, 225), labels


@pytest.mark.real_data
def test_omniglot_episodes(omniglot_pixels):
    pooled, labels = omniglot_pixels
    feats = ClassFeatures.from_tensor(torch.from_numpy(pooled))
    index = sample_episodes(
        feats, way=5, shot=1, query=15, num_episodes=100, generator=gen(0)
    )
    check_invariants(index, feats, 5, 1, 15, 100)
    ep = index.gather(feats)
    # Every gathered image is a drawing of the episode class it is labelled with.
    flat = torch.from_numpy(pooled.reshape(600, 225))
    row_labels = torch.from_numpy(labels.reshape(600))
    for rows, x, y in (
        (index.support, ep.support, ep.support_labels),
        (index.query, ep.query, ep.query_labels),
    ):
        assert torch.equal(x, flat[rows])
        assert torch.equal(row_labels[rows], index.classes.gather(1, y))
    # Real signal: nearest support image beats chance (0.2) by far (about 0.57
    # on raw pooled pixels, about 0.66 after the authors' preprocessing).
    for kwargs in (
        dict(center=False, normalize=False, shift=False),
        dict(base_mean=feats.mean()),
    ):
        s, q = preprocess_episodes(ep.support, ep.query, **kwargs)
        pred = torch.cdist(q, s).argmin(dim=-1)
        assert (pred == ep.query_labels).float().mean() > 0.4
