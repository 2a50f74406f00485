import copy
import gc
import pickle

import pytest
import torch

from diffresnet_pyg.nn.cache import GraphCache


def test_keyed_on_identity_version_and_extra():
    cache = GraphCache()
    a, w = torch.tensor([[0, 1], [1, 0]]), torch.ones(2)
    assert cache.get((a, w), (2,), lambda: "first") == "first"
    assert cache.lookup((a, w), (2,)) == "first"
    assert cache.lookup((a, None), (2,)) is None  # other objects
    assert cache.lookup((a.clone(), w), (2,)) is None  # equal, not the same
    assert cache.lookup((a, w), (3,)) is None  # other extra keys
    w.add_(1.0)  # in place: the version counter moves
    assert cache.lookup((a, w), (2,)) is None
    assert cache.get((a, w), (2,), lambda: "second") == "second"
    assert len(cache) == 1  # the same objects replace their entry


def test_writes_around_the_version_counter_are_seen():
    cache = GraphCache()
    a = torch.tensor([[0, 1, 2], [1, 2, 0]])
    cache.store((a,), (), "first")
    version = a._version
    a.numpy()[1] = [2, 2, 1]  # NumPy shares the memory: no version change
    assert a._version == version
    assert cache.lookup((a,), ()) is None
    cache.store((a,), (), "second")
    a.data = torch.tensor([[0, 1, 2], [2, 0, 1]])  # same contents, new memory
    assert cache.lookup((a,), ()) is None
    cache.store((a,), (), "third")
    assert cache.lookup((a,), ()) == "third"  # untouched: a hit
    # sparse tensors: their index and value tensors are checked the same way
    adj = torch.eye(3).to_sparse_csr()
    cache.store((adj,), (), "csr")
    adj.values().numpy()[0] = 2.0
    assert cache.lookup((adj,), ()) is None
    coo = torch.eye(3).to_sparse().coalesce()
    cache.store((coo,), (), "coo")
    assert cache.lookup((coo,), ()) == "coo"
    coo._indices().numpy()[1, 0] = 2
    assert cache.lookup((coo,), ()) is None


def test_least_recently_used_and_dead_entries_are_dropped():
    cache = GraphCache(max_entries=2)
    graphs = [torch.arange(4).view(2, 2) + i for i in range(3)]
    for i, g in enumerate(graphs[:2]):
        cache.store((g,), (), i)
    assert cache.lookup((graphs[0],), ()) == 0  # now the most recent
    cache.store((graphs[2],), (), 2)
    assert cache.lookup((graphs[1],), ()) is None
    assert [cache.lookup((graphs[i],), ()) for i in (0, 2)] == [0, 2]
    del graphs[2]
    gc.collect()
    assert len(cache) == 1 and cache.value == 0


def test_inference_tensors_are_never_cached():
    cache = GraphCache()
    with torch.inference_mode():
        a = torch.ones(2)
    cache.store((a,), (), "value")
    assert len(cache) == 0 and cache.value is None


def test_copies_start_empty():
    cache = GraphCache(max_entries=3)
    a = torch.ones(2)
    cache.store((a,), (), "value")
    for other in (copy.deepcopy(cache), pickle.loads(pickle.dumps(cache))):
        assert len(other) == 0 and other.max_entries == 3
    assert cache.value == "value"


def test_bad_max_entries():
    with pytest.raises(ValueError, match="max_entries"):
        GraphCache(max_entries=0)
