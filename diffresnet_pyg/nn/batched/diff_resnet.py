r"""Many :class:`~diffresnet_pyg.nn.DiffResNet` members trained as one model.

Member :math:`b` has its own weights; the graph, the input and the
(parameter-free) diffusion are shared. Activations are kept as
``[N, B, C]`` tensors so that one diffusion step of all members is a single
sparse product with ``[N, B * C]`` columns, and the first layer, whose input
is the same for all members, is one product with the members' weights side by
side (``[F, B * C]``). With input dropout in training each member sees its own
dropped copy of the input (:func:`input_linear`, also used by the batched
baselines).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.func import functional_call
from torch.nn import Module, ModuleList, Parameter, ParameterList
from torch_geometric.nn.resolver import activation_resolver

from diffresnet_pyg.nn.cache import GraphCache
from diffresnet_pyg.nn.conv.diffusion_conv import DiffusionConv
from diffresnet_pyg.nn.models.diff_resnet import DiffResNet
from diffresnet_pyg.nn.sparse import is_sparse, quiet_sparse_warnings, sparse_matmul
from diffresnet_pyg.nn.streams import MemberStream, member_dropout, member_generators

__all__ = [
    "BatchedDiffResNet",
    "input_linear",
    "member_input_dropout",
    "per_member",
    "shared_input_linear",
    "stacked_linear",
]

#: Members whose hidden activations take at least this many bytes are computed
#: one after another on the devices of :data:`MEMBER_LOOP_DEVICES`: their cost
#: is per-member memory traffic either way, and tensors of ``B`` such blocks
#: would be mapped afresh (page faults) and copied between layouts on every
#: layer.
MEMBER_LOOP_BYTES = 8 * 2**20

#: Device types on which :data:`MEMBER_LOOP_BYTES` applies. A GPU's caching
#: allocator reuses its blocks and its bandwidth makes the layout copies cheap,
#: so there all members are always computed at once: a few wide kernels per
#: layer instead of a few narrow ones per member.
MEMBER_LOOP_DEVICES: tuple[str, ...] = ("cpu",)


class _PerMember(torch.autograd.Function):
    """``param`` broadcast over rows; its gradient summed member by member."""

    @staticmethod
    def forward(ctx: Any, param: Tensor, num_rows: int) -> Tensor:
        return param.expand(num_rows, *param.shape)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        sums = [grad.select(1, b).contiguous().sum(0) for b in range(grad.size(1))]
        return torch.stack(sums), None


def per_member(param: Tensor, num_rows: int) -> Tensor:
    r"""A stacked parameter ``[B, ...]`` broadcast to ``[num_rows, B, ...]``.

    The forward is :meth:`torch.Tensor.expand` (no copy). The backward sums
    the ``[num_rows, B, ...]`` gradient over the rows one member at a time,
    each on a contiguous ``[num_rows, ...]`` copy, instead of in one reduction
    over the whole tensor: the lanes of that vectorized reduction (and its
    scalar tail) fall differently for every ``B``, so a member's gradient
    would round differently with the number of members beside it. Used for
    every stacked parameter that is broadcast over the nodes (biases, GAT's
    attention vectors), so a member's numbers are bit for bit independent of
    the batch it trains in.

    Args:
        param (torch.Tensor): ``[B, ...]``.
        num_rows (int): Rows (nodes) to broadcast over.

    Returns:
        torch.Tensor: A ``[num_rows, B, ...]`` view of ``param``.
    """
    return _PerMember.apply(param, num_rows)


def shared_input_linear(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    r"""Every member's linear layer applied to one shared input.

    .. math::
        \mathbf{Y}_{:, b, :} = \mathbf{X} \mathbf{W}_b + \mathbf{b}_b

    computed as one product with :math:`[\mathbf{W}_1, \dots, \mathbf{W}_B]`.

    Args:
        x (torch.Tensor): Dense or sparse (COO/CSR) input ``[N, F_in]``.
        weight (torch.Tensor): Stacked weights ``[B, F_in, F_out]``.
        bias (torch.Tensor, optional): Stacked biases ``[B, F_out]``.

    Returns:
        torch.Tensor: ``[N, B, F_out]``.
    """
    num_members, f_in, f_out = weight.shape
    w_cat = weight.permute(1, 0, 2).reshape(f_in, num_members * f_out)
    out = sparse_matmul(x, w_cat) if is_sparse(x) else x @ w_cat
    out = out.view(-1, num_members, f_out)
    return out if bias is None else out + per_member(bias, out.size(0))


def member_rows(x: Tensor, num_members: int) -> tuple[Tensor, Tensor, Tensor]:
    """Structure of a CSR ``x`` repeated per member, one column block per member.

    The ``[N * B, B * F]`` CSR matrix has row ``(n, b)`` equal to row ``n`` of
    ``x`` shifted to member ``b``'s column block. Returns ``(crow, col, perm)``
    where ``perm`` maps each stored entry to the entry of ``x`` it copies.
    """
    crow = x.crow_indices().long()
    col = x.col_indices().long()
    num_features = x.size(1)
    lengths = crow.diff().repeat_interleave(num_members)
    big_crow = torch.cat([lengths.new_zeros(1), lengths.cumsum(0)])
    rows = torch.repeat_interleave(
        torch.arange(lengths.numel(), device=x.device), lengths
    )
    offset = torch.arange(rows.numel(), device=x.device) - big_crow[rows]
    perm = crow[rows // num_members] + offset
    big_col = col[perm] + (rows % num_members) * num_features
    return big_crow, big_col, perm


def _dropped_member_rows(
    x: Tensor,
    num_members: int,
    p: float,
    cache: GraphCache,
    generators: Sequence[torch.Generator] | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """``(crow, col, values)`` of :func:`member_rows` with dropped values.

    With ``generators``, member :math:`b`'s values are dropped as
    :func:`~diffresnet_pyg.nn.sparse.sparse_dropout` drops the CSR values of
    ``x`` with ``generators[b]``; without, in one draw over all members'
    values from the global generator.
    """
    x_csr = x
    if x.layout != torch.sparse_csr:
        with quiet_sparse_warnings():
            x_csr = x.to_sparse_csr()

    def structure() -> tuple[Tensor, Tensor, Tensor, Tensor]:
        crow, col, perm = member_rows(x_csr, num_members)
        member = torch.div(col, x.size(1), rounding_mode="floor")
        return crow, col, x_csr.values()[perm], member * x_csr._nnz() + perm

    # the stored values per member and each one's index into the members'
    # masks [B, nnz] are constant for a constant x: built once
    crow, col, values, noise_index = cache.get(
        (x,), ("members", num_members, x.device), structure
    )
    if generators is None:
        return crow, col, F.dropout(values, p, True)
    nnz = x_csr._nnz()
    noise = torch.empty((num_members, nnz), dtype=values.dtype, device=values.device)
    for b, generator in enumerate(generators):
        noise[b].bernoulli_(1.0 - p, generator=generator)
    noise.div_(1.0 - p)
    return crow, col, values * noise.view(-1)[noise_index]


def input_linear(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    p: float,
    training: bool,
    cache: GraphCache,
    generators: Sequence[torch.Generator] | None = None,
) -> Tensor:
    r"""Every member's linear layer applied to its own dropout of a shared input.

    .. math::
        \mathbf{Y}_{:, b, :} = \mathrm{dropout}_b(\mathbf{X}) \mathbf{W}_b
            + \mathbf{b}_b

    with an independent dropout mask per member. Without dropout (``p = 0``
    or not ``training``) this is :func:`shared_input_linear`. A dense ``x``
    is dropped as ``x`` expanded to ``[N, B, F]`` (one draw of ``N * B * F``
    random numbers; with one member the draw of
    :func:`torch.nn.functional.dropout` on ``x``). A sparse ``x`` is dropped
    per member over its stored values only (``B * nnz`` random numbers; with
    one member the draw of :func:`~diffresnet_pyg.nn.sparse.sparse_dropout`)
    and multiplied as one ``[N * B, B * F]`` sparse matrix, whose structure is
    cached in ``cache`` for repeated calls with the same ``x``.

    Args:
        x (torch.Tensor): Dense or sparse (COO/CSR) input ``[N, F_in]``.
        weight (torch.Tensor): Stacked weights ``[B, F_in, F_out]``.
        bias (torch.Tensor, optional): Stacked biases ``[B, F_out]``.
        p (float): Input dropout probability.
        training (bool): Whether dropout is active.
        cache (GraphCache): Holds the per-member structure of a sparse ``x``.
        generators (sequence of torch.Generator, optional): One per member:
            member :math:`b`'s mask is drawn from ``generators[b]`` as its
            plain model draws it (dense: the mask of
            :func:`torch.nn.functional.dropout` on ``x``; sparse: that of
            :func:`~diffresnet_pyg.nn.sparse.sparse_dropout`), see
            :func:`~diffresnet_pyg.nn.streams.member_dropout`.
            (default: :obj:`None`: one draw from the global generator)

    Returns:
        torch.Tensor: ``[N, B, F_out]``.
    """
    if not (training and p > 0.0):
        return shared_input_linear(x, weight, bias)
    num_members, num_features, k = weight.shape
    if not is_sparse(x):
        expanded = x.unsqueeze(1).expand(-1, num_members, -1)
        dropped = member_dropout(expanded, p, True, generators)
        return stacked_linear(dropped, weight, bias)
    crow, col, values = _dropped_member_rows(x, num_members, p, cache, generators)
    with quiet_sparse_warnings():
        big = torch.sparse_csr_tensor(
            crow,
            col,
            values,
            (x.size(0) * num_members, num_members * num_features),
            check_invariants=False,
        )
    out = sparse_matmul(big, weight.reshape(num_members * num_features, k))
    out = out.view(-1, num_members, k)
    return out if bias is None else out + per_member(bias, out.size(0))


def member_input_dropout(
    x: Tensor,
    num_members: int,
    p: float,
    cache: GraphCache,
    generators: Sequence[torch.Generator] | None = None,
) -> Tensor:
    """Each member's own dropout of a shared input, dense ``[N, B, F]``.

    The random numbers are those of :func:`input_linear` (for the layer that
    has no linear map in front of it, e.g. a residual block fed the input).

    Args:
        x (torch.Tensor): Dense or sparse (COO/CSR) input ``[N, F]``.
        num_members (int): ``B``.
        p (float): Dropout probability (applied: call it in training only).
        cache (GraphCache): As in :func:`input_linear`.
        generators (sequence of torch.Generator, optional): As in
            :func:`input_linear`.
    """
    n, num_features = x.shape
    if not is_sparse(x):
        expanded = x.unsqueeze(1).expand(-1, num_members, -1)
        return member_dropout(expanded, p, True, generators)
    crow, col, values = _dropped_member_rows(x, num_members, p, cache, generators)
    with quiet_sparse_warnings():
        rows = torch.sparse_csr_tensor(
            crow,
            col % num_features,
            values,
            (n * num_members, num_features),
            check_invariants=False,
        )
    return rows.to_dense().view(n, num_members, num_features)


class _MemberLinear(torch.autograd.Function):
    """``x[:, b] @ weight[b]`` for every member, each on its own copies."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor) -> Tensor:
        ctx.save_for_backward(x, weight)
        outs = [
            x.select(1, b).contiguous() @ weight[b].clone()
            for b in range(weight.size(0))
        ]
        return torch.stack(outs, 1)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, Tensor | None]:
        x, weight = ctx.saved_tensors
        members = range(weight.size(0))
        grads = [grad.select(1, b).contiguous() for b in members]
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.stack(
                [g @ weight[b].clone().t() for b, g in enumerate(grads)], 1
            )
        if ctx.needs_input_grad[1]:
            grad_w = torch.stack(
                [x.select(1, b).contiguous().t() @ g for b, g in enumerate(grads)]
            )
        return grad_x, grad_w


def stacked_linear(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    r"""Member :math:`b`'s linear layer applied to member :math:`b`'s input.

    .. math::
        \mathbf{Y}_{:, b, :} = \mathbf{X}_{:, b, :} \mathbf{W}_b + \mathbf{b}_b

    One matrix product per member, forward and backward, each on contiguous
    copies of the member's slices: a batched product (``torch.bmm``) rounds a
    member's entries differently with its position in the batch, so its run
    would depend on the members beside it. The copies cost one pass over the
    activations; the products are those ``bmm`` computes.

    Args:
        x (torch.Tensor): ``[N, B, F_in]``.
        weight (torch.Tensor): ``[B, F_in, F_out]``.
        bias (torch.Tensor, optional): ``[B, F_out]``.

    Returns:
        torch.Tensor: ``[N, B, F_out]``.
    """
    out = _MemberLinear.apply(x, weight)
    return out if bias is None else out + per_member(bias, out.size(0))


def _stack(tensors: Sequence[Tensor], transpose: bool = False) -> Parameter:
    data = [t.detach().t() if transpose else t.detach() for t in tensors]
    return Parameter(torch.stack(data).contiguous())


class BatchedDiffResNet(Module):
    r"""``B`` independent :class:`~diffresnet_pyg.nn.DiffResNet` members.

    Every parameter is stacked along a leading member dimension (linear
    weights are stored as ``[B, F_in, F_out]``); the forward pass computes all
    members at once and returns ``[N, B, out_channels]``. Member :math:`b` computes
    exactly what its own :class:`~diffresnet_pyg.nn.DiffResNet` computes.
    With :attr:`streams` (one
    :class:`~diffresnet_pyg.nn.streams.MemberStream` per member, set by
    :func:`~diffresnet_pyg.experiments.models.build_members`), member
    :math:`b`'s dropout masks (input, block and diffusion dropout) are drawn
    from its own generators with the shapes and operations of its plain
    model, so they equal the masks its plain model draws from a global
    generator in the same state, whatever the other members. Without
    streams, each dropout is one draw from the global generator over all
    members; with one member that is the same draw, in the same order, as
    the unbatched model's.

    The model runs on the device of its parameters, which must be that of the
    input and the graph (``model.to(device)``; sparse COO/CSR inputs and the
    CSR diffusion operators work on CUDA through cuSPARSE). What is
    guaranteed across devices:

    * without dropout (evaluation mode, or all dropout probabilities 0) the
      outputs and gradients on any device equal the CPU ones up to floating
      point rounding;
    * with dropout, masks are drawn on the activations' device and are a
      function of the seed on each device, not across devices: the diffusion
      masks come from a per-step seed drawn from the global CPU generator
      (:func:`~diffresnet_pyg.nn.dropout.draw_mask_seed`), but that seed
      drives NumPy's SFC64 on the CPU and torch's generator of the device
      elsewhere; the other dropouts use the device's default generator (on
      CUDA, seeded by :func:`torch.manual_seed` too). A run on one device
      therefore repeats under the same seed (and a batched run of one member
      repeats the unbatched run on that device), but its masks differ from
      the CPU run's. Drawing them on the CPU and copying them over would keep
      the CPU masks at the cost of a host-to-device copy of every mask, as
      large as the activations, per step.

    On the CPU, members whose hidden activations are large
    (:data:`MEMBER_LOOP_BYTES`) run one after another, so the draws of a
    member differ between that path and the stacked one; other devices
    always run the stacked path (:data:`MEMBER_LOOP_DEVICES`).

    Build it with :meth:`from_modules` from members created (and seeded) one
    by one, so each member starts from the unbatched initialization.
    Replacing every parameter ``p`` by ``Parameter(p[index])`` keeps a valid
    model of the selected members (used to drop finished runs).

    Args:
        modules (Sequence[DiffResNet]): The members; same architecture.

    Example:
        >>> import torch
        >>> from diffresnet_pyg.nn import DiffResNet
        >>> edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
        >>> members = [DiffResNet(4, 8, 2, diffusion_steps=3) for _ in range(5)]
        >>> model = BatchedDiffResNet.from_modules(members)
        >>> model(torch.randn(3, 4), edge_index).shape
        torch.Size([3, 5, 2])
    """

    def __init__(self, modules: Sequence[DiffResNet]) -> None:
        super().__init__()
        modules = list(modules)
        if not modules:
            raise ValueError("BatchedDiffResNet needs at least one member")
        for m in modules:
            if not isinstance(m, DiffResNet):
                raise TypeError(
                    f"BatchedDiffResNet members must be DiffResNet, got {type(m)}"
                )
        first = modules[0]
        signature = _signature(first)
        for i, m in enumerate(modules[1:], start=1):
            if _signature(m) != signature:
                raise ValueError(
                    f"member {i} differs from member 0 in its architecture: "
                    f"{m!r} vs {first!r}"
                )
        self.in_channels = first.in_channels
        self.hidden_channels = first.hidden_channels
        self.out_channels = first.out_channels
        self.num_blocks = first.num_blocks
        self.act = activation_resolver(first.blocks[0].act)
        self.block_dropout = first.blocks[0].dropout
        self.input_dropout = first.input_dropout
        self._input_cache = GraphCache()
        #: Each member's random stream (:class:`~diffresnet_pyg.nn.streams.
        #: MemberStream`), or :obj:`None`: all members draw from the global
        #: generators.
        self.streams: list[MemberStream] | None = None
        if first.lin_in is None:
            self.lin_in_weight = self.lin_in_bias = None
        else:
            self.lin_in_weight = _stack([m.lin_in.weight for m in modules], True)
            self.lin_in_bias = _stack([m.lin_in.bias for m in modules])
        num_layers = len(first.blocks[0].lins)
        self.block_weights = ParameterList(
            [
                _stack([m.blocks[k].lins[j].weight for m in modules], True)
                for k in range(self.num_blocks)
                for j in range(num_layers)
            ]
        )
        self.block_biases = ParameterList(
            [
                _stack([m.blocks[k].lins[j].bias for m in modules])
                for k in range(self.num_blocks)
                for j in range(num_layers)
            ]
        )
        self.block_layers = num_layers
        self.convs = ModuleList(
            [_copy_conv(conv) for conv in first.convs]  # parameter-free, shared
        )
        self.lin_out_weight = _stack([m.lin_out.weight for m in modules], True)
        self.lin_out_bias = _stack([m.lin_out.bias for m in modules])
        # member 0's architecture without weights, sharing our convolutions: run
        # with one member's weights by the wide-layer path (not a submodule, so
        # its placeholder parameters are not ours)
        template = copy.deepcopy(first).to("meta")
        template.convs = self.convs
        self.__dict__["_template"] = template

    @classmethod
    def from_modules(cls, modules: Sequence[DiffResNet]) -> BatchedDiffResNet:
        """Stack the parameters of ``modules`` (copies) into one batched model."""
        return cls(modules)

    @property
    def num_members(self) -> int:
        """Number of members ``B`` (the leading size of every parameter)."""
        return self.lin_out_weight.size(0)

    def unstack(self, index: int) -> DiffResNet:
        """Member ``index`` as an unbatched :class:`DiffResNet` (a copy).

        The copy has the device and dtype of the stacked parameters.
        """
        if not -self.num_members <= index < self.num_members:
            raise IndexError(
                f"member {index} out of range for {self.num_members} members"
            )
        conv = self.convs[0]
        model = DiffResNet(
            self.in_channels,
            self.hidden_channels,
            self.out_channels,
            num_blocks=self.num_blocks,
            diffusion_steps=conv.num_steps,
            step_size=conv.step_size,
            laplacian=conv.laplacian,
            dropout=self.block_dropout,
            diffusion_dropout=conv.dropout,
            block_layers=self.block_layers,
            input_projection=self.lin_in_weight is not None,
            act=self.act,
            add_self_loops=conv.add_self_loops,
            cached=conv.cached,
            check_stability=conv.check_stability,
            input_dropout=self.input_dropout,
        )
        with torch.no_grad():
            if model.lin_in is not None:
                model.lin_in.weight.copy_(self.lin_in_weight[index].t())
                model.lin_in.bias.copy_(self.lin_in_bias[index])
            for k, block in enumerate(model.blocks):
                for j, lin in enumerate(block.lins):
                    lin.weight.copy_(
                        self.block_weights[k * self.block_layers + j][index].t()
                    )
                    lin.bias.copy_(self.block_biases[k * self.block_layers + j][index])
            model.lin_out.weight.copy_(self.lin_out_weight[index].t())
            model.lin_out.bias.copy_(self.lin_out_bias[index])
        ref = self.lin_out_weight
        return model.to(device=ref.device, dtype=ref.dtype).train(self.training)

    def reset_cache(self) -> None:
        """Clear the cached diffusion operators and input structure."""
        for conv in self.convs:
            conv.reset_parameters()
        self._input_cache.clear()

    def _block(self, k: int, x: Tensor, shared: bool) -> Tensor:
        """Residual block ``k``; ``shared``: ``x`` is one ``[N, F]`` input."""
        w0 = self.block_weights[k * self.block_layers]
        b0 = self.block_biases[k * self.block_layers]
        if shared:
            out = self.act(shared_input_linear(x, w0, b0))
            x = (x.to_dense() if is_sparse(x) else x).unsqueeze(1)
        else:
            out = self.act(stacked_linear(x, w0, b0))
        if self.block_layers == 2:
            out = member_dropout(
                out, self.block_dropout, self.training, self._generators(out.device)
            )
            out = stacked_linear(
                out,
                self.block_weights[k * self.block_layers + 1],
                self.block_biases[k * self.block_layers + 1],
            )
        return out + x

    def _generators(self, device: torch.device) -> list[torch.Generator] | None:
        """The members' generators of ``device`` (:obj:`None`: global)."""
        return member_generators(self.streams, device)

    def _diffuse(
        self, conv: DiffusionConv, x: Tensor, edge_index: Any, edge_weight: Any
    ) -> Tensor:
        n, b, c = x.shape
        generators = self._generators(torch.device("cpu"))
        out = conv(x.reshape(n, b * c), edge_index, edge_weight, generators=generators)
        return out.view(n, b, c)

    def _member_weights(self) -> list[dict[str, Tensor]]:
        """Each member's weights under :class:`DiffResNet`'s parameter names.

        Views of the stacked parameters (``unbind``: the backward writes each
        member's gradient into one stacked gradient).
        """
        stacked: list[tuple[str, Tensor, bool]] = []
        if self.lin_in_weight is not None:
            stacked += [
                ("lin_in.weight", self.lin_in_weight, True),
                ("lin_in.bias", self.lin_in_bias, False),
            ]
        for k in range(self.num_blocks):
            for j in range(self.block_layers):
                i = k * self.block_layers + j
                stacked += [
                    (f"blocks.{k}.lins.{j}.weight", self.block_weights[i], True),
                    (f"blocks.{k}.lins.{j}.bias", self.block_biases[i], False),
                ]
        stacked += [
            ("lin_out.weight", self.lin_out_weight, True),
            ("lin_out.bias", self.lin_out_bias, False),
        ]
        members = [(name, p.unbind(0), t) for name, p, t in stacked]
        return [
            {name: (ps[m].t() if t else ps[m]) for name, ps, t in members}
            for m in range(self.num_members)
        ]

    def _forward_members(self, x: Tensor, edge_index: Any, edge_weight: Any) -> Tensor:
        """Members one after another (wide layers), ``[N, B, out_channels]``.

        Each member runs :class:`DiffResNet`'s own forward with its weights
        (and its own random stream installed as the global one, if any).
        """
        template = self.__dict__["_template"].train(self.training)
        outs = []
        for b, weights in enumerate(self._member_weights()):
            args = (x, edge_index, edge_weight)
            if self.streams is None or not self.training:
                outs.append(functional_call(template, weights, args))
                continue
            with self.streams[b].installed(x.device):
                outs.append(functional_call(template, weights, args))
        return torch.stack(outs, dim=1)

    def _loops_members(self, x: Tensor) -> bool:
        """Whether a forward on ``x`` computes the members one after another."""
        if x.device.type not in MEMBER_LOOP_DEVICES:
            return False
        width = x.size(0) * self.hidden_channels * self.lin_out_weight.element_size()
        return width >= MEMBER_LOOP_BYTES

    def forward(self, x: Tensor, edge_index: Any, edge_weight: Any = None) -> Tensor:
        """Return the ``[num_nodes, num_members, out_channels]`` outputs.

        Args:
            x (torch.Tensor): Shared node features ``[N, in_channels]``.
            edge_index (torch.Tensor or SparseTensor): The graph.
            edge_weight (torch.Tensor, optional): Edge weights, as
                :class:`DiffResNet` takes them.
        """
        if x.dim() != 2 or x.size(1) != self.in_channels:
            raise ValueError(
                f"'x' must have shape [num_nodes, {self.in_channels}], got "
                f"{tuple(x.shape)}"
            )
        if self._loops_members(x):
            return self._forward_members(x, edge_index, edge_weight)
        shared = True
        p = self.input_dropout
        if self.lin_in_weight is not None:
            x = input_linear(
                x,
                self.lin_in_weight,
                self.lin_in_bias,
                p,
                self.training,
                self._input_cache,
                self._generators(x.device),
            )
            shared = False
        elif self.training and p > 0.0:
            x = member_input_dropout(
                x, self.num_members, p, self._input_cache, self._generators(x.device)
            )
            shared = False
        last = self.num_blocks - 1
        for k, conv in enumerate(self.convs):
            x = self._block(k, x, shared)
            shared = False
            if k == last and not conv.dropout_active:  # classifier first
                out = stacked_linear(x, self.lin_out_weight, None)
                out = self._diffuse(conv, out, edge_index, edge_weight)
                return out + per_member(self.lin_out_bias, out.size(0))
            x = self._diffuse(conv, x, edge_index, edge_weight)
        return stacked_linear(x, self.lin_out_weight, self.lin_out_bias)

    def __repr__(self) -> str:
        conv = self.convs[0]
        return (
            f"{self.__class__.__name__}({self.in_channels}, {self.hidden_channels}, "
            f"{self.out_channels}, num_members={self.num_members}, "
            f"num_blocks={self.num_blocks}, diffusion_steps={conv.num_steps}, "
            f"step_size={conv.step_size}, laplacian={conv.laplacian!r})"
        )


def _signature(model: DiffResNet) -> tuple:
    conv = model.convs[0]
    block = model.blocks[0]
    return (
        model.in_channels,
        model.hidden_channels,
        model.out_channels,
        model.num_blocks,
        model.lin_in is None,
        model.input_dropout,
        len(block.lins),
        block.dropout,
        repr(block.act),
        conv.num_steps,
        conv.step_size,
        conv.laplacian,
        conv.dropout,
        conv.add_self_loops,
        conv.cached,
        conv.check_stability,
    )


def _copy_conv(conv: DiffusionConv) -> DiffusionConv:
    return DiffusionConv(
        conv.step_size,
        conv.num_steps,
        conv.laplacian,
        conv.add_self_loops,
        conv.dropout,
        cached=conv.cached,
        check_stability=conv.check_stability,
    )
