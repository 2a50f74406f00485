"""The non-parametric diffusion layer of Diff-ResNet."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch_geometric.nn.conv import MessagePassing
from torch_geometric.utils import to_torch_csr_tensor

from diffresnet_pyg.nn.dropout import (
    draw_mask_seed,
    keep_mask_bytes,
    keep_mask_from_seed,
)
from diffresnet_pyg.nn.laplacian import (
    SplitLaplacian,
    check_laplacian,
    split_laplacian,
)


def _buffer(like: Tensor) -> Tensor:
    return torch.empty(like.shape, dtype=like.dtype, device=like.device)


class _EulerSteps(torch.autograd.Function):
    """``num_steps`` times ``x <- adj @ (x * mask)`` for a constant CSR ``adj``.

    ``mask`` is a fresh dropout keep-mask of probability ``1 - p`` per step
    (none when ``p == 0``); the ``1 / (1 - p)`` rescaling is part of ``adj``.

    The step is linear, so the backward needs no activations: it applies the
    precomputed transpose ``adj_back`` (``torch.sparse.mm`` would transpose and
    re-sort ``adj`` on every call) and the same masks in reverse order. Nothing
    of size ``N x F`` is saved per step: the 0/1 masks are saved as one byte
    per entry, or, with ``recompute``, only their seeds (the masks are drawn
    again in the backward). All steps run in two reused buffers (a fresh
    multi-megabyte allocation per step costs page faults comparable to the
    product itself).
    """

    @staticmethod
    def forward(
        ctx: Any,
        x: Tensor,
        adj: Tensor,
        adj_back: Tensor,
        num_steps: int,
        p: float,
        recompute: bool,
    ) -> Tensor:
        bufs = (_buffer(x), _buffer(x))
        cur, masks, seeds = x, [], []
        for _ in range(num_steps):
            free = bufs[1] if cur is bufs[0] else bufs[0]
            if p > 0.0:
                seeds.append(draw_mask_seed())
                byte_mask = keep_mask_from_seed(x.shape, p, seeds[-1], x.device)
                if not recompute:
                    masks.append(byte_mask)
                mask = byte_mask.to(x.dtype)
                if cur is x:
                    cur = torch.mul(x, mask, out=free)
                    free = bufs[1] if cur is bufs[0] else bufs[0]
                else:
                    cur.mul_(mask)
            cur = torch.addmm(free, adj, cur, beta=0.0, out=free)
        ctx.adj_back = adj_back
        ctx.num_steps = num_steps
        ctx.p = p
        ctx.seeds = seeds if recompute else []
        ctx.save_for_backward(*masks)
        return cur

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None, None, None, None]:
        bufs = (_buffer(grad), _buffer(grad))
        masks = ctx.saved_tensors
        cur = grad.contiguous()
        for k in reversed(range(ctx.num_steps)):
            free = bufs[1] if cur is bufs[0] else bufs[0]
            cur = torch.addmm(free, ctx.adj_back, cur, beta=0.0, out=free)
            if masks:
                cur.mul_(masks[k].to(cur.dtype))
            elif ctx.seeds:
                mask = keep_mask_from_seed(cur.shape, ctx.p, ctx.seeds[k], cur.device)
                cur.mul_(mask.to(cur.dtype))
        return cur, None, None, None, None, None


class DiffusionConv(MessagePassing):
    r"""Explicit Euler diffusion steps on a graph (Diff-ResNet's diffusion layer).

    From `"Diffusion Mechanism in Residual Neural Network: Theory and
    Applications" <https://arxiv.org/abs/2105.03155>`_ (Wang et al., TPAMI
    2024). Each of the ``num_steps`` steps applies

    .. math::
        \mathbf{X} \leftarrow \mathbf{X} - \gamma \mathbf{L} \mathbf{X}
        = (\mathbf{I} - \gamma \mathbf{L}) \mathbf{X},

    with dropout on :math:`\mathbf{X}` before every step when ``dropout > 0``
    (as the authors do). The layer has no parameters. The Laplacian is named
    (see :mod:`diffresnet_pyg.nn.laplacian`):

    * ``"reference"``: :math:`\mathbf{L} = \mathrm{diag}(\hat{\mathbf{A}}
      \mathbf{1}) - \hat{\mathbf{A}}` with :math:`\hat{\mathbf{A}} =
      \tilde{\mathbf{D}}^{-1/2} (\mathbf{A} + \mathbf{I})
      \tilde{\mathbf{D}}^{-1/2}`, the authors' graph variant;
    * ``"sym"``: :math:`\mathbf{I} - \mathbf{D}^{-1/2}\mathbf{A}
      \mathbf{D}^{-1/2}`;
    * ``"rw"``: :math:`\mathbf{I} - \mathbf{D}^{-1}\mathbf{A}`;
    * ``"combinatorial"``: :math:`\mathrm{diag}(\mathbf{A}\mathbf{1}) -
      \mathbf{A}` on the weights as given (Gaussian kNN graphs).

    The normalization is computed once per call (once ever with
    ``cached=True``) and the :math:`1/(1-p)` dropout rescaling is folded into
    the operator, so a step costs one sparse-dense product and one mask.
    Explicit Euler is stable when :math:`\gamma \lambda_{\max}(\mathbf{L}) <
    2`; since :math:`\lambda_{\max} \geq \max_i L_{ii}` for symmetric
    :math:`\mathbf{L}`, a step with :math:`\gamma \max_i L_{ii} \geq 2` is
    rejected (``check_stability=False`` disables this).

    With constant edge weights the backward stores no features: the step is
    linear, so the gradient is the transposed operator applied ``num_steps``
    times (with the same dropout masks), and memory stays at a few
    :math:`N \times F` buffers whatever ``num_steps`` is (differentiable edge
    weights use autograd through message passing, which stores every step).

    Args:
        step_size (float): The step :math:`\gamma > 0`.
        num_steps (int, optional): Number of steps :math:`r \geq 0`; 0 makes the
            layer the identity. (default: :obj:`1`)
        laplacian (str, optional): ``"reference"``, ``"sym"``, ``"rw"`` or
            ``"combinatorial"``. (default: :obj:`"reference"`)
        add_self_loops (bool, optional): Add a weight-1 self loop to nodes
            without one before normalizing. (default: :obj:`True`)
        dropout (float, optional): Dropout probability applied to the input of
            every step in training mode. (default: :obj:`0.0`)
        cached (bool, optional): Cache the normalized operator on the first
            call (only for a fixed, transductive graph); cleared by
            :meth:`reset_parameters`. (default: :obj:`False`)
        check_stability (bool, optional): Raise on a step size that is
            certainly unstable for the graph. (default: :obj:`True`)
        recompute_masks (bool, optional): With dropout, save only one seed
            per step and draw the masks again in the backward instead of
            saving them (one byte per entry per step): the backward then
            stores nothing per step, at the cost of drawing every mask twice.
            (default: :obj:`False`)
        **kwargs (optional): Additional arguments of
            :class:`torch_geometric.nn.conv.MessagePassing`.

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, F)`, edge indices
          :math:`(2, |\mathcal{E}|)` or a sparse adjacency
          :math:`(|\mathcal{V}|, |\mathcal{V}|)` (torch COO/CSR or
          ``torch_sparse.SparseTensor``, rows are targets), edge weights
          :math:`(|\mathcal{E}|)` *(optional)*
        - **output:** node features :math:`(|\mathcal{V}|, F)`

    Example:
        >>> import torch
        >>> edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
        >>> x = torch.tensor([[1.0], [0.0], [0.0]])
        >>> conv = DiffusionConv(step_size=0.5, num_steps=2, laplacian="sym")
        >>> conv(x, edge_index).sum().item() > 0
        True
    """

    def __init__(
        self,
        step_size: float,
        num_steps: int = 1,
        laplacian: str = "reference",
        add_self_loops: bool = True,
        dropout: float = 0.0,
        cached: bool = False,
        check_stability: bool = True,
        recompute_masks: bool = False,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("aggr", "add")
        super().__init__(**kwargs)
        if not isinstance(step_size, (int, float)) or not step_size > 0:
            raise ValueError(f"'step_size' must be a number > 0, got {step_size!r}")
        if not isinstance(num_steps, int) or num_steps < 0:
            raise ValueError(f"'num_steps' must be an integer >= 0, got {num_steps!r}")
        if not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
            raise ValueError(f"'dropout' must be in [0, 1), got {dropout!r}")
        self.step_size = float(step_size)
        self.num_steps = num_steps
        self.laplacian = check_laplacian(laplacian)
        self.add_self_loops = add_self_loops
        self.dropout = float(dropout)
        self.cached = cached
        self.check_stability = check_stability
        if not isinstance(recompute_masks, bool):
            raise ValueError(
                f"'recompute_masks' must be True or False, got {recompute_masks!r}"
            )
        self.recompute_masks = recompute_masks
        self._cached_laplacian: SplitLaplacian | None = None
        self._cached_operators: dict[float, tuple[Tensor, Tensor]] = {}

    @property
    def dropout_active(self) -> bool:
        """Whether the next call drops entries (training mode and ``dropout > 0``)."""
        return self.training and self.dropout > 0.0

    def reset_parameters(self) -> None:
        """Clear the cached operator (the layer has no parameters)."""
        super().reset_parameters()
        self._cached_laplacian = None
        self._cached_operators = {}

    def split_laplacian(
        self, edge_index: Any, edge_weight: Tensor | None, num_nodes: int, dtype
    ) -> SplitLaplacian:
        """The layer's Laplacian of a graph (validated; cached if ``cached``)."""
        if self.cached and self._cached_laplacian is not None:
            lap = self._cached_laplacian
            if lap.num_nodes != num_nodes:
                raise ValueError(
                    f"The cached graph has {lap.num_nodes} nodes but the input has "
                    f"{num_nodes}; call reset_parameters() when the graph changes"
                )
            return lap
        lap = split_laplacian(
            edge_index,
            edge_weight,
            num_nodes,
            self.laplacian,
            self.add_self_loops,
            dtype,
        )
        if self.check_stability and lap.num_nodes > 0:
            bound = float(lap.diag.detach().max())
            if self.step_size * bound >= 2.0:
                raise ValueError(
                    f"step_size={self.step_size} is unstable for this graph: the "
                    f"{self.laplacian!r} Laplacian has max diagonal {bound:.4g}, so "
                    f"lambda_max >= {bound:.4g} and step_size * lambda_max >= 2. "
                    f"Use step_size < {2.0 / bound:.4g} (see "
                    "laplacian_max_eigenvalue for the exact bound), more smaller "
                    "steps, or check_stability=False"
                )
        if self.cached:
            self._cached_laplacian = lap
        return lap

    def _operator(self, lap: SplitLaplacian, scale: float) -> tuple[Tensor, Tensor]:
        """``(graph, other)`` for the operator ``scale * (I - step_size * L)``.

        Differentiable weights give ``(edge_index, edge_weight)`` for message
        passing; otherwise ``(adj, adj_back)``: CSR matrices whose rows are
        the targets and the sources respectively.
        """
        if self.cached and scale in self._cached_operators:
            return self._cached_operators[scale]
        edge_index, weight = lap.euler_operator(self.step_size, scale)
        if weight.requires_grad:
            op = (edge_index, weight)
        else:
            n = lap.num_nodes
            op = (
                to_torch_csr_tensor(edge_index.flip(0), weight, size=(n, n)),
                to_torch_csr_tensor(edge_index, weight, size=(n, n)),
            )
        if self.cached:
            self._cached_operators[scale] = op
        return op

    def forward(
        self, x: Tensor, edge_index: Any, edge_weight: Tensor | None = None
    ) -> Tensor:
        """Apply ``num_steps`` diffusion steps to ``x``."""
        if x.dim() != 2:
            raise ValueError(
                f"'x' must have shape [num_nodes, channels], got {tuple(x.shape)}"
            )
        if self.num_steps == 0:
            return x
        lap = self.split_laplacian(edge_index, edge_weight, x.size(0), x.dtype)
        p = self.dropout if self.dropout_active else 0.0
        graph, other = self._operator(lap, 1.0 / (1.0 - p))
        if graph.layout == torch.sparse_csr:
            return _EulerSteps.apply(
                x.contiguous(), graph, other, self.num_steps, p, self.recompute_masks
            )
        for _ in range(self.num_steps):
            if p > 0.0:
                x = x * keep_mask_bytes(x.shape, p, x.device).to(x.dtype)
            x = self.propagate(graph, x=x, edge_weight=other)
        return x

    def message(self, x_j: Tensor, edge_weight: Tensor) -> Tensor:
        """Neighbour features weighted by the operator's edge weights."""
        return edge_weight.view(-1, 1) * x_j

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(step_size={self.step_size}, "
            f"num_steps={self.num_steps}, laplacian={self.laplacian!r}, "
            f"dropout={self.dropout})"
        )


def diffusion(
    x: Tensor,
    edge_index: Any,
    edge_weight: Tensor | None = None,
    *,
    step_size: float,
    num_steps: int = 1,
    laplacian: str = "reference",
    add_self_loops: bool = True,
    dropout: float = 0.0,
    training: bool = True,
    check_stability: bool = True,
    recompute_masks: bool = False,
) -> Tensor:
    r"""Functional form of :class:`DiffusionConv`.

    Computes :math:`(\mathbf{I} - \gamma \mathbf{L})^{r} \mathbf{X}` (with
    dropout before every step when ``training`` and ``dropout > 0``).

    Example:
        >>> import torch
        >>> edge_index = torch.tensor([[0, 1], [1, 0]])
        >>> x = torch.tensor([[1.0], [0.0]])
        >>> diffusion(x, edge_index, step_size=0.5, laplacian="sym").squeeze()
        tensor([0.7500, 0.2500])
    """
    conv = DiffusionConv(
        step_size,
        num_steps,
        laplacian,
        add_self_loops,
        dropout,
        check_stability=check_stability,
        recompute_masks=recompute_masks,
    )
    return conv.train(training)(x, edge_index, edge_weight)
