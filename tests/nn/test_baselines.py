"""The PyG baseline builders (GCN, GraphSAGE, GAT, MLP)."""

import pytest
import torch
import torch.nn.functional as F
from torch_geometric.nn.conv import GATConv, GCNConv, SAGEConv
from torch_geometric.nn.models import GAT, GCN, MLP, GraphSAGE

from diffresnet_pyg.nn.models.baselines import (
    BUILDERS,
    FAMILIES,
    BaselineModel,
    gat,
    gcn,
    graph_sage,
    mlp,
)

N, F_IN, C = 20, 12, 4


@pytest.fixture
def graph():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(N, F_IN, generator=gen)
    edge_index = torch.randint(0, N, (2, 60), generator=gen)
    return x, edge_index


def test_families_and_builders():
    assert set(BUILDERS) == set(FAMILIES)
    for family, builder in BUILDERS.items():
        model = builder(F_IN, C)
        assert isinstance(model, BaselineModel)
        assert model.family == family
        assert model.hparams["in_channels"] == F_IN
        assert model.hparams["out_channels"] == C


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("num_layers", [1, 2, 3])
def test_output_shape(graph, family, num_layers):
    x, edge_index = graph
    model = BUILDERS[family](F_IN, C, num_layers=num_layers)
    assert model(x, edge_index).shape == (N, C)
    model.eval()
    assert model(x, edge_index).shape == (N, C)


def test_gcn_defaults():
    model = gcn(F_IN, C)
    assert isinstance(model.model, GCN)
    assert model.hparams == {
        "in_channels": F_IN,
        "out_channels": C,
        "hidden_channels": 64,
        "num_layers": 2,
        "dropout": 0.8,
        "input_dropout": 0.0,
    }
    assert all(isinstance(conv, GCNConv) for conv in model.model.convs)
    assert model.model.convs[0].lin.weight.shape == (64, F_IN)
    assert model.model.dropout.p == 0.8


def test_graph_sage_defaults():
    model = graph_sage(F_IN, C)
    assert isinstance(model.model, GraphSAGE)
    assert model.hparams["hidden_channels"] == 32
    assert model.hparams["dropout"] == 0.4
    assert model.hparams["input_dropout"] == 0.0
    for conv in model.model.convs:
        assert isinstance(conv, SAGEConv)
        assert conv.aggr == "mean"
        assert conv.root_weight and not conv.normalize and not conv.project


def test_gat_defaults():
    model = gat(F_IN, C)
    assert isinstance(model.model, GAT)
    hp = model.hparams
    assert (hp["hidden_channels"], hp["heads"], hp["output_heads"]) == (64, 8, 1)
    assert (hp["dropout"], hp["input_dropout"], hp["attention_dropout"]) == (
        0.6,
        0.6,
        0.3,
    )
    first, last = model.model.convs
    assert isinstance(first, GATConv) and isinstance(last, GATConv)
    assert (first.heads, first.out_channels, first.concat) == (8, 8, True)
    assert (last.heads, last.out_channels, last.concat) == (1, C, False)
    assert first.dropout == last.dropout == 0.3
    assert model.model.dropout.p == 0.6


def test_gat_output_heads_like_pyg():
    model = gat(F_IN, C, output_heads=8, heads=8)
    last = model.model.convs[-1]
    assert (last.heads, last.out_channels, last.concat) == (8, C, False)
    assert last.dropout == 0.3


def test_gat_single_layer_uses_input_width():
    model = gat(F_IN, C, num_layers=1, output_heads=2)
    (conv,) = model.model.convs
    assert conv.lin.weight.shape == (2 * C, F_IN)
    assert (conv.heads, conv.concat) == (2, False)


def test_mlp_defaults(graph):
    x, edge_index = graph
    model = mlp(F_IN, C)
    assert isinstance(model.model, MLP)
    assert model.hparams["hidden_channels"] == 64
    assert model.hparams["dropout"] == 0.8
    assert all(isinstance(norm, torch.nn.Identity) for norm in model.model.norms)
    model.eval()
    torch.testing.assert_close(model(x), model(x, edge_index))


@pytest.mark.parametrize("family", FAMILIES)
def test_input_dropout(graph, family):
    x, edge_index = graph
    model = BUILDERS[family](F_IN, C, input_dropout=0.5)
    inner = (
        (lambda h: model.model(h))
        if family == "mlp"
        else (lambda h: model.model(h, edge_index))
    )
    torch.manual_seed(3)
    out = model(x, edge_index)
    torch.manual_seed(3)
    expected = inner(F.dropout(x, 0.5, True))
    torch.testing.assert_close(out, expected)
    model.eval()
    torch.testing.assert_close(model(x, edge_index), inner(x))


@pytest.mark.parametrize("family", ["gcn", "graph_sage", "gat"])
def test_graph_models_need_edge_index(graph, family):
    x, _ = graph
    with pytest.raises(ValueError, match="edge_index"):
        BUILDERS[family](F_IN, C)(x)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"hidden_channels": 0}, "hidden_channels"),
        ({"num_layers": 0}, "num_layers"),
        ({"num_layers": 2.0}, "num_layers"),
        ({"dropout": 1.0}, "dropout"),
        ({"dropout": -0.1}, "dropout"),
        ({"input_dropout": 1.5}, "input_dropout"),
    ],
)
def test_invalid_arguments(family, kwargs, match):
    with pytest.raises(ValueError, match=match):
        BUILDERS[family](F_IN, C, **kwargs)


@pytest.mark.parametrize("family", FAMILIES)
def test_invalid_sizes(family):
    with pytest.raises(ValueError, match="in_channels"):
        BUILDERS[family](0, C)
    with pytest.raises(ValueError, match="out_channels"):
        BUILDERS[family](F_IN, True)


def test_invalid_gat_arguments():
    with pytest.raises(ValueError, match="multiple of 'heads'"):
        gat(F_IN, C, hidden_channels=30, heads=8)
    with pytest.raises(ValueError, match="heads"):
        gat(F_IN, C, heads=0)
    with pytest.raises(ValueError, match="output_heads"):
        gat(F_IN, C, output_heads=0)
    with pytest.raises(ValueError, match="attention_dropout"):
        gat(F_IN, C, attention_dropout=1.0)
    gat(F_IN, C, hidden_channels=30, heads=8, num_layers=1)  # no hidden layer


def test_unknown_family():
    with pytest.raises(ValueError, match="Unknown family"):
        BaselineModel(torch.nn.Linear(2, 2), "gin", {})


def test_keyword_only():
    with pytest.raises(TypeError):
        gcn(F_IN, 64, 2, C)  # PyG's positional order is not accepted
