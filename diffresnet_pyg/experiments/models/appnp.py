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

The propagation computes ``APPNP``'s formula itself with :math:`\hat{A}` as a
CSR matrix whose structure and transpose are built once per graph
(:func:`~diffresnet_pyg.nn.sparse.constant_spmm`); each step's masked
weights are written into it (``APPNP`` gathers and scatters the messages of
every edge), and the edge masks come from
:func:`~diffresnet_pyg.nn.dropout.keep_mask_bytes` (seeded from torch's
generator) instead of ``bernoulli_``. Sparse bag-of-words features get their
input dropout over the stored values and a sparse first product.
``benchmarks/deep_baselines.py`` times an epoch against PyG's layers as they
come (on Cora: 6 x faster at :math:`K = 64`, 8 x at :math:`K = 2`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Module
from torch_geometric.nn import APPNP
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.nn.models import MLP

from diffresnet_pyg.experiments.models.registry import register_model
from diffresnet_pyg.experiments.schema.fields import check_float, check_int
from diffresnet_pyg.nn.cache import GraphCache
from diffresnet_pyg.nn.dropout import keep_mask_bytes
from diffresnet_pyg.nn.sparse import (
    constant_spmm,
    is_sparse,
    quiet_sparse_warnings,
    sparse_dropout,
    sparse_matmul,
)

__all__ = ["APPNPNet"]


@dataclass(frozen=True)
class _Operator:
    r""":math:`\hat{A}` as a CSR structure with its transpose, for any values.

    ``weight`` holds :math:`\hat{A}`'s entries in the order of ``gcn_norm``'s
    edges (targets are rows); ``order`` puts edge values into CSR order and
    ``order_t`` CSR values into the transpose's CSR order. Duplicate edges
    stay separate entries (their products are summed).
    """

    weight: Tensor
    crow: Tensor
    col: Tensor
    order: Tensor
    crow_t: Tensor
    col_t: Tensor
    order_t: Tensor

    @classmethod
    def build(cls, row: Tensor, col: Tensor, weight: Tensor, n: int) -> _Operator:
        """The operator with entries ``weight`` at ``(row, col)``, ``n x n``."""
        order = torch.argsort(row * n + col, stable=True)
        row, col = row[order], col[order]
        order_t = torch.argsort(col, stable=True)

        def crow(index: Tensor) -> Tensor:
            counts = torch.bincount(index, minlength=n)
            return torch.cat([counts.new_zeros(1), counts.cumsum(0)])

        return cls(weight, crow(row), col, order, crow(col), row[order_t], order_t)

    def matrices(self, values: Tensor) -> tuple[Tensor, Tensor]:
        """:math:`A` and :math:`A^T` with ``values`` in edge order."""
        values = values[self.order]
        n = self.crow.numel() - 1
        with quiet_sparse_warnings():
            adj = torch.sparse_csr_tensor(
                self.crow, self.col, values, (n, n), check_invariants=False
            )
            adj_t = torch.sparse_csr_tensor(
                self.crow_t, self.col_t, values[self.order_t], (n, n),
                check_invariants=False,
            )  # fmt: skip
        return adj, adj_t


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
        - **input:** node features :math:`(N, F_{in})` (dense or sparse
          COO/CSR; the input dropout of sparse ones is drawn over the stored
          values), edge indices
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
        self.propagate = APPNP(K, alpha)  # K and alpha; applied in forward
        self._graph_cache = GraphCache()

    def reset_parameters(self) -> None:
        """Reinitialize the MLP."""
        self.mlp.reset_parameters()

    def _operator(
        self, edge_index: Tensor, edge_weight: Tensor | None, n: int, like: Tensor
    ) -> _Operator:
        r""":math:`\hat{A}` of the graph (``like``'s dtype), cached per graph."""

        def build() -> _Operator:
            ei, weight = gcn_norm(edge_index, edge_weight, n, dtype=like.dtype)
            return _Operator.build(ei[1], ei[0], weight, n)

        graph = (edge_index,) if edge_weight is None else (edge_index, edge_weight)
        return self._graph_cache.get(graph, (n, like.dtype, like.device), build)

    def _mlp(self, x: Tensor) -> Tensor:
        """PyG's ``MLP`` (ReLU, no norm, plain last layer) on dense or sparse x."""
        last = len(self.mlp.lins) - 1
        for i, lin in enumerate(self.mlp.lins):
            x = sparse_matmul(x, lin.weight.t(), lin.bias) if is_sparse(x) else lin(x)
            if i < last:
                x = F.dropout(F.relu(x), self.mlp.dropout[i], self.training)
        return x

    def forward(
        self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None = None
    ) -> Tensor:
        """The :math:`(N, F_{out})` logits (``edge_weight``: the graph's)."""
        x = sparse_dropout(x, self.input_dropout, self.training)
        h = self._mlp(x)
        operator = self._operator(edge_index, edge_weight, h.size(0), h)
        alpha, z, p = self.propagate.alpha, h, self.edge_dropout
        masked = self.training and p > 0.0
        if not masked:
            fixed = operator.matrices(operator.weight)
        for _ in range(self.propagate.K):  # a fresh mask of the weights per step
            if masked:
                keep = keep_mask_bytes(operator.weight.shape, p, h.device)
                scale = keep.to(h.dtype).mul_(1.0 / (1.0 - p))
                step = operator.matrices(operator.weight * scale)
            z = constant_spmm(step if masked else fixed, z)
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
    sparse_input=True,
    edge_weights=True,
)(APPNPNet)
