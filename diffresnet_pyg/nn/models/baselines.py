r"""Standard PyG baselines (GCN, GraphSAGE, GAT, MLP) with gnn-benchmark defaults.

Each builder returns a :class:`BaselineModel`: an optional input dropout on the
node features followed by PyG's own model
(:class:`torch_geometric.nn.models.GCN`, :class:`~torch_geometric.nn.models.GraphSAGE`,
:class:`~torch_geometric.nn.models.GAT`, :class:`~torch_geometric.nn.models.MLP`),
always called as ``model(x, edge_index) -> [N, out_channels]`` (the MLP ignores
the graph). The default hyperparameters are the tuned ones of gnn-benchmark
(Shchur et al., "Pitfalls of Graph Neural Network Evaluation").

All builders share the argument order ``(in_channels, out_channels, *,
hidden_channels, num_layers, dropout, input_dropout, ...)``: the two sizes are
positional (like :class:`torch.nn.Linear`), everything else is keyword-only, so
PyG's positional order ``GCN(in_channels, hidden_channels, num_layers,
out_channels)`` cannot be confused with it silently.

:func:`diffresnet_pyg.nn.batched.gnn.stack_baselines` turns several such models
(e.g. one per random seed) into one batched model with stacked weights.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor
from torch.nn import Module
from torch_geometric.nn.conv import GATConv
from torch_geometric.nn.models import GAT, GCN, MLP, GraphSAGE

from diffresnet_pyg.nn.sparse import is_sparse, sparse_dropout

#: The model families built here, by :attr:`BaselineModel.family`.
FAMILIES = ("gcn", "graph_sage", "gat", "mlp")


class BaselineModel(Module):
    r"""Input dropout followed by a PyG model, called as ``(x, edge_index)``.

    Built by :func:`gcn`, :func:`graph_sage`, :func:`gat` and :func:`mlp`;
    rarely constructed directly.

    Args:
        model (torch.nn.Module): The PyG model (``GCN``, ``GraphSAGE``, ``GAT``
            or ``MLP``).
        family (str): One of :data:`FAMILIES`.
        hparams (dict): The builder's arguments (stored as
            :attr:`hparams`; two models with equal ``family`` and ``hparams``
            differ only in their weights).

    Attributes:
        model (torch.nn.Module): The wrapped PyG model.
        family (str): The model family.
        hparams (dict): The hyperparameters, including ``in_channels``,
            ``out_channels`` and ``input_dropout``.
    """

    def __init__(self, model: Module, family: str, hparams: dict[str, Any]) -> None:
        super().__init__()
        if family not in FAMILIES:
            raise ValueError(f"Unknown family {family!r}; expected one of {FAMILIES}")
        self.model = model
        self.family = family
        self.hparams = dict(hparams)
        self.input_dropout = float(self.hparams.get("input_dropout", 0.0))

    def forward(
        self,
        x: Tensor,
        edge_index: Tensor | None = None,
        edge_weight: Tensor | None = None,
    ) -> Tensor:
        """Return the ``[N, out_channels]`` outputs for node features ``x``.

        Args:
            x (torch.Tensor): Node features ``[N, in_channels]``, dense or
                sparse (COO/CSR): the input dropout of a sparse ``x`` is drawn
                over its stored values
                (:func:`~diffresnet_pyg.nn.sparse.sparse_dropout`, as the
                stacked model's members draw it), then it is made dense.
            edge_index (torch.Tensor, optional): Graph ``[2, E]`` (source,
                target); required except for the MLP, which ignores it.
            edge_weight (torch.Tensor, optional): Weights ``[E]`` of the
                edges: taken by GCN (ignored by the MLP with the graph);
                GraphSAGE and GAT take none.
        """
        x = sparse_dropout(x, self.input_dropout, self.training)
        if is_sparse(x):
            x = x.to_dense()
        if self.family == "mlp":
            return self.model(x)
        if edge_index is None:
            raise ValueError(f"The {self.family} model needs an 'edge_index'")
        if edge_weight is None:
            return self.model(x, edge_index)
        if self.family != "gcn":
            raise ValueError(
                f"The {self.family} model takes no edge weights (GCN does)"
            )
        return self.model(x, edge_index, edge_weight=edge_weight)

    def extra_repr(self) -> str:
        """The family and the input dropout."""
        return f"family={self.family!r}, input_dropout={self.input_dropout}"


def _check_size(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"'{name}' must be a positive integer, got {value!r}")
    return value


def _check_prob(name: str, value: Any) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not 0.0 <= value < 1.0
    ):
        raise ValueError(f"'{name}' must be a probability in [0, 1), got {value!r}")
    return float(value)


def _common(
    in_channels: int,
    out_channels: int,
    hidden_channels: int,
    num_layers: int,
    dropout: float,
    input_dropout: float,
) -> dict[str, Any]:
    return {
        "in_channels": _check_size("in_channels", in_channels),
        "out_channels": _check_size("out_channels", out_channels),
        "hidden_channels": _check_size("hidden_channels", hidden_channels),
        "num_layers": _check_size("num_layers", num_layers),
        "dropout": _check_prob("dropout", dropout),
        "input_dropout": _check_prob("input_dropout", input_dropout),
    }


def gcn(
    in_channels: int,
    out_channels: int,
    *,
    hidden_channels: int = 64,
    num_layers: int = 2,
    dropout: float = 0.8,
    input_dropout: float = 0.0,
) -> BaselineModel:
    r"""A GCN (PyG's :class:`~torch_geometric.nn.models.GCN`, ReLU, no norm).

    Each layer is a :class:`~torch_geometric.nn.conv.GCNConv` (symmetric
    normalization with self-loops, bias); ReLU and dropout follow every layer
    but the last.

    Args:
        in_channels (int): Input feature size.
        out_channels (int): Output size (number of classes).
        hidden_channels (int, optional): Hidden width. (default: :obj:`64`)
        num_layers (int, optional): Number of graph convolutions.
            (default: :obj:`2`)
        dropout (float, optional): Dropout between layers. (default: :obj:`0.8`)
        input_dropout (float, optional): Dropout on the input features.
            (default: :obj:`0.0`)

    Returns:
        BaselineModel: ``model(x, edge_index) -> [N, out_channels]``.

    Example:
        >>> import torch
        >>> model = gcn(16, 3)
        >>> edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
        >>> model(torch.randn(4, 16), edge_index).shape
        torch.Size([4, 3])
    """
    hparams = _common(
        in_channels, out_channels, hidden_channels, num_layers, dropout, input_dropout
    )
    model = GCN(
        in_channels,
        hidden_channels,
        num_layers,
        out_channels,
        dropout=hparams["dropout"],
        norm=None,
    )
    return BaselineModel(model, "gcn", hparams)


def graph_sage(
    in_channels: int,
    out_channels: int,
    *,
    hidden_channels: int = 32,
    num_layers: int = 2,
    dropout: float = 0.4,
    input_dropout: float = 0.0,
) -> BaselineModel:
    r"""A GraphSAGE model with mean aggregation (PyG's ``GraphSAGE``).

    Each layer is a :class:`~torch_geometric.nn.conv.SAGEConv`:
    :math:`W_l \,\mathrm{mean}_{j \to i} x_j + b + W_r x_i`; ReLU and dropout
    follow every layer but the last.

    Args:
        in_channels (int): Input feature size.
        out_channels (int): Output size (number of classes).
        hidden_channels (int, optional): Hidden width. (default: :obj:`32`)
        num_layers (int, optional): Number of layers. (default: :obj:`2`)
        dropout (float, optional): Dropout between layers. (default: :obj:`0.4`)
        input_dropout (float, optional): Dropout on the input features.
            (default: :obj:`0.0`)

    Returns:
        BaselineModel: ``model(x, edge_index) -> [N, out_channels]``.

    Example:
        >>> import torch
        >>> model = graph_sage(16, 3)
        >>> edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
        >>> model(torch.randn(4, 16), edge_index).shape
        torch.Size([4, 3])
    """
    hparams = _common(
        in_channels, out_channels, hidden_channels, num_layers, dropout, input_dropout
    )
    model = GraphSAGE(
        in_channels,
        hidden_channels,
        num_layers,
        out_channels,
        dropout=hparams["dropout"],
        norm=None,
        aggr="mean",
    )
    return BaselineModel(model, "graph_sage", hparams)


def gat(
    in_channels: int,
    out_channels: int,
    *,
    hidden_channels: int = 64,
    num_layers: int = 2,
    heads: int = 8,
    output_heads: int = 1,
    dropout: float = 0.6,
    input_dropout: float = 0.6,
    attention_dropout: float = 0.3,
) -> BaselineModel:
    r"""A graph attention network (PyG's ``GAT`` with ``GATConv`` layers).

    Hidden layers have ``heads`` heads of ``hidden_channels // heads`` channels
    each, concatenated (``hidden_channels`` is the total width, 8 x 8 by
    default). The output layer averages its ``output_heads`` heads (no
    concatenation, as in PyG's ``GAT``); it has one head by default, as in
    gnn-benchmark (``output_heads=heads`` gives PyG's own default). ReLU
    (PyG's default activation) and dropout follow every layer but the last;
    ``attention_dropout`` drops normalized attention coefficients inside every
    ``GATConv``.

    Args:
        in_channels (int): Input feature size.
        out_channels (int): Output size (number of classes).
        hidden_channels (int, optional): Total hidden width, a multiple of
            ``heads``. (default: :obj:`64`)
        num_layers (int, optional): Number of attention layers.
            (default: :obj:`2`)
        heads (int, optional): Heads of the hidden layers. (default: :obj:`8`)
        output_heads (int, optional): Heads of the output layer, averaged.
            (default: :obj:`1`)
        dropout (float, optional): Dropout between layers. (default: :obj:`0.6`)
        input_dropout (float, optional): Dropout on the input features.
            (default: :obj:`0.6`)
        attention_dropout (float, optional): Dropout on attention coefficients.
            (default: :obj:`0.3`)

    Returns:
        BaselineModel: ``model(x, edge_index) -> [N, out_channels]``.

    Example:
        >>> import torch
        >>> model = gat(16, 3)
        >>> edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
        >>> model(torch.randn(4, 16), edge_index).shape
        torch.Size([4, 3])
    """
    hparams = _common(
        in_channels, out_channels, hidden_channels, num_layers, dropout, input_dropout
    )
    hparams["heads"] = _check_size("heads", heads)
    hparams["output_heads"] = _check_size("output_heads", output_heads)
    hparams["attention_dropout"] = _check_prob("attention_dropout", attention_dropout)
    if num_layers > 1 and hidden_channels % heads != 0:
        raise ValueError(
            f"'hidden_channels' ({hidden_channels}) must be a multiple of "
            f"'heads' ({heads})"
        )
    model = GAT(
        in_channels,
        hidden_channels,
        num_layers,
        out_channels,
        dropout=hparams["dropout"],
        norm=None,
        heads=heads,
    )
    if output_heads != heads:
        last_in = hidden_channels if num_layers > 1 else in_channels
        model.convs[-1] = GATConv(last_in, out_channels, output_heads, concat=False)
    for conv in model.convs:
        conv.dropout = hparams["attention_dropout"]
    return BaselineModel(model, "gat", hparams)


def mlp(
    in_channels: int,
    out_channels: int,
    *,
    hidden_channels: int = 64,
    num_layers: int = 2,
    dropout: float = 0.8,
    input_dropout: float = 0.0,
) -> BaselineModel:
    r"""A multi-layer perceptron on the node features (PyG's ``MLP``, no norm).

    ReLU and dropout follow every linear layer but the last. The graph is
    ignored.

    Args:
        in_channels (int): Input feature size.
        out_channels (int): Output size (number of classes).
        hidden_channels (int, optional): Hidden width. (default: :obj:`64`)
        num_layers (int, optional): Number of linear layers. (default: :obj:`2`)
        dropout (float, optional): Dropout between layers. (default: :obj:`0.8`)
        input_dropout (float, optional): Dropout on the input features.
            (default: :obj:`0.0`)

    Returns:
        BaselineModel: ``model(x, edge_index=None) -> [N, out_channels]``.

    Example:
        >>> import torch
        >>> model = mlp(16, 3)
        >>> model(torch.randn(4, 16)).shape
        torch.Size([4, 3])
    """
    hparams = _common(
        in_channels, out_channels, hidden_channels, num_layers, dropout, input_dropout
    )
    model = MLP(
        in_channels=in_channels,
        hidden_channels=hidden_channels,
        out_channels=out_channels,
        num_layers=num_layers,
        dropout=hparams["dropout"],
        norm=None,
    )
    return BaselineModel(model, "mlp", hparams)


#: The builder of each family.
BUILDERS = {"gcn": gcn, "graph_sage": graph_sage, "gat": gat, "mlp": mlp}

__all__ = ["BUILDERS", "FAMILIES", "BaselineModel", "gat", "gcn", "graph_sage", "mlp"]
