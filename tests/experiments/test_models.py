import pytest
import torch

from diffresnet_pyg.experiments.config import MODEL_NAMES, ModelConfig, config_from_dict
from diffresnet_pyg.experiments.models import (
    BATCHABLE_MODELS,
    build_members,
    build_model,
    first_layer_weights,
)
from diffresnet_pyg.experiments.training import SingleMember


def model_config(name: str, **params) -> ModelConfig:
    raw = {"output": "o", "dataset": {"name": "cora"}, "model": {"name": name}}
    raw["model"].update(params)
    return config_from_dict(raw).model


SMALL = {
    "diffresnet_reference": {"layer_num": 2},
    "diffresnet": {"hidden_channels": 8, "diffusion_steps": 2},
    "gcn": {"hidden_channels": 8},
    "sage": {"hidden_channels": 8},
    "gat": {"hidden_channels": 8, "heads": 2},
    "mlp": {"hidden_channels": 8},
    "grand": {
        "hidden_channels": 8,
        "method": "rk4",
        "step_size": 0.5,
        "time": 1.0,
        "heads": 2,
        "attention_channels": 4,
    },
}


@pytest.fixture
def graph():
    edge_index = torch.tensor([[0, 1, 1, 2, 2, 3, 3, 4], [1, 0, 2, 1, 3, 2, 4, 3]])
    return torch.rand(5, 6), edge_index


def test_every_model_name_builds(graph):
    x, edge_index = graph
    assert set(SMALL) == set(MODEL_NAMES)
    for name in MODEL_NAMES:
        model = build_model(model_config(name, **SMALL[name]), 6, 3).eval()
        assert model(x, edge_index).shape == (5, 3), name


@pytest.mark.parametrize("name", BATCHABLE_MODELS)
def test_members_start_from_the_seeded_plain_models(graph, name):
    x, edge_index = graph
    cfg = model_config(name, **SMALL[name])
    batch = build_members(cfg, 6, 3, [3, 4]).eval()
    out = batch(x, edge_index)
    for b, seed in enumerate([3, 4]):
        torch.manual_seed(seed)
        plain = build_model(cfg, 6, 3).eval()
        torch.testing.assert_close(out[:, b], plain(x, edge_index))


def test_one_seed_is_the_plain_model_and_grand_is_not_batched(graph):
    cfg = model_config("grand", **SMALL["grand"])
    assert isinstance(build_members(cfg, 6, 3, [1]), SingleMember)
    with pytest.raises(ValueError, match="'grand' has no batched form"):
        build_members(cfg, 6, 3, [1, 2])
    with pytest.raises(ValueError, match="at least one seed"):
        build_members(cfg, 6, 3, [])


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_first_layer_weights(name):
    cfg = model_config(name, **SMALL[name])
    plain = build_model(cfg, 6, 3)
    weights = first_layer_weights(SingleMember(plain))
    assert weights and all(w.dim() == 2 and 6 in w.shape for w in weights)
    if name in BATCHABLE_MODELS:
        batched = build_members(cfg, 6, 3, [1, 2])
        stacked = first_layer_weights(batched)
        assert len(stacked) == len(weights)
        assert all(w.dim() == 3 and w.shape[0] == 2 for w in stacked)
        names = {id(p) for p in batched.parameters()}
        assert all(id(w) in names for w in stacked)
