r"""Many baseline models (GCN, GraphSAGE, GAT, MLP) trained as one model.

:func:`stack_baselines` turns ``B`` models built by
:mod:`diffresnet_pyg.nn.models.baselines` (same family and hyperparameters,
different weights, e.g. one per random seed) into one batched model whose
parameters are stacked along a leading member dimension. Member :math:`b` of
the batched model computes what its own model computes; all members run at
once:

* activations are ``[N, B, C]`` tensors; the output is ``[N, B, out_channels]``;
* the first layer, whose input ``x`` is shared, is one product of ``x``
  (dense or sparse) with the members' weights side by side (``[F, B * C]``);
  later layers are batched products;
* graph propagation is shared by all members: GCN and GraphSAGE propagate the
  ``[N, B * C]`` columns with one sparse product (PyG's ``gcn_norm`` operator,
  resp. the row-normalized adjacency of mean aggregation); GAT computes every
  member's and head's attention on the edges (``[E, B, heads]``) and
  aggregates the ``[E, B, heads, C]`` messages in one scatter;
* graph operators are cached for repeated calls with the same ``edge_index``
  tensor (same object, unmodified, same number of nodes, dtype and device).

Dropout is applied where the unbatched PyG model applies it. With
``streams`` (one :class:`~diffresnet_pyg.nn.streams.MemberStream` per member,
set by :func:`~diffresnet_pyg.experiments.models.build_members`), member
:math:`b`'s mask of the ``[N, B, C]`` (or ``[E, B, heads]``) tensor is drawn
from its own generator as the unbatched model draws its ``[N, C]`` mask
(:func:`~diffresnet_pyg.nn.streams.member_dropout`), so it equals its plain
model's mask whatever the other members; without streams it is one draw over
all members from the global generator (with one member and dense ``x``, the
unbatched model's draw). Input dropout on a dense ``x`` is drawn over ``x`` expanded to
``[N, B, F]`` (``N * B * F`` random numbers and a dense batched product); on a
sparse ``x`` it is drawn per member over the stored values only (``B * nnz``
random numbers and one sparse product, much faster for bag-of-words
features), as :class:`~diffresnet_pyg.nn.models.baselines.BaselineModel`
draws it on a sparse ``x`` (:func:`~diffresnet_pyg.nn.sparse.sparse_dropout`).
So every mask of a member equals its plain model's on the same input.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any, ClassVar, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Module, Parameter, ParameterList
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.utils import add_self_loops, remove_self_loops, scatter

from diffresnet_pyg.nn.batched.diff_resnet import (
    input_linear,
    per_member,
    stacked_linear,
)
from diffresnet_pyg.nn.cache import GraphCache
from diffresnet_pyg.nn.models.baselines import BUILDERS, BaselineModel
from diffresnet_pyg.nn.sparse import constant_spmm, csr_with_transpose, is_sparse
from diffresnet_pyg.nn.streams import MemberStream, member_dropout, member_generators

__all__ = [
    "BatchedBaseline",
    "BatchedGAT",
    "BatchedGCN",
    "BatchedGraphSAGE",
    "BatchedMLP",
    "stack_baselines",
]


# --------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------


def _propagate(operator: tuple[Tensor, Tensor], h: Tensor) -> Tensor:
    """Apply the shared ``[N, N]`` operator to ``[N, B, C]`` activations."""
    n, b, c = h.shape
    return constant_spmm(operator, h.reshape(n, b * c)).view(n, b, c)


def _check_edge_index(edge_index: Any, family: str) -> Tensor:
    if edge_index is None:
        raise ValueError(f"The batched {family} model needs an 'edge_index'")
    if (
        not isinstance(edge_index, Tensor)
        or edge_index.dim() != 2
        or edge_index.size(0) != 2
        or edge_index.is_floating_point()
        or is_sparse(edge_index)
    ):
        raise ValueError(
            "'edge_index' must be an integer tensor of shape [2, num_edges], got "
            f"{type(edge_index).__name__}"
            + (f" {tuple(edge_index.shape)}" if isinstance(edge_index, Tensor) else "")
        )
    return edge_index


def _check_range(edge_index: Tensor, num_nodes: int) -> None:
    if edge_index.numel() and (
        int(edge_index.min()) < 0 or int(edge_index.max()) >= num_nodes
    ):
        raise ValueError(
            f"'edge_index' refers to nodes outside [0, {num_nodes}) "
            f"(min {int(edge_index.min())}, max {int(edge_index.max())})"
        )


# --------------------------------------------------------------------------
# Base class
# --------------------------------------------------------------------------

#: How a member's parameter maps to its slice of the stacked parameter.
_SAME, _TRANSPOSE, _SQUEEZE = "same", "transpose", "squeeze"


def _to_stacked(tensor: Tensor, kind: str) -> Tensor:
    tensor = tensor.detach()
    if kind == _TRANSPOSE:
        return tensor.t()
    if kind == _SQUEEZE:
        return tensor.squeeze(0)
    return tensor


def _from_stacked(tensor: Tensor, kind: str) -> Tensor:
    if kind == _TRANSPOSE:
        return tensor.t()
    if kind == _SQUEEZE:
        return tensor.unsqueeze(0)
    return tensor


class BatchedBaseline(Module):
    r"""Base class of the batched baselines (``B`` members, stacked weights).

    Every parameter has leading size ``B``: linear weights are stored as
    ``[B, F_in, F_out]`` (transposed with respect to PyG's ``[F_out, F_in]``),
    biases as ``[B, F_out]``, GAT attention vectors as ``[B, heads, C]``.
    There is no other per-member state, so replacing every parameter ``p`` by
    ``Parameter(p[index])`` gives a valid batched model of the members
    ``index``.

    Construct with :meth:`from_modules` (copies the members' weights) or
    directly with the builder's arguments:
    ``BatchedGCN(num_members, in_channels, out_channels, **kwargs)`` initializes
    the members one after another exactly as ``num_members`` calls of the
    builder would.

    Args:
        num_members (int): Number of members ``B``.
        in_channels (int): Input feature size.
        out_channels (int): Output size.
        **kwargs: The other keyword arguments of the family's builder
            (:func:`~diffresnet_pyg.nn.models.baselines.gcn`, ...).
    """

    #: The family name (a key of ``BUILDERS``); set by subclasses.
    family: ClassVar[str] = ""
    #: Names of the ``ParameterList`` attributes, one entry per layer.
    _param_names: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self, num_members: int, in_channels: int, out_channels: int, **kwargs: Any
    ) -> None:
        super().__init__()
        if not self.family:
            raise TypeError(
                "BatchedBaseline is abstract; use BatchedGCN, BatchedGraphSAGE, "
                "BatchedGAT, BatchedMLP or stack_baselines"
            )
        if isinstance(num_members, bool) or not isinstance(num_members, int):
            raise ValueError(f"'num_members' must be an integer, got {num_members!r}")
        if num_members < 1:
            raise ValueError(f"'num_members' must be at least 1, got {num_members}")
        builder = BUILDERS[self.family]
        members = [
            builder(in_channels, out_channels, **kwargs) for _ in range(num_members)
        ]
        self._setup(members)

    @classmethod
    def from_modules(cls, modules: Sequence[BaselineModel]) -> BatchedBaseline:
        """Stack the parameters of ``modules`` (copies) into one batched model.

        Args:
            modules (Sequence[BaselineModel]): The members, built by this
                family's builder with equal hyperparameters.

        Called on :class:`BatchedBaseline` itself, dispatches on the family
        like :func:`stack_baselines`.

        Raises:
            TypeError: If a module is not a baseline model of this family.
            ValueError: If ``modules`` is empty or hyperparameters differ.
        """
        if not cls.family:
            return stack_baselines(modules)
        modules = list(modules)
        _check_members(modules, cls.family)
        obj = cls.__new__(cls)
        Module.__init__(obj)
        obj._setup(modules)
        return obj.train(modules[0].training)

    def _setup(self, members: list[BaselineModel]) -> None:
        hparams = dict(members[0].hparams)
        self.hparams = hparams
        self.in_channels: int = hparams["in_channels"]
        self.out_channels: int = hparams["out_channels"]
        self.hidden_channels: int = hparams["hidden_channels"]
        self.num_layers: int = hparams["num_layers"]
        self.dropout: float = hparams["dropout"]
        self.input_dropout: float = hparams["input_dropout"]
        self._graph_cache = GraphCache()
        self._input_cache = GraphCache()
        #: Each member's random stream (:class:`~diffresnet_pyg.nn.streams.
        #: MemberStream`), or :obj:`None`: all members draw from the global
        #: generators.
        self.streams: list[MemberStream] | None = None
        layouts = [self._layout(m) for m in members]
        ref = {p.dtype for m in members for p in m.parameters()}
        devices = {p.device for m in members for p in m.parameters()}
        if len(ref) > 1 or len(devices) > 1:
            raise ValueError(
                "All members must have the same dtype and device, got "
                f"{sorted(map(str, ref))} on {sorted(map(str, devices))}"
            )
        for name in self._param_names:
            stacked = []
            for layer in range(len(layouts[0][name])):
                kind = layouts[0][name][layer][1]
                slices = [_to_stacked(lay[name][layer][0], kind) for lay in layouts]
                if any(s.shape != slices[0].shape for s in slices):
                    raise ValueError(
                        f"Members have different shapes for {name}[{layer}]"
                    )
                stacked.append(Parameter(torch.stack(slices).contiguous()))
            setattr(self, name, ParameterList(stacked))

    def _layout(self, member: BaselineModel) -> dict[str, list[tuple[Tensor, str]]]:
        """``{name: [(member parameter, kind) per layer]}``."""
        raise NotImplementedError

    @property
    def num_members(self) -> int:
        """Number of members ``B`` (the leading size of every parameter)."""
        return next(iter(self.parameters())).size(0)

    def reset_parameters(self) -> None:
        """Reinitialize the members one after another, as the builder would."""
        builder = BUILDERS[self.family]
        kwargs = dict(self.hparams)
        in_channels = kwargs.pop("in_channels")
        out_channels = kwargs.pop("out_channels")
        param = next(iter(self.parameters()))
        members = [
            builder(in_channels, out_channels, **kwargs).to(param.device, param.dtype)
            for _ in range(self.num_members)
        ]
        layouts = [self._layout(m) for m in members]
        with torch.no_grad():
            for name in self._param_names:
                for layer, stacked in enumerate(getattr(self, name)):
                    for b, lay in enumerate(layouts):
                        tensor, kind = lay[name][layer]
                        stacked[b].copy_(_to_stacked(tensor, kind))

    def unstack(self, index: int) -> BaselineModel:
        """Member ``index`` as an unbatched baseline model (a copy).

        The global random generator is left untouched.
        """
        num_members = self.num_members
        if isinstance(index, bool):
            raise TypeError(f"'index' must be an integer, got {index!r}")
        index = operator.index(index)
        if not -num_members <= index < num_members:
            raise IndexError(f"member {index} out of range for {num_members} members")
        kwargs = dict(self.hparams)
        in_channels = kwargs.pop("in_channels")
        out_channels = kwargs.pop("out_channels")
        with torch.random.fork_rng(devices=[]):
            model = BUILDERS[self.family](in_channels, out_channels, **kwargs)
        param = next(iter(self.parameters()))
        model = model.to(param.device, param.dtype)
        layout = self._layout(model)
        with torch.no_grad():
            for name in self._param_names:
                for layer, stacked in enumerate(getattr(self, name)):
                    tensor, kind = layout[name][layer]
                    tensor.copy_(_from_stacked(stacked[index], kind))
        return model.train(self.training)

    def clear_cache(self) -> None:
        """Forget the cached graph operator and input structure."""
        self._graph_cache.clear()
        self._input_cache.clear()

    def _check_x(self, x: Any) -> Tensor:
        if not isinstance(x, Tensor) or x.dim() != 2 or x.size(1) != self.in_channels:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(
                f"'x' must be a tensor of shape [num_nodes, {self.in_channels}], "
                f"got {shape}"
            )
        return x

    def _dropout(self, h: Tensor, p: float) -> Tensor:
        """Dropout of ``[N, B, ...]`` activations (per member with streams)."""
        generators = member_generators(self.streams, h.device)
        return member_dropout(h, p, self.training, generators)

    def _first_linear(self, x: Tensor, weight: Tensor) -> Tensor:
        """``x @ W_b`` for every member (after input dropout): ``[N, B, K]``."""
        return input_linear(
            x,
            weight,
            None,
            self.input_dropout,
            self.training,
            self._input_cache,
            member_generators(self.streams, x.device),
        )

    def _linear(self, layer: int, x: Tensor, h: Tensor, weight: Tensor) -> Tensor:
        """Layer ``layer``'s product: of the shared ``x`` first, then of ``h``."""
        if layer == 0:
            return self._first_linear(x, weight)
        return stacked_linear(h, weight, None)

    def extra_repr(self) -> str:
        """The number of members and the hyperparameters."""
        return (
            f"num_members={self.num_members}, in_channels={self.in_channels}, "
            f"out_channels={self.out_channels}, "
            + ", ".join(
                f"{k}={v}"
                for k, v in self.hparams.items()
                if k not in ("in_channels", "out_channels")
            )
        )

    def forward(self, x: Tensor, edge_index: Tensor | None = None) -> Tensor:
        """Return the ``[N, B, out_channels]`` outputs of all members.

        Args:
            x (torch.Tensor): Shared node features ``[N, in_channels]``, dense
                or sparse (COO/CSR; no gradient flows to a sparse ``x``).
            edge_index (torch.Tensor): Graph ``[2, E]`` (source, target);
                ignored by the MLP.
        """
        raise NotImplementedError


def _check_members(modules: list[Any], family: str | None) -> None:
    if not modules:
        raise ValueError("Need at least one module to stack")
    for i, m in enumerate(modules):
        if not isinstance(m, BaselineModel):
            raise TypeError(
                f"Module {i} is a {type(m).__name__}, not a baseline model built by "
                "diffresnet_pyg.nn.models.baselines (gcn, graph_sage, gat, mlp)"
            )
    families = [m.family for m in modules]
    if len(set(families)) > 1:
        raise TypeError(f"Cannot stack models of different families: {families}")
    if family is not None and families[0] != family:
        raise TypeError(
            f"Expected {family} models, got {families[0]} models; use "
            "stack_baselines to dispatch on the family"
        )
    first = modules[0].hparams
    for i, m in enumerate(modules[1:], start=1):
        if m.hparams != first:
            diff = {
                k: (first.get(k), m.hparams.get(k))
                for k in sorted(set(first) | set(m.hparams))
                if first.get(k) != m.hparams.get(k)
            }
            raise ValueError(
                f"Module {i} has different hyperparameters than module 0 "
                f"(module 0 vs module {i}): {diff}"
            )


# --------------------------------------------------------------------------
# Families
# --------------------------------------------------------------------------


class BatchedGCN(BatchedBaseline):
    r"""``B`` :func:`~diffresnet_pyg.nn.models.baselines.gcn` members at once.

    Layer :math:`l` of member :math:`b`:
    :math:`H \leftarrow \hat{A} (H W^{(l)}_b) + b^{(l)}_b` with PyG's
    ``gcn_norm`` operator :math:`\hat{A} = D^{-1/2}(A + I)D^{-1/2}`, computed
    once per graph and applied to all members' columns in one sparse product;
    ReLU and dropout after every layer but the last. Parameters: ``weights``
    (``[B, F_in, F_out]`` per layer) and ``biases`` (``[B, F_out]``). See
    :class:`BatchedBaseline` for construction and the member contract.

    Example:
        >>> import torch
        >>> from diffresnet_pyg.nn.models.baselines import gcn
        >>> model = BatchedGCN.from_modules([gcn(16, 3) for _ in range(5)])
        >>> edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
        >>> model(torch.randn(4, 16), edge_index).shape
        torch.Size([4, 5, 3])
    """

    family = "gcn"
    _param_names = ("weights", "biases")

    def _layout(self, member: BaselineModel) -> dict[str, list[tuple[Tensor, str]]]:
        convs = member.model.convs
        return {
            "weights": [(conv.lin.weight, _TRANSPOSE) for conv in convs],
            "biases": [(conv.bias, _SAME) for conv in convs],
        }

    def _operator(
        self,
        edge_index: Tensor,
        num_nodes: int,
        like: Tensor,
        edge_weight: Tensor | None = None,
    ):
        def build() -> tuple[Tensor, Tensor]:
            _check_range(edge_index, num_nodes)
            ei, weight = gcn_norm(
                edge_index, edge_weight, num_nodes, improved=False,
                add_self_loops=True, flow="source_to_target", dtype=like.dtype,
            )  # fmt: skip
            return csr_with_transpose(ei[1], ei[0], weight, num_nodes)

        extra = (num_nodes, like.dtype, like.device)
        graph = (edge_index,) if edge_weight is None else (edge_index, edge_weight)
        return self._graph_cache.get(graph, extra, build)

    def forward(
        self,
        x: Tensor,
        edge_index: Tensor | None = None,
        edge_weight: Tensor | None = None,
    ) -> Tensor:
        """Return the ``[N, B, out_channels]`` outputs (see the base class).

        ``edge_weight`` (``[E]``, optional) weighs the edges as PyG's
        ``GCNConv`` does (in ``gcn_norm``).
        """
        x = self._check_x(x)
        edge_index = _check_edge_index(edge_index, self.family)
        operator = self._operator(edge_index, x.size(0), self.weights[0], edge_weight)
        last = self.num_layers - 1
        h = x
        for i, (weight, bias) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = self._linear(i, x, h, weight)
            h = _propagate(operator, h) + per_member(bias, x.size(0))
            if i < last:
                h = self._dropout(F.relu(h), self.dropout)
        return h


class BatchedGraphSAGE(BatchedBaseline):
    r"""``B`` :func:`~diffresnet_pyg.nn.models.baselines.graph_sage` members.

    Layer :math:`l` of member :math:`b`:
    :math:`H \leftarrow \bar{A} (H W^{(l)}_{l,b}) + b^{(l)}_b + H W^{(l)}_{r,b}`
    with the row-normalized adjacency :math:`\bar{A}` of mean aggregation (a
    node without in-edges aggregates zeros), applied to all members' columns in
    one sparse product; both weights are applied in one product. ReLU and
    dropout after every layer but the last. Parameters: ``weights_l``,
    ``weights_r`` (``[B, F_in, F_out]``) and ``biases`` (``[B, F_out]``). See
    :class:`BatchedBaseline` for construction and the member contract.

    Example:
        >>> import torch
        >>> from diffresnet_pyg.nn.models.baselines import graph_sage
        >>> model = BatchedGraphSAGE.from_modules([graph_sage(16, 3) for _ in range(5)])
        >>> edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
        >>> model(torch.randn(4, 16), edge_index).shape
        torch.Size([4, 5, 3])
    """

    family = "graph_sage"
    _param_names = ("weights_l", "weights_r", "biases")

    def _layout(self, member: BaselineModel) -> dict[str, list[tuple[Tensor, str]]]:
        convs = member.model.convs
        return {
            "weights_l": [(conv.lin_l.weight, _TRANSPOSE) for conv in convs],
            "weights_r": [(conv.lin_r.weight, _TRANSPOSE) for conv in convs],
            "biases": [(conv.lin_l.bias, _SAME) for conv in convs],
        }

    def _operator(self, edge_index: Tensor, num_nodes: int, like: Tensor):
        def build() -> tuple[Tensor, Tensor]:
            _check_range(edge_index, num_nodes)
            source, target = edge_index.long()
            ones = torch.ones(target.numel(), dtype=like.dtype, device=like.device)
            deg = scatter(ones, target, 0, num_nodes, reduce="sum")
            return csr_with_transpose(target, source, ones / deg[target], num_nodes)

        extra = (num_nodes, like.dtype, like.device)
        return self._graph_cache.get((edge_index,), extra, build)

    def forward(self, x: Tensor, edge_index: Tensor | None = None) -> Tensor:
        """Return the ``[N, B, out_channels]`` outputs (see the base class)."""
        x = self._check_x(x)
        edge_index = _check_edge_index(edge_index, self.family)
        operator = self._operator(edge_index, x.size(0), self.weights_l[0])
        last = self.num_layers - 1
        h = x
        for i in range(self.num_layers):
            weight_l, weight_r = self.weights_l[i], self.weights_r[i]
            k = weight_l.size(-1)
            weight = torch.cat([weight_l, weight_r], dim=-1)
            y = self._linear(i, x, h, weight)
            bias = per_member(self.biases[i], y.size(0))
            h = _propagate(operator, y[..., :k]) + bias + y[..., k:]
            if i < last:
                h = self._dropout(F.relu(h), self.dropout)
        return h


class _GATEdges(NamedTuple):
    """GAT's edges (self-loops replaced by one per node) and their order.

    ``by_target`` sorts the edges by target (stably), ``offsets`` (``[N + 1]``)
    bounds each node's in-edges in that order.
    """

    source: Tensor
    target: Tensor
    by_target: Tensor
    offsets: Tensor


class BatchedGAT(BatchedBaseline):
    r"""``B`` :func:`~diffresnet_pyg.nn.models.baselines.gat` members at once.

    Each layer follows PyG's ``GATConv`` (self-loops replaced by one per node,
    no edge features, no residual): per member :math:`b` and head :math:`h`,
    :math:`z = H W_b`, logits
    :math:`e_{ji} = \mathrm{LeakyReLU}_{0.2}(a_{src} \cdot z_j + a_{dst}
    \cdot z_i)` on every edge :math:`j \to i`, softmax over the in-edges of
    :math:`i`, attention dropout, :math:`\sum_j \alpha_{ji} z_j`; heads are
    concatenated in hidden layers and averaged in the output layer, then the
    bias is added. The logits are ``[E, B, heads]`` and the messages
    ``[E, B, heads, C]`` tensors (``E`` including self-loops), aggregated with
    one scatter. Parameters: ``weights`` (``[B, F_in, heads * C]``),
    ``att_src`` and ``att_dst`` (``[B, heads, C]``) and ``biases``. See
    :class:`BatchedBaseline` for construction and the member contract.

    Example:
        >>> import torch
        >>> from diffresnet_pyg.nn.models.baselines import gat
        >>> model = BatchedGAT.from_modules([gat(16, 3) for _ in range(5)])
        >>> edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
        >>> model(torch.randn(4, 16), edge_index).shape
        torch.Size([4, 5, 3])
    """

    family = "gat"
    _param_names = ("weights", "att_src", "att_dst", "biases")

    def _setup(self, members: list[BaselineModel]) -> None:
        super()._setup(members)
        self.heads: int = self.hparams["heads"]
        self.output_heads: int = self.hparams["output_heads"]
        self.attention_dropout: float = self.hparams["attention_dropout"]

    def _layout(self, member: BaselineModel) -> dict[str, list[tuple[Tensor, str]]]:
        convs = member.model.convs
        return {
            "weights": [(conv.lin.weight, _TRANSPOSE) for conv in convs],
            "att_src": [(conv.att_src, _SQUEEZE) for conv in convs],
            "att_dst": [(conv.att_dst, _SQUEEZE) for conv in convs],
            "biases": [(conv.bias, _SAME) for conv in convs],
        }

    def _edges(self, edge_index: Tensor, num_nodes: int) -> _GATEdges:
        def build() -> _GATEdges:
            _check_range(edge_index, num_nodes)
            ei, _ = remove_self_loops(edge_index)
            ei, _ = add_self_loops(ei, num_nodes=num_nodes)
            target = ei[1]
            counts = torch.bincount(target, minlength=num_nodes)
            offsets = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
            by_target = torch.argsort(target, stable=True)
            return _GATEdges(ei[0], target, by_target, offsets)

        return self._graph_cache.get((edge_index,), (num_nodes,), build)

    @staticmethod
    def _softmax(alpha: Tensor, edges: _GATEdges, num_nodes: int) -> Tensor:
        """PyG's ``softmax(alpha, target)`` over each node's in-edges, bit for bit.

        The same operations in the same order, except the per-node maximum
        (no gradient flows through it), taken as a segment maximum over the
        edges sorted by target (several times faster than
        ``scatter_reduce(amax)`` on the CPU; a maximum does not depend on the
        order of its terms, so the result is identical).
        """
        target = edges.target
        alpha_max = torch.segment_reduce(
            alpha.detach().index_select(0, edges.by_target),
            "max",
            offsets=edges.offsets,
            axis=0,
        )
        out = (alpha - alpha_max.index_select(0, target)).exp()
        out_sum = scatter(out, target, 0, num_nodes, reduce="sum") + 1e-16
        return out / out_sum.index_select(0, target)

    def _attention(
        self, z: Tensor, att_src: Tensor, att_dst: Tensor, edges: _GATEdges
    ) -> Tensor:
        """Aggregate ``z`` ``[N, B, heads, C]`` over the edges: same shape."""
        num_nodes = z.size(0)
        source, target = edges.source, edges.target
        alpha_src = (z * per_member(att_src, num_nodes)).sum(dim=-1)  # [N, B, heads]
        alpha_dst = (z * per_member(att_dst, num_nodes)).sum(dim=-1)
        alpha = alpha_src.index_select(0, source) + alpha_dst.index_select(0, target)
        alpha = F.leaky_relu(alpha, 0.2)
        alpha = self._softmax(alpha, edges, num_nodes)
        alpha = self._dropout(alpha, self.attention_dropout)
        messages = alpha.unsqueeze(-1) * z.index_select(0, source)
        return scatter(messages, target, 0, num_nodes, reduce="sum")

    def forward(self, x: Tensor, edge_index: Tensor | None = None) -> Tensor:
        """Return the ``[N, B, out_channels]`` outputs (see the base class)."""
        x = self._check_x(x)
        edge_index = _check_edge_index(edge_index, self.family)
        num_nodes = x.size(0)
        edges = self._edges(edge_index, num_nodes)
        last = self.num_layers - 1
        h = x
        for i in range(self.num_layers):
            weight, att_src = self.weights[i], self.att_src[i]
            num_members, heads, channels = att_src.shape
            z = self._linear(i, x, h, weight)
            z = z.view(num_nodes, num_members, heads, channels)
            out = self._attention(z, att_src, self.att_dst[i], edges)
            if i < last:
                out = out.reshape(num_nodes, num_members, heads * channels)
            else:
                out = out.mean(dim=2)
            h = out + per_member(self.biases[i], num_nodes)
            if i < last:
                h = self._dropout(F.relu(h), self.dropout)
        return h


class BatchedMLP(BatchedBaseline):
    r"""``B`` :func:`~diffresnet_pyg.nn.models.baselines.mlp` members at once.

    Linear layers with ReLU and dropout after every layer but the last; the
    graph is ignored. Parameters: ``weights`` (``[B, F_in, F_out]``) and
    ``biases`` (``[B, F_out]``). See :class:`BatchedBaseline` for construction
    and the member contract.

    Example:
        >>> import torch
        >>> from diffresnet_pyg.nn.models.baselines import mlp
        >>> model = BatchedMLP.from_modules([mlp(16, 3) for _ in range(5)])
        >>> model(torch.randn(4, 16)).shape
        torch.Size([4, 5, 3])
    """

    family = "mlp"
    _param_names = ("weights", "biases")

    def _layout(self, member: BaselineModel) -> dict[str, list[tuple[Tensor, str]]]:
        lins = member.model.lins
        return {
            "weights": [(lin.weight, _TRANSPOSE) for lin in lins],
            "biases": [(lin.bias, _SAME) for lin in lins],
        }

    def forward(
        self,
        x: Tensor,
        edge_index: Tensor | None = None,
        edge_weight: Tensor | None = None,
    ) -> Tensor:
        """Return the ``[N, B, out_channels]`` outputs (the graph is ignored)."""
        x = self._check_x(x)
        last = self.num_layers - 1
        h = x
        for i, (weight, bias) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = self._linear(i, x, h, weight)
            h = h + per_member(bias, h.size(0))
            if i < last:
                h = self._dropout(F.relu(h), self.dropout)
        return h


#: The batched class of each family.
BATCHED_CLASSES: dict[str, type[BatchedBaseline]] = {
    cls.family: cls for cls in (BatchedGCN, BatchedGraphSAGE, BatchedGAT, BatchedMLP)
}


def stack_baselines(modules: Sequence[BaselineModel]) -> BatchedBaseline:
    """Stack baseline models of one family into one batched model.

    Args:
        modules (Sequence[BaselineModel]): Models built by
            :func:`~diffresnet_pyg.nn.models.baselines.gcn`,
            :func:`~diffresnet_pyg.nn.models.baselines.graph_sage`,
            :func:`~diffresnet_pyg.nn.models.baselines.gat` or
            :func:`~diffresnet_pyg.nn.models.baselines.mlp`, all of the same
            family and with equal hyperparameters (their weights are copied).

    Returns:
        BatchedBaseline: A :class:`BatchedGCN`, :class:`BatchedGraphSAGE`,
        :class:`BatchedGAT` or :class:`BatchedMLP` of ``len(modules)`` members,
        in the training mode of the first module.

    Raises:
        TypeError: If a module is not such a model, or families differ.
        ValueError: If ``modules`` is empty or hyperparameters differ.

    Example:
        >>> import torch
        >>> from diffresnet_pyg.nn.models.baselines import gcn
        >>> members = [gcn(16, 3) for _ in range(4)]
        >>> model = stack_baselines(members).eval()
        >>> x = torch.randn(5, 16)
        >>> edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
        >>> out = model(x, edge_index)
        >>> out.shape
        torch.Size([5, 4, 3])
        >>> torch.allclose(out[:, 2], members[2].eval()(x, edge_index), atol=1e-6)
        True
    """
    modules = list(modules)
    _check_members(modules, None)
    return BATCHED_CLASSES[modules[0].family].from_modules(modules)
