r"""APPNP: an MLP, then personalized-PageRank propagation (PyG's ``APPNP``).

Klicpera, Bojchevski and Günnemann, "Predict then Propagate: Graph Neural
Networks meet Personalized PageRank", ICLR 2019
(`arXiv:1810.05997 <https://arxiv.org/abs/1810.05997>`_):

.. math::
    H = \mathrm{MLP}(X), \qquad Z^{(0)} = H, \qquad
    Z^{(k+1)} = (1 - \alpha)\, \hat{A} Z^{(k)} + \alpha H, \qquad
    \hat{A} = \tilde{D}^{-1/2} (A + I) \tilde{D}^{-1/2},

and the logits are :math:`Z^{(K)}`. The defaults are the paper's setting
(2 layers, 64 hidden, dropout 0.5 on the inputs of both layers and on the
edges at every propagation step, :math:`K = 10`, :math:`\alpha = 0.1`); the
paper also decays the first layer's weights only (5e-3), which a config sets
with ``train.weight_decay_on: first_layer``. No batched form: runs train one
at a time.

Edge dropout is drawn afresh from the normalized weights at every step, as
in the paper. PyG's ``APPNP(dropout=p)`` (2.8) instead drops the previous
step's already-dropped weights, so after :math:`k` steps an edge survives with
probability :math:`(1-p)^k` at weight :math:`(1-p)^{-k}` (pyg-team/pytorch_geometric
issue 10783); with the paper's :math:`p = 0.5` and :math:`K = 10` that model
does not learn (Cora validation loss stays at :math:`\ln 7`). So PyG's layer
propagates here without its own dropout, and the loop below draws the masks.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor
from torch.nn import Module
from torch_geometric.nn import APPNP
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.nn.models import MLP

from diffresnet_pyg.experiments.models.registry import register_model
from diffresnet_pyg.experiments.schema.fields import check_float, check_int

__all__ = ["APPNPNet"]


class APPNPNet(Module):
    r"""Input dropout, an MLP, then APPNP propagation.

    PyG's :class:`~torch_geometric.nn.models.MLP` (ReLU, no norm) and
    :class:`~torch_geometric.nn.conv.APPNP`.

    Args:
        in_channels (int): Input features.
        out_channels (int): Classes.
        hidden_channels (int, optional): MLP width. (default: :obj:`64`)
        num_layers (int, optional): MLP layers. (default: :obj:`2`)
        K (int, optional): Propagation steps. (default: :obj:`10`)
        alpha (float, optional): Teleport probability :math:`\alpha`.
            (default: :obj:`0.1`)
        dropout (float, optional): Dropout between the MLP's layers.
            (default: :obj:`0.5`)
        input_dropout (float, optional): Dropout on the input features.
            (default: :obj:`0.5`)
        edge_dropout (float, optional): Dropout of the edges at every
            propagation step. (default: :obj:`0.5`)

    Shapes:
        - **input:** node features :math:`(N, F_{in})`, edge indices
          :math:`(2, E)`
        - **output:** :math:`(N, F_{out})`

    Example:
        >>> import torch
        >>> model = APPNPNet(16, 3)
        >>> edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
        >>> model(torch.randn(3, 16), edge_index).shape
        torch.Size([3, 3])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        hidden_channels: int = 64,
        num_layers: int = 2,
        K: int = 10,
        alpha: float = 0.1,
        dropout: float = 0.5,
        input_dropout: float = 0.5,
        edge_dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.input_dropout = input_dropout
        self.mlp = MLP(
            in_channels=in_channels,
            hidden_channels=hidden_channels,
            out_channels=out_channels,
            num_layers=num_layers,
            dropout=dropout,
            norm=None,
        )
        self.edge_dropout = edge_dropout
        self.propagate = APPNP(K, alpha)  # edge dropout drawn in forward

    def reset_parameters(self) -> None:
        """Reinitialize the MLP."""
        self.mlp.reset_parameters()

    def forward(
        self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None = None
    ) -> Tensor:
        """The :math:`(N, F_{out})` logits (``edge_weight``: the graph's)."""
        x = F.dropout(x, self.input_dropout, self.training)
        h = self.mlp(x)
        if not self.training or self.edge_dropout == 0.0:
            return self.propagate(h, edge_index, edge_weight)
        edge_index, weight = gcn_norm(edge_index, edge_weight, h.size(0), dtype=h.dtype)
        alpha, z = self.propagate.alpha, h
        for _ in range(self.propagate.K):  # a fresh mask of the weights per step
            step = F.dropout(weight, self.edge_dropout, training=True)
            z = self.propagate.propagate(edge_index, x=z, edge_weight=step)
            z = (1.0 - alpha) * z + alpha * h
        return z

    def extra_repr(self) -> str:
        """The input and edge dropout."""
        return f"input_dropout={self.input_dropout}, edge_dropout={self.edge_dropout}"


def _first_layer(model: Module) -> list[Tensor]:
    if not isinstance(model, APPNPNet):
        raise TypeError(f"not an APPNPNet: {type(model).__name__}")
    return [model.mlp.lins[0].weight]


register_model(
    "appnp",
    first_layer=_first_layer,
    checks={"K": check_int(minimum=1), "alpha": check_float(gt=0.0, lt=1.0)},
    edge_weights=True,
)(APPNPNet)
