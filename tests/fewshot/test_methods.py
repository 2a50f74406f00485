import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.optim.lr_scheduler import MultiStepLR

from diffresnet_pyg.fewshot.methods import (
    EpisodeNetConfig,
    diffusion_operator,
    init_episode_nets,
    laplacian_shot,
    nearest_prototype,
    train_episode_nets,
)
from diffresnet_pyg.nn.knn import gaussian_weight_matrix

PARAM_NAMES = (
    "fc1_weight",
    "fc1_bias",
    "fc2_weight",
    "fc2_bias",
    "classifier_weight",
    "classifier_bias",
)


def make_episodes(
    num_episodes, way, shot, query, dim, seed, spread=1.0, dtype=torch.float64
):
    """Class-major episodes: Gaussian clusters around random class centers."""
    g = torch.Generator().manual_seed(seed)
    centers = spread * torch.randn(num_episodes, way, 1, dim, generator=g, dtype=dtype)
    support = centers + torch.randn(
        num_episodes, way, shot, dim, generator=g, dtype=dtype
    )
    queries = centers + torch.randn(
        num_episodes, way, query, dim, generator=g, dtype=dtype
    )
    labels = torch.arange(way).repeat_interleave(shot).expand(num_episodes, -1)
    query_labels = torch.arange(way).repeat_interleave(query).expand(num_episodes, -1)
    return (
        support.reshape(num_episodes, way * shot, dim),
        labels.clone(),
        queries.reshape(num_episodes, way * query, dim),
        query_labels.clone(),
    )


# ---------------------------------------------------------------------------
# Independent references
# ---------------------------------------------------------------------------


def numpy_nearest_prototype(support, labels, query, way):
    """Loop over episodes and classes."""
    out = np.zeros((support.shape[0], query.shape[1], way))
    for b in range(support.shape[0]):
        for c in range(way):
            proto = support[b][labels[b] == c].mean(axis=0)
            for q in range(query.shape[1]):
                out[b, q, c] = -np.sqrt(((query[b, q] - proto) ** 2).sum())
    return out


def authors_laplacian_shot(
    train_data, test_data, way, shot, knn=3, lamda=0.5, max_iter=20
):
    """The authors' per-episode loop (fewshot/ablation.py), class-major support.

    Returns the final assignments and the number of updates made.
    """
    n = test_data.shape[0]
    w = np.zeros((n, n))
    distance = np.linalg.norm(test_data - test_data[:, None], axis=-1)
    knn_ind = np.argsort(distance, axis=1)[:, 1:knn]
    np.put_along_axis(w, knn_ind, 1.0, axis=1)
    prototype = train_data.reshape((way, shot, -1)).mean(axis=1)
    a = np.linalg.norm(prototype - test_data[:, None], axis=-1)
    y = np.exp(-a) / np.sum(np.exp(-a), axis=1, keepdims=True)
    energy = np.sum(y * (np.log(y) + a - lamda * np.dot(w, y)))
    updates = 0
    for _ in range(max_iter):
        out = -a + lamda * np.dot(w, y)
        y = np.exp(out) / np.sum(np.exp(out), axis=1, keepdims=True)
        updates += 1
        energy_new = np.sum(y * (np.log(y) + a - lamda * np.dot(w, y)))
        if abs((energy_new - energy) / energy) < 1e-6:
            break
        energy = energy_new.copy()
    return y, updates


class AuthorsNet(torch.nn.Module):
    """The authors' DiffusionResNet (fewshot/diffresnet.py), ``way`` outputs."""

    def __init__(self, dim, way, step_size, layer_num, weight):
        super().__init__()
        self.layer_num = layer_num
        self.step_size = step_size
        self.laplacian = torch.diag(weight.sum(dim=1)) - weight
        self.fc1 = torch.nn.Linear(dim, dim, dtype=weight.dtype)
        self.fc2 = torch.nn.Linear(dim, dim, dtype=weight.dtype)
        self.classifier = torch.nn.Linear(dim, way, dtype=weight.dtype)

    def forward(self, x):
        x = self.fc2(F.relu(self.fc1(x))) + x
        for _ in range(self.layer_num):
            x = x - self.step_size * torch.matmul(self.laplacian, x)
        return self.classifier(x)


def authors_train(support, labels, query, way, config, params):
    """One episode, trained as in the authors' ablation.py (single_trial)."""
    inputs = torch.cat([support, query], dim=0)
    weight = gaussian_weight_matrix(inputs, config.n_top, config.sigma)
    model = AuthorsNet(inputs.size(1), way, config.step_size, config.layer_num, weight)
    with torch.no_grad():
        for layer in ("fc1", "fc2", "classifier"):
            getattr(model, layer).weight.copy_(params[f"{layer}_weight"])
            getattr(model, layer).bias.copy_(params[f"{layer}_bias"])
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=config.lr,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
    )
    scheduler = MultiStepLR(
        optimizer, milestones=list(config.milestones), gamma=config.gamma
    )
    num_support = support.size(0)
    for _ in range(config.epochs):
        outputs = model(inputs)
        loss = torch.nn.CrossEntropyLoss()(outputs[:num_support], labels)
        if config.mu > 0:
            pairwise = torch.linalg.norm(
                outputs.unsqueeze(0) - outputs.unsqueeze(1), dim=-1
            )
            loss = loss + config.mu * torch.sum(weight * pairwise**2)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
    with torch.no_grad():
        return model(inputs)[num_support:]


def episode_params(params, b):
    return {k: v[b] for k, v in params.items()}


# ---------------------------------------------------------------------------
# nearest_prototype
# ---------------------------------------------------------------------------


def test_nearest_prototype_hand_checked():
    support = torch.tensor([[[0.0, 0.0], [4.0, 0.0], [0.0, 2.0]]])
    labels = torch.tensor([[0, 1, 0]])  # prototypes (0, 1) and (4, 0)
    query = torch.tensor([[[0.0, 1.0], [3.0, 0.0], [2.5, 0.5]]])
    expected = -torch.tensor(
        [[[0.0, math.sqrt(17)], [math.sqrt(10), 1.0], [math.sqrt(6.5), math.sqrt(2.5)]]]
    )
    out = nearest_prototype(support, labels, query, way=2)
    torch.testing.assert_close(out, expected)
    assert out.argmax(-1).tolist() == [[0, 1, 1]]


def test_nearest_prototype_matches_numpy_loop():
    support, labels, query, _ = make_episodes(5, 4, 3, 6, 7, seed=0)
    perm = torch.randperm(12, generator=torch.Generator().manual_seed(1))
    support, labels = support[:, perm], labels[:, perm]  # labels not class-major
    out = nearest_prototype(support, labels, query, way=4)
    expected = numpy_nearest_prototype(
        support.numpy(), labels.numpy(), query.numpy(), 4
    )
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------
# laplacian_shot
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("max_iter", [20, 3])
def test_laplacian_shot_matches_authors_loop(max_iter):
    way, shot, num_query = 5, 2, 6
    episodes = []
    for b in range(10):  # different scales: different numbers of iterations
        s, lab, q, _ = make_episodes(
            1, way, shot, num_query, 8, seed=10 + b, spread=0.5 + 0.3 * b
        )
        episodes.append((s[0] * (0.4 + 0.15 * b), lab[0], q[0] * (0.4 + 0.15 * b)))
    support = torch.stack([e[0] for e in episodes])
    labels = torch.stack([e[1] for e in episodes])
    query = torch.stack([e[2] for e in episodes])

    y = laplacian_shot(support, labels, query, way, knn=3, lam=0.5, max_iter=max_iter)
    updates = []
    for b in range(len(episodes)):
        expected, n_updates = authors_laplacian_shot(
            support[b].numpy(), query[b].numpy(), way, shot, max_iter=max_iter
        )
        updates.append(n_updates)
        np.testing.assert_allclose(y[b].numpy(), expected, rtol=1e-9, atol=1e-12)
        assert np.array_equal(y[b].argmax(-1).numpy(), expected.argmax(-1))
    if max_iter == 20:
        assert len(set(updates)) >= 3, updates  # episodes stop at different times
    else:
        assert max(updates) == 3


def test_laplacian_shot_knn_graph_changes_result():
    support, labels, query, _ = make_episodes(3, 3, 1, 5, 4, seed=3)
    y1 = laplacian_shot(support, labels, query, 3, knn=1)  # W = 0
    y0 = torch.softmax(nearest_prototype(support, labels, query, 3), dim=-1)
    torch.testing.assert_close(y1, y0)
    y3 = laplacian_shot(support, labels, query, 3, knn=3)
    assert not torch.allclose(y1, y3)
    torch.testing.assert_close(y3.sum(-1), torch.ones(3, 15, dtype=torch.float64))


# ---------------------------------------------------------------------------
# Episode networks
# ---------------------------------------------------------------------------

SHORT = {"epochs": 12, "milestones": (6, 9)}
VARIANTS = {
    "convection": EpisodeNetConfig(layer_num=0, **SHORT),
    "external": EpisodeNetConfig(layer_num=0, mu=0.05, **SHORT),
    "internal": EpisodeNetConfig(layer_num=3, step_size=0.3, **SHORT),
    "internal_external": EpisodeNetConfig(
        layer_num=2, mu=0.02, n_top=5, sigma=3, **SHORT
    ),
}


@pytest.mark.parametrize(
    "node_basis, low_rank_fc2", [(None, None), (True, True), (False, False)]
)
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_train_matches_authors_module(variant, node_basis, low_rank_fc2):
    config = VARIANTS[variant]
    way = 3
    support, labels, query, _ = make_episodes(1, way, 2, 4, 10, seed=5)
    params = init_episode_nets(
        1, 10, way, torch.Generator().manual_seed(0), torch.float64
    )
    logits = train_episode_nets(
        support,
        labels,
        query,
        way,
        config,
        params=params,
        node_basis=node_basis,
        low_rank_fc2=low_rank_fc2,
    )
    expected = authors_train(
        support[0], labels[0], query[0], way, config, episode_params(params, 0)
    )
    torch.testing.assert_close(logits[0], expected, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_train_rewrites_agree_in_float32(variant):
    """The four exact rewrites agree in float32 on a 1-shot, d > n episode."""
    config = dataclasses.replace(VARIANTS[variant], epochs=30, milestones=(15, 25))
    support, labels, query, _ = make_episodes(
        3, 3, 1, 4, 40, seed=13, dtype=torch.float32
    )
    params = init_episode_nets(3, 40, 3, torch.Generator().manual_seed(4))
    results = [
        train_episode_nets(
            support,
            labels,
            query,
            3,
            config,
            params=params,
            node_basis=node_basis,
            low_rank_fc2=low_rank,
        )
        for node_basis in (False, True)
        for low_rank in (False, True)
    ]
    for result in results[1:]:
        torch.testing.assert_close(result, results[0], rtol=1e-4, atol=1e-4)


def test_train_zero_epochs_is_the_initial_network():
    support, labels, query, _ = make_episodes(2, 3, 2, 4, 6, seed=6)
    params = init_episode_nets(2, 6, 3, torch.Generator().manual_seed(1), torch.float64)
    for config in (
        EpisodeNetConfig(layer_num=4, epochs=0),
        EpisodeNetConfig(layer_num=0, epochs=0),
    ):
        logits = train_episode_nets(support, labels, query, 3, config, params=params)
        for b in range(2):
            expected = authors_train(
                support[b], labels[b], query[b], 3, config, episode_params(params, b)
            )
            torch.testing.assert_close(logits[b], expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("rewrites", [None, True, False])
@pytest.mark.parametrize("variant", ["convection", "internal_external"])
def test_train_batched_equals_each_episode_alone(variant, rewrites):
    config = VARIANTS[variant]
    flags = {"node_basis": rewrites, "low_rank_fc2": rewrites}
    support, labels, query, _ = make_episodes(4, 3, 2, 4, 12, seed=7)
    labels = labels.clone()
    labels[1] = labels[1].flip(0)  # the episodes differ in labels too
    params = init_episode_nets(
        4, 12, 3, torch.Generator().manual_seed(2), torch.float64
    )
    batched = train_episode_nets(
        support, labels, query, 3, config, params=params, **flags
    )
    for b in range(4):
        alone = train_episode_nets(
            support[b : b + 1],
            labels[b : b + 1],
            query[b : b + 1],
            3,
            config,
            params={k: v[b : b + 1] for k, v in params.items()},
            **flags,
        )
        torch.testing.assert_close(batched[b], alone[0], rtol=1e-12, atol=1e-12)
    chunked = train_episode_nets(
        support,
        labels,
        query,
        3,
        config,
        params=params,
        episodes_per_chunk=3,
        **flags,
    )
    torch.testing.assert_close(chunked, batched, rtol=1e-12, atol=1e-12)
    tiny_budget = train_episode_nets(
        support, labels, query, 3, config, params=params, memory_budget=1, **flags
    )
    torch.testing.assert_close(tiny_budget, batched, rtol=1e-12, atol=1e-12)


def test_train_generator_draws_like_init_episode_nets():
    config = VARIANTS["internal"]
    support, labels, query, _ = make_episodes(5, 3, 2, 4, 6, seed=8)
    params = init_episode_nets(5, 6, 3, torch.Generator().manual_seed(3), torch.float64)
    before = {k: v.clone() for k, v in params.items()}
    expected = train_episode_nets(support, labels, query, 3, config, params=params)
    for k in PARAM_NAMES:  # params are not modified
        assert torch.equal(params[k], before[k])
    drawn = train_episode_nets(
        support,
        labels,
        query,
        3,
        config,
        generator=torch.Generator().manual_seed(3),
        episodes_per_chunk=2,
    )
    torch.testing.assert_close(drawn, expected, rtol=1e-12, atol=1e-12)


def test_init_matches_torch_linear():
    for dtype in (torch.float32, torch.float64):
        params = init_episode_nets(2, 7, 4, torch.Generator().manual_seed(11), dtype)
        torch.manual_seed(11)
        layers = [
            torch.nn.Linear(7, 7, dtype=dtype),
            torch.nn.Linear(7, 7, dtype=dtype),
            torch.nn.Linear(7, 4, dtype=dtype),
        ]
        for layer, name in zip(layers, ("fc1", "fc2", "classifier"), strict=True):
            assert params[f"{name}_weight"].dtype == dtype
            assert torch.equal(params[f"{name}_weight"][0], layer.weight.detach())
            assert torch.equal(params[f"{name}_bias"][0], layer.bias.detach())
    g = torch.Generator().manual_seed(12)
    once = init_episode_nets(5, 3, 2, torch.Generator().manual_seed(12))
    parts = [init_episode_nets(2, 3, 2, g), init_episode_nets(3, 3, 2, g)]
    for k in PARAM_NAMES:
        assert torch.equal(once[k], torch.cat([p[k] for p in parts]))
    bound = 1 / math.sqrt(3)
    assert all(float(v.abs().max()) <= bound for v in once.values())
    assert init_episode_nets(0, 3, 2, g)["fc1_weight"].shape == (0, 3, 3)


def test_diffusion_operator_equals_steps():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(3, 20, 5, generator=g, dtype=torch.float64)
    weight = gaussian_weight_matrix(x)
    laplacian = torch.diag_embed(weight.sum(-1)) - weight
    for layer_num in (0, 1, 6):
        feats = torch.randn(
            3, 20, 4, generator=g, dtype=torch.float64, requires_grad=True
        )
        stepped = feats
        for _ in range(layer_num):
            stepped = stepped - 0.5 * torch.bmm(laplacian, stepped)
        prop = diffusion_operator(weight, 0.5, layer_num)
        fused = torch.bmm(prop, feats)
        torch.testing.assert_close(fused, stepped, rtol=1e-12, atol=1e-12)
        upstream = torch.randn(3, 20, 4, generator=g, dtype=torch.float64)
        (grad_steps,) = torch.autograd.grad(stepped, feats, upstream)
        (grad_fused,) = torch.autograd.grad(fused, feats, upstream)
        torch.testing.assert_close(grad_fused, grad_steps, rtol=1e-12, atol=1e-12)
    single = diffusion_operator(weight[0], 0.5, 2)
    torch.testing.assert_close(single, diffusion_operator(weight, 0.5, 2)[0])


# ---------------------------------------------------------------------------
# All methods on a trivially separable episode
# ---------------------------------------------------------------------------


def test_methods_perfect_on_separated_episode():
    way, shot, num_query, dim = 3, 2, 5, 6
    g = torch.Generator().manual_seed(9)
    centers = 10 * torch.eye(way, dim).unsqueeze(1)
    support = (centers + 0.3 * torch.randn(way, shot, dim, generator=g)).reshape(
        1, way * shot, dim
    )
    query = (centers + 0.3 * torch.randn(way, num_query, dim, generator=g)).reshape(
        1, way * num_query, dim
    )
    labels = torch.arange(way).repeat_interleave(shot)[None]
    truth = torch.arange(way).repeat_interleave(num_query)[None]
    assert torch.equal(nearest_prototype(support, labels, query, way).argmax(-1), truth)
    assert torch.equal(laplacian_shot(support, labels, query, way).argmax(-1), truth)
    for config in (
        EpisodeNetConfig(layer_num=0, epochs=30, milestones=(15, 25)),
        EpisodeNetConfig(layer_num=0, mu=0.01, epochs=30, milestones=(15, 25)),
        EpisodeNetConfig(layer_num=6, epochs=30, milestones=(15, 25)),
    ):
        logits = train_episode_nets(
            support,
            labels,
            query,
            way,
            config,
            generator=torch.Generator().manual_seed(0),
        )
        assert logits.shape == (1, way * num_query, way)
        assert torch.equal(logits.argmax(-1), truth)


# ---------------------------------------------------------------------------
# Bad inputs
# ---------------------------------------------------------------------------


def _episode():
    support, labels, query, _ = make_episodes(2, 3, 2, 3, 4, seed=0)
    return support, labels, query


@pytest.mark.parametrize(
    "method", ["nearest_prototype", "laplacian_shot", "train_episode_nets"]
)
@pytest.mark.parametrize(
    "change, match",
    [
        (lambda s, lab, q, w: (s[0], lab, q, w), "support"),
        (lambda s, lab, q, w: (s, lab, q[:1], w), "query"),
        (lambda s, lab, q, w: (s, lab, q[..., :3], w), "query"),
        (lambda s, lab, q, w: (s, lab[:, :4], q, w), "support_labels"),
        (lambda s, lab, q, w: (s, lab + 1, q, w), "support_labels"),
        (lambda s, lab, q, w: (s, lab - 1, q, w), "support_labels"),
        (lambda s, lab, q, w: (s, lab, q, 1), "way"),
    ],
)
def test_bad_episode_inputs(method, change, match):
    fn = {
        "nearest_prototype": nearest_prototype,
        "laplacian_shot": laplacian_shot,
        "train_episode_nets": lambda s, lab, q, w: train_episode_nets(
            s, lab, q, w, EpisodeNetConfig(epochs=1), generator=torch.Generator()
        ),
    }[method]
    args = change(*_episode(), 3)
    with pytest.raises(ValueError, match=match):
        fn(*args)


def test_missing_class_in_support():
    support, labels, query = _episode()
    labels = labels.clone()
    labels[1, :] = 0
    with pytest.raises(ValueError, match="no sample of class 1"):
        nearest_prototype(support, labels, query, 3)
    train_episode_nets(
        support,
        labels,
        query,
        3,
        EpisodeNetConfig(epochs=1),
        generator=torch.Generator(),
    )  # allowed for the network


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"knn": 0}, "knn"),
        ({"knn": 10}, "knn"),
        ({"max_iter": -1}, "max_iter"),
        ({"tol": -1.0}, "tol"),
        ({"lam": float("nan")}, "lam"),
    ],
)
def test_bad_laplacian_shot_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        laplacian_shot(*_episode(), 3, **kwargs)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"layer_num": -1}, "layer_num"),
        ({"epochs": -1}, "epochs"),
        ({"milestones": (50, 50)}, "milestones"),
        ({"milestones": (75, 50)}, "milestones"),
        ({"milestones": (0, 50)}, "milestones"),
        ({"milestones": 50}, "milestones"),
        ({"lr": 0.0}, "lr"),
        ({"momentum": 1.0}, "momentum"),
        ({"mu": -0.1}, "mu"),
        ({"step_size": -0.5}, "step_size"),
        ({"weight_decay": -1e-4}, "weight_decay"),
        ({"gamma": 0}, "gamma"),
        ({"n_top": 0}, "n_top"),
        ({"layer_num": 1.5}, "layer_num"),
    ],
)
def test_bad_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EpisodeNetConfig(**kwargs)


def test_bad_train_arguments():
    support, labels, query = _episode()
    config = EpisodeNetConfig(epochs=1)
    with pytest.raises(ValueError, match="generator"):
        train_episode_nets(support, labels, query, 3, config)
    params = init_episode_nets(2, 4, 3, torch.Generator(), torch.float64)
    with pytest.raises(ValueError, match="params"):
        train_episode_nets(
            support,
            labels,
            query,
            3,
            config,
            params={k: v[:1] for k, v in params.items()},
        )
    with pytest.raises(ValueError, match="params"):
        train_episode_nets(
            support,
            labels,
            query,
            3,
            config,
            params={k: params[k] for k in PARAM_NAMES[:5]},
        )
    with pytest.raises(TypeError, match="params"):
        train_episode_nets(
            support,
            labels,
            query,
            3,
            config,
            params={k: v.float() for k, v in params.items()},
        )
    with pytest.raises(ValueError, match="episodes_per_chunk"):
        train_episode_nets(
            support, labels, query, 3, config, params=params, episodes_per_chunk=0
        )
    with pytest.raises(TypeError, match="config"):
        train_episode_nets(support, labels, query, 3, {"epochs": 1}, params=params)
    with pytest.raises(ValueError, match="n_top"):  # 15 nodes < n_top
        train_episode_nets(
            support,
            labels,
            query,
            3,
            EpisodeNetConfig(epochs=1, n_top=16),
            params=params,
        )
    with pytest.raises(ValueError, match="layer_num"):
        diffusion_operator(torch.eye(3), 0.5, -1)
    with pytest.raises(ValueError, match="num_episodes"):
        init_episode_nets(-1, 4, 3, torch.Generator())
    with pytest.raises(ValueError, match="way"):
        init_episode_nets(1, 4, 1, torch.Generator())


def test_empty_batch():
    support, labels, query = _episode()
    out = train_episode_nets(
        support[:0],
        labels[:0],
        query[:0],
        3,
        EpisodeNetConfig(epochs=1),
        generator=torch.Generator(),
    )
    assert out.shape == (0, 9, 3)
