r"""GCNII: deep GCN with initial residual and identity mapping (PyG's ``GCN2Conv``).

Chen, Wei, Huang, Ding and Li, "Simple and Deep Graph Convolutional
Networks", ICML 2020 (`arXiv:2007.02133 <https://arxiv.org/abs/2007.02133>`_).
Layer :math:`\ell = 1, \dots, L`:

.. math::
    H^{(\ell)} = \mathrm{ReLU}\Big( \big((1 - \alpha) \hat{A} H^{(\ell - 1)}
    + \alpha H^{(0)}\big) \big((1 - \beta_\ell) I + \beta_\ell W^{(\ell)}\big)
    \Big), \qquad \beta_\ell = \log(\theta / \ell + 1),

with :math:`\hat{A} = \tilde{D}^{-1/2} (A + I) \tilde{D}^{-1/2}` (computed
once per forward), :math:`H^{(0)} = \mathrm{ReLU}(X W_{in})` and the logits
:math:`H^{(L)} W_{out}`; dropout precedes every linear map and convolution.
The defaults are the paper's Cora setting (64 layers, 64 hidden,
:math:`\alpha = 0.1`, :math:`\theta = 0.5`, dropout 0.6). The paper decays
the convolutions' weights by 0.01 and the two linear layers' by 5e-4; a
config has one weight decay (``train.weight_decay``), so that split is not
reproduced. No batched form: runs train one at a time.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor
from torch.nn import Linear, Module, ModuleList
from torch_geometric.nn import GCN2Conv
from torch_geometric.nn.conv.gcn_conv import gcn_norm

from diffresnet_pyg.experiments.models.registry import register_model
from diffresnet_pyg.experiments.schema.fields import POSITIVE_FLOAT, check_float

__all__ = ["GCNIINet"]


class GCNIINet(Module):
    r"""GCNII: an input layer, ``num_layers`` GCNII layers, an output layer.

    The layers are PyG's :class:`~torch_geometric.nn.conv.GCN2Conv` on
    :math:`\hat{A}`, normalized once per forward.

    Args:
        in_channels (int): Input features.
        out_channels (int): Classes.
        hidden_channels (int, optional): Width. (default: :obj:`64`)
        num_layers (int, optional): Graph convolutions :math:`L`.
            (default: :obj:`64`)
        alpha (float, optional): Initial-residual weight :math:`\alpha`.
            (default: :obj:`0.1`)
        theta (float, optional): Identity-mapping strength :math:`\theta`.
            (default: :obj:`0.5`)
        dropout (float, optional): Dropout before every layer.
            (default: :obj:`0.6`)

    Shapes:
        - **input:** node features :math:`(N, F_{in})`, edge indices
          :math:`(2, E)`
        - **output:** :math:`(N, F_{out})`

    Example:
        >>> import torch
        >>> model = GCNIINet(16, 3, num_layers=4)
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
        num_layers: int = 64,
        alpha: float = 0.1,
        theta: float = 0.5,
        dropout: float = 0.6,
    ) -> None:
        super().__init__()
        self.dropout = dropout
        self.lin_in = Linear(in_channels, hidden_channels)
        self.lin_out = Linear(hidden_channels, out_channels)
        self.convs = ModuleList(
            GCN2Conv(hidden_channels, alpha, theta, layer + 1, normalize=False)
            for layer in range(num_layers)
        )

    def reset_parameters(self) -> None:
        """Reinitialize every layer."""
        self.lin_in.reset_parameters()
        self.lin_out.reset_parameters()
        for conv in self.convs:
            conv.reset_parameters()

    def forward(
        self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None = None
    ) -> Tensor:
        """The :math:`(N, F_{out})` logits (``edge_weight``: the graph's)."""
        edge_index, edge_weight = gcn_norm(
            edge_index, edge_weight, x.size(0), add_self_loops=True, dtype=x.dtype
        )
        x = F.dropout(x, self.dropout, self.training)
        x = x_0 = F.relu(self.lin_in(x))
        for conv in self.convs:
            x = F.dropout(x, self.dropout, self.training)
            x = F.relu(conv(x, x_0, edge_index, edge_weight))
        x = F.dropout(x, self.dropout, self.training)
        return self.lin_out(x)

    def extra_repr(self) -> str:
        """The dropout."""
        return f"dropout={self.dropout}"


def _first_layer(model: Module) -> list[Tensor]:
    if not isinstance(model, GCNIINet):
        raise TypeError(f"not a GCNIINet: {type(model).__name__}")
    return [model.lin_in.weight]


register_model(
    "gcnii",
    first_layer=_first_layer,
    checks={"alpha": check_float(gt=0.0, lt=1.0), "theta": POSITIVE_FLOAT},
    edge_weights=True,
)(GCNIINet)
