import copy
import json
import math

import numpy as np
import pytest
import torch
import yaml
from torch_geometric.nn import APPNP
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.utils import to_dense_adj

from diffresnet_pyg.cli import main
from diffresnet_pyg.experiments.models import (
    build_members,
    build_model,
    first_layer_weights,
    get_model,
    model_names,
    own_weight_decays,
    register_model,
)
from diffresnet_pyg.experiments.models.appnp import APPNPNet
from diffresnet_pyg.experiments.models.gcnii import GCNIINet
from diffresnet_pyg.experiments.schema import ConfigError, ModelConfig, config_from_dict
from diffresnet_pyg.experiments.schema.fields import POSITIVE_INT
from diffresnet_pyg.experiments.training import SingleMember, make_optimizer
from diffresnet_pyg.nn.dropout import keep_mask_bytes
from diffresnet_pyg.nn.sparse import sparse_dropout
from tests.fake_data import small_graph


def model_config(name: str, **params) -> ModelConfig:
    raw = {"output": "o", "dataset": {"name": "cora"}, "model": {"name": name}}
    raw["model"].update(params)
    return config_from_dict(raw).model


# Small settings for the slow defaults; a model not listed is built with its
# defaults, so a newly registered model is covered without editing this file.
SMALL = {
    "diffresnet_reference": {"layer_num": 2},
    "diffresnet": {"hidden_channels": 8, "diffusion_steps": 2},
    "gcn": {"hidden_channels": 8},
    "sage": {"hidden_channels": 8},
    "gat": {"hidden_channels": 8, "heads": 2},
    "mlp": {"hidden_channels": 8},
    "appnp": {"hidden_channels": 8, "K": 3},
    "gcnii": {"hidden_channels": 8, "num_layers": 3},
    "grand": {
        "hidden_channels": 8,
        "method": "rk4",
        "step_size": 0.5,
        "time": 1.0,
        "heads": 2,
        "attention_channels": 4,
    },
}
BATCHABLE = [name for name in model_names() if get_model(name).batchable]


@pytest.fixture
def graph():
    edge_index = torch.tensor([[0, 1, 1, 2, 2, 3, 3, 4], [1, 0, 2, 1, 3, 2, 4, 3]])
    return torch.rand(5, 6), edge_index


@pytest.mark.parametrize("name", model_names())
def test_every_registered_model_builds(graph, name):
    x, edge_index = graph
    model = build_model(model_config(name, **SMALL.get(name, {})), 6, 3).eval()
    assert model(x, edge_index).shape == (5, 3)


def test_batched_and_sparse_flags():
    assert set(BATCHABLE) == {
        "diffresnet_reference",
        "diffresnet",
        "gcn",
        "sage",
        "gat",
        "mlp",
    }
    sparse = {n for n in model_names() if get_model(n).takes_sparse(batched=False)}
    # the baselines take sparse features when they have input dropout (GAT's
    # default has it): their input dropout then draws over the stored values
    assert sparse == {"diffresnet_reference", "diffresnet", "gat", "appnp", "gcnii"}
    for name in ("gcn", "sage", "gat", "mlp"):
        spec = get_model(name)
        assert spec.takes_sparse(False, {"input_dropout": 0.5})
        assert not spec.takes_sparse(False, {"input_dropout": 0.0})
    assert get_model("gcn").takes_sparse(batched=True)
    assert not get_model("grand").takes_sparse(batched=True)
    assert not get_model("gcnii").batchable


@pytest.mark.parametrize("name", BATCHABLE)
def test_members_start_from_the_seeded_plain_models(graph, name):
    x, edge_index = graph
    cfg = model_config(name, **SMALL.get(name, {}))
    batch = build_members(cfg, 6, 3, [3, 4]).eval()
    out = batch(x, edge_index)
    for b, seed in enumerate([3, 4]):
        torch.manual_seed(seed)
        plain = build_model(cfg, 6, 3).eval()
        torch.testing.assert_close(out[:, b], plain(x, edge_index))


@pytest.mark.parametrize("name", ["grand", "appnp", "gcnii"])
def test_one_seed_is_the_plain_model_and_unbatchable_models_refuse_more(name):
    cfg = model_config(name, **SMALL[name])
    assert isinstance(build_members(cfg, 6, 3, [1]), SingleMember)
    with pytest.raises(ValueError, match=f"'{name}' has no batched form"):
        build_members(cfg, 6, 3, [1, 2])
    with pytest.raises(ValueError, match="at least one seed"):
        build_members(cfg, 6, 3, [])


@pytest.mark.parametrize("name", model_names())
def test_first_layer_weights(name):
    cfg = model_config(name, **SMALL.get(name, {}))
    plain = build_model(cfg, 6, 3)
    weights = first_layer_weights(cfg, SingleMember(plain))
    assert weights and all(w.dim() == 2 and 6 in w.shape for w in weights)
    assert first_layer_weights(cfg, plain) == weights
    names = {id(p) for p in plain.parameters()}
    assert all(id(w) in names for w in weights)
    if get_model(name).batchable:
        batched = build_members(cfg, 6, 3, [1, 2])
        stacked = first_layer_weights(cfg, batched)
        assert len(stacked) == len(weights)
        assert all(w.dim() == 3 and w.shape[0] == 2 for w in stacked)
        names = {id(p) for p in batched.parameters()}
        assert all(id(w) in names for w in stacked)


# --------------------------------------------------------------------------
# The registry
# --------------------------------------------------------------------------


def test_parameters_come_from_the_builder_signature():
    def tiny(
        in_channels: int,
        out_channels: int,
        *,
        hidden_channels: int = 4,
        head_dropout: float = 0.1,
        scale: float | None = None,
        mode: str = "a",
        flag: bool = False,
        internal: int = 3,
    ) -> torch.nn.Module:
        return torch.nn.Linear(in_channels, out_channels)

    register_model(  # registered for the rest of the session; the name is unique
        "test_tiny",
        first_layer=lambda m: [m.weight],
        checks={"mode": lambda v, k: v},
        defaults={"hidden_channels": 16},
        exclude=("internal",),
    )(tiny)
    spec = get_model("test_tiny")
    assert [p.name for p in spec.params] == [
        "hidden_channels",
        "head_dropout",
        "scale",
        "mode",
        "flag",
    ]
    assert spec.defaults() == {
        "hidden_channels": 16,
        "head_dropout": 0.1,
        "scale": None,
        "mode": "a",
        "flag": False,
    }
    assert not spec.batchable
    # Validators: by name (hidden_channels, *dropout), by annotation otherwise.
    cases = [
        ({"hidden_channels": 0}, r"^model\.hidden_channels: expected an int >= 1"),
        ({"head_dropout": 1.0}, r"^model\.head_dropout: expected a float >= 0"),
        ({"scale": "x"}, r"^model\.scale: expected a float, got 'x'"),
        ({"flag": 1}, r"^model\.flag: expected true or false"),
        ({"internal": 1}, r"^model\.internal: not a parameter of model 'test_tiny'"),
    ]
    for params, message in cases:
        with pytest.raises(ConfigError, match=message):
            ModelConfig("test_tiny", params)
    assert ModelConfig("test_tiny", {"scale": 2}).params["scale"] == 2.0
    model = build_model(ModelConfig("test_tiny"), 5, 2)
    assert first_layer_weights(ModelConfig("test_tiny"), model) == [model.weight]


def test_registration_errors():
    def good(in_channels: int, out_channels: int, width: int = 3) -> torch.nn.Module:
        return torch.nn.Linear(in_channels, out_channels)

    def no_default(in_channels: int, out_channels: int, width: int):
        return torch.nn.Linear(in_channels, out_channels)

    def no_sizes(channels: int, width: int = 3):
        return torch.nn.Linear(channels, channels)

    def untyped(in_channels, out_channels, width=3):
        return torch.nn.Linear(in_channels, out_channels)

    before = set(model_names())
    first = {"first_layer": lambda m: [m.weight]}
    with pytest.raises(ValueError, match="'gcn' is already registered"):
        register_model("gcn", **first)(good)
    with pytest.raises(TypeError, match="'width' needs a default"):
        register_model("x1", **first)(no_default)
    with pytest.raises(TypeError, match="must take 'in_channels' and 'out_channels'"):
        register_model("x2", **first)(no_sizes)
    with pytest.raises(TypeError, match="no validator for annotation"):
        register_model("x3", **first)(untyped)
    with pytest.raises(TypeError, match="has no parameter 'depth'"):
        register_model("x4", checks={"depth": POSITIVE_INT}, **first)(good)
    with pytest.raises(ConfigError, match="default of width"):
        register_model(
            "x5", checks={"width": lambda v, k: POSITIVE_INT(-1, k)}, **first
        )(good)
    assert set(model_names()) == before  # failed registrations leave no trace


def test_unknown_model_name():
    with pytest.raises(ValueError, match="unknown model 'bogus'; registered: "):
        get_model("bogus")
    with pytest.raises(ConfigError, match=r"^model\.name: expected one of .*'appnp'"):
        ModelConfig("bogus")


# --------------------------------------------------------------------------
# APPNP against a dense computation
# --------------------------------------------------------------------------


def test_appnp_equals_dense_personalized_pagerank(graph):
    x, edge_index = graph
    torch.manual_seed(0)
    model = APPNPNet(6, 3, hidden_channels=8, K=4, alpha=0.2).double().eval()
    x = x.double()
    a = to_dense_adj(edge_index, max_num_nodes=5)[0].double() + torch.eye(5)
    d = a.sum(1).pow(-0.5)
    a_hat = d[:, None] * a * d[None, :]
    h = model.mlp(x)
    z = h
    for _ in range(4):
        z = 0.8 * a_hat @ z + 0.2 * h
    torch.testing.assert_close(model(x, edge_index), z)
    # every parameter gets a gradient, checked in float64
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda v: model(v, edge_index), (x,))


def test_appnp_edge_dropout_draws_a_fresh_mask_per_step(graph):
    # each step drops the normalized weights themselves (never the previous
    # step's dropped ones): the same draws, made by hand, give the same output
    x, edge_index = graph
    x = x.double()
    torch.manual_seed(0)
    model = (
        APPNPNet(
            6,
            3,
            hidden_channels=8,
            K=3,
            alpha=0.2,
            dropout=0.0,
            input_dropout=0.0,
            edge_dropout=0.5,
        )
        .double()
        .train()
    )
    torch.manual_seed(1)
    out = model(x, edge_index)
    a = to_dense_adj(edge_index, max_num_nodes=5)[0].double() + torch.eye(5)
    d = a.sum(1).pow(-0.5)
    a_hat = d[:, None] * a * d[None, :]
    loops = torch.arange(5).repeat(2, 1)
    ei = torch.cat([edge_index, loops], dim=1)  # gcn_norm's order: edges, then loops
    weight = a_hat[ei[1], ei[0]]
    h = model.mlp(x)
    z = h
    torch.manual_seed(1)
    for _ in range(3):
        step = weight * keep_mask_bytes(weight.shape, 0.5).double() * 2.0
        assert set(step.unique().tolist()) <= {0.0} | set((2 * weight).tolist())
        dense = torch.zeros(5, 5, dtype=torch.double).index_put_(
            (ei[1], ei[0]), step, accumulate=True
        )
        z = 0.8 * dense @ z + 0.2 * h
    torch.testing.assert_close(out, z)


def test_appnp_equals_pyg_appnp_with_gradients_and_takes_sparse_features(graph):
    x, edge_index = graph
    x = x.double()
    weight = torch.tensor([0.5, 1.0, 2.0, 0.0, 1.5, 1.0, 3.0, 0.25]).double()
    torch.manual_seed(2)
    model = APPNPNet(6, 3, hidden_channels=8, K=5, alpha=0.15).double().eval()
    pyg = APPNP(5, 0.15)  # PyG's own propagation on the MLP's output

    def reference(features: torch.Tensor) -> torch.Tensor:
        return pyg(model.mlp(features), edge_index, weight)

    out = model(x, edge_index, weight)
    torch.testing.assert_close(out, reference(x))
    grads = torch.autograd.grad(out.square().sum(), list(model.parameters()))
    ref = torch.autograd.grad(reference(x).square().sum(), list(model.parameters()))
    for g, r in zip(grads, ref, strict=True):
        torch.testing.assert_close(g, r)
    torch.testing.assert_close(model(x.to_sparse_csr(), edge_index, weight), out)
    # a duplicated edge counts twice, as in PyG's propagation
    doubled = torch.cat([edge_index, edge_index[:, :1]], dim=1)
    torch.testing.assert_close(
        model(x, doubled), pyg(model.mlp(x), doubled), msg="duplicate edges"
    )


def test_appnp_input_dropout_on_sparse_features_draws_over_stored_values(graph):
    x, edge_index = graph
    x = (x > 0.5).double()
    model = APPNPNet(6, 3, hidden_channels=8, K=2, input_dropout=0.5).double()
    model.mlp.dropout = [0.0] * len(model.mlp.dropout)
    model.edge_dropout = 0.0
    torch.manual_seed(4)
    out = model(x.to_sparse_csr(), edge_index)
    torch.manual_seed(4)
    dropped = sparse_dropout(x.to_sparse_csr(), 0.5).to_dense()
    assert set(dropped.unique().tolist()) <= {0.0, 2.0}
    torch.testing.assert_close(out, model.eval()(dropped, edge_index))


def test_appnp_config_matches_the_paper_defaults():
    cfg = config_from_dict(
        {"output": "o", "dataset": {"name": "cora"}, "model": {"name": "appnp"}}
    )
    assert cfg.model.params == {
        "hidden_channels": 64,
        "num_layers": 2,
        "K": 10,
        "alpha": 0.1,
        "dropout": 0.5,
        "input_dropout": 0.5,
        "edge_dropout": 0.5,
    }
    with pytest.raises(ConfigError, match=r"^model\.alpha: expected a float > 0"):
        ModelConfig("appnp", {"alpha": 1.0})
    with pytest.raises(ConfigError, match=r"^model\.K: expected an int >= 1"):
        ModelConfig("appnp", {"K": 0})


# --------------------------------------------------------------------------
# GCNII against a dense computation
# --------------------------------------------------------------------------


def test_gcnii_equals_dense_initial_residual_and_identity_mapping(graph):
    x, edge_index = graph
    torch.manual_seed(0)
    alpha, theta = 0.2, 0.7
    model = GCNIINet(6, 3, hidden_channels=4, num_layers=3, alpha=alpha, theta=theta)
    model = model.double().eval()
    x = x.double()
    a = to_dense_adj(edge_index, max_num_nodes=5)[0].double() + torch.eye(5)
    d = a.sum(1).pow(-0.5)
    a_hat = d[:, None] * a * d[None, :]
    h = h0 = torch.relu(model.lin_in(x))
    for layer, conv in enumerate(model.convs, start=1):
        beta = math.log(theta / layer + 1)
        support = (1 - alpha) * a_hat @ h + alpha * h0
        mapping = (1 - beta) * torch.eye(4, dtype=torch.double) + beta * conv.weight1
        h = torch.relu(support @ mapping)
    torch.testing.assert_close(model(x, edge_index), model.lin_out(h))
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda v: model(v, edge_index), (x,))


def test_gcnii_equals_pyg_gcn2conv_with_gradients_and_takes_sparse_features(graph):
    x, edge_index = graph
    weight = torch.tensor([0.5, 1.0, 2.0, 0.0, 1.5, 1.0, 3.0, 0.25]).double()
    torch.manual_seed(1)
    model = GCNIINet(6, 3, hidden_channels=4, num_layers=3, dropout=0.0).double()
    x = x.double()

    def reference(features: torch.Tensor) -> torch.Tensor:  # PyG's own layers
        ei, w = gcn_norm(edge_index, weight, 5, add_self_loops=True)
        h = h0 = torch.relu(model.lin_in(features))
        for conv in model.convs:
            h = torch.relu(conv(h, h0, ei, w))
        return model.lin_out(h)

    out = model(x, edge_index, weight)
    torch.testing.assert_close(out, reference(x))
    grads = torch.autograd.grad(out.square().sum(), list(model.parameters()))
    ref_grads = torch.autograd.grad(
        reference(x).square().sum(), list(model.parameters())
    )
    for g, r in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(g, r)
    sparse = model(x.to_sparse_csr(), edge_index, weight)
    torch.testing.assert_close(sparse, out)
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda v: model(v, edge_index, weight), (x,))


def test_gcnii_dropout_keeps_the_expected_fraction_and_is_seeded():
    model = GCNIINet(6, 3, hidden_channels=4, num_layers=1, dropout=0.6)
    h = torch.ones(2000, 50)
    torch.manual_seed(3)
    a = model._dropout(h)
    torch.manual_seed(3)
    b = model._dropout(h)
    assert torch.equal(a, b)
    assert set(a.unique().tolist()) == {0.0, 2.5}
    assert abs((a > 0).double().mean().item() - 0.4) < 0.01
    assert torch.equal(model.eval()._dropout(h), h)


def test_gcnii_config_matches_the_paper_defaults():
    params = ModelConfig("gcnii").params
    assert params == {
        "hidden_channels": 64,
        "num_layers": 64,
        "alpha": 0.1,
        "theta": 0.5,
        "dropout": 0.6,
        "conv_weight_decay": None,
    }


def test_gcnii_conv_weight_decay_is_its_own_optimizer_group(graph):
    x, edge_index = graph
    cfg = model_config("gcnii", hidden_channels=4, num_layers=3, conv_weight_decay=0.01)
    torch.manual_seed(0)
    model = build_model(cfg, 6, 3)
    convs = [conv.weight1 for conv in model.convs]
    (pairs,) = own_weight_decays(cfg, model)
    assert pairs[1] == 0.01 and [id(p) for p in pairs[0]] == [id(p) for p in convs]
    assert own_weight_decays(model_config("gcnii"), GCNIINet(6, 3, num_layers=2)) == []
    assert (
        own_weight_decays(model_config("gcn"), build_model(model_config("gcn"), 6, 3))
        == []
    )
    # the paper's optimizer, built by hand (PyG's GCNII example), and ours
    dense = [*model.lin_in.parameters(), *model.lin_out.parameters()]
    twin = copy.deepcopy(model)
    twin_convs = [conv.weight1 for conv in twin.convs]
    twin_dense = [*twin.lin_in.parameters(), *twin.lin_out.parameters()]
    ours = make_optimizer("adam", model.parameters(), 0.01, 5e-4, own_decays=[pairs])
    assert [g["weight_decay"] for g in ours.param_groups] == [0.01, 5e-4]
    assert {id(p) for p in ours.param_groups[1]["params"]} == {id(p) for p in dense}
    paper = torch.optim.Adam(
        [
            {"params": twin_convs, "weight_decay": 0.01},
            {"params": twin_dense, "weight_decay": 5e-4},
        ],
        lr=0.01,
    )
    for net, opt in ((model, ours), (twin, paper)):
        for _ in range(3):
            opt.zero_grad()
            net.eval()(x, edge_index).square().sum().backward()
            opt.step()
    for a, b in zip(model.parameters(), twin.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    # with weight_decay_on: first_layer, the rest splits as before
    first = make_optimizer(
        "adam",
        model.parameters(),
        0.01,
        5e-4,
        decay_params=[model.lin_in.weight],
        own_decays=[pairs],
    )
    assert [g["weight_decay"] for g in first.param_groups] == [0.01, 5e-4, 0.0]
    assert first.param_groups[1]["params"] == [model.lin_in.weight]


def test_gcnii_conv_weight_decay_reaches_the_trainer(tmp_path):
    # a separate decay equal to train.weight_decay trains exactly as none (Adam
    # updates each parameter on its own), and another value trains differently
    graph = small_graph(num_splits=1)
    path = tmp_path / "graph.npz"
    np.savez(  # the heterophilous layout: edges [E, 2], masks [S, N]
        path,
        node_features=graph["x"],
        node_labels=graph["y"],
        edges=graph["edges"],
        **{k: graph[k] for k in ("train_masks", "val_masks", "test_masks")},
    )

    def rows(out: str, **model) -> list[tuple]:
        raw = {
            "output": str(tmp_path / out),
            "dataset": {"path": str(path), "standardize": False},
            "split": {"scheme": "given", "num_splits": 1, "num_inits": 2},
            "model": {"name": "gcnii", "hidden_channels": 8, "num_layers": 3, **model},
            "train": {"max_epochs": 8, "patience": 8, "weight_decay": 0.01},
        }
        (tmp_path / f"{out}.yaml").write_text(yaml.safe_dump(raw))
        assert main(["-q", "run", str(tmp_path / f"{out}.yaml")]) == 0
        lines = (tmp_path / out / "runs.jsonl").read_text().splitlines()
        return sorted((r["init"], r["val_loss"]) for r in map(json.loads, lines))

    one = rows("one")
    assert rows("same", conv_weight_decay=0.01) == one
    assert rows("heavy", conv_weight_decay=5.0) != one
    saved = yaml.safe_load((tmp_path / "heavy" / "config.yaml").read_text())
    assert saved["model"]["conv_weight_decay"] == 5.0
    assert (
        "conv_weight_decay"
        not in yaml.safe_load((tmp_path / "one" / "config.yaml").read_text())["model"]
    )
