"""The non-parametric diffusion layer of Diff-ResNet."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
from torch import Tensor
from torch_geometric.nn.conv import MessagePassing
from torch_geometric.typing import Adj, OptTensor, SparseTensor
from torch_geometric.utils import spmm, to_torch_csr_tensor

from diffresnet_pyg.nn.cache import GraphCache
from diffresnet_pyg.nn.dropout import (
    draw_member_seeds,
    member_keep_mask,
)
from diffresnet_pyg.nn.laplacian import (
    SplitLaplacian,
    check_laplacian,
    split_laplacian,
)
from diffresnet_pyg.nn.sparse import csr_with_transpose, quiet_sparse_warnings

#: PyG's message for a reverse flow on an (already oriented) sparse adjacency.
_SPARSE_FLOW_ERROR = (
    'Flow direction "target_to_source" is invalid for message propagation via '
    "`torch_sparse.SparseTensor` or `torch.sparse.Tensor`. If you really want "
    "to make use of a reverse message passing flow, pass in the transposed "
    "sparse tensor to the message passing module, e.g., `adj_t.t()`."
)


def _graph_layout(graph: Adj) -> str:
    """``"adj_t"`` (torch COO/CSR), ``"sparse_tensor"`` or ``"edge_index"``."""
    if isinstance(graph, Tensor):
        if graph.layout in (torch.sparse_coo, torch.sparse_csr):
            return "adj_t"
        return "edge_index"
    if isinstance(graph, SparseTensor):
        return "sparse_tensor"
    return "edge_index"  # anything else is rejected by split_laplacian


def _weights_need_grad(graph: Adj, edge_weight: OptTensor) -> bool:
    """Whether the operator of a graph will need gradients (never cached)."""
    if not torch.is_grad_enabled():
        return False
    if edge_weight is not None and edge_weight.requires_grad:
        return True
    if isinstance(graph, Tensor):
        return graph.requires_grad  # a sparse adjacency with such values
    if isinstance(graph, SparseTensor):
        return graph.requires_grad()
    return False


def _buffer(like: Tensor) -> Tensor:
    return torch.empty(like.shape, dtype=like.dtype, device=like.device)


#: Target width of the column panels of the fused CPU path of
#: :class:`_EulerSteps` (``0`` turns the path off). On Cora (2485 nodes) a
#: panel of 120 float32 columns is 1.2 MB: the panel, its product, a mask
#: panel and the CSR operator stay in the cache through all steps.
PANEL_WIDTH = 128


def _panels(num_columns: int, width: int) -> list[tuple[int, int]]:
    """Column ranges ``[start, stop)`` of near-equal width, at most ``width``."""
    count = -(-num_columns // width)
    size = -(-num_columns // count)
    return [(j, min(j + size, num_columns)) for j in range(0, num_columns, size)]


def _use_panels(x: Tensor, num_steps: int, recompute: bool, width: int) -> bool:
    """Whether the fused panel path applies: CPU, several steps, >= 2 panels."""
    return (
        width > 0
        and x.device.type == "cpu"
        and not recompute
        and num_steps > 1
        and x.size(1) >= 2 * width
    )


def _panel_major(mask: Tensor, spans: list[tuple[int, int]]) -> Tensor:
    """``mask`` ``[N, F]`` as one flat tensor of contiguous ``[N, w]`` panels."""
    n = mask.size(0)
    out = torch.empty(mask.numel(), dtype=mask.dtype, device=mask.device)
    for start, stop in spans:
        out[n * start : n * stop].view(n, stop - start).copy_(mask[:, start:stop])
    return out


def _panel_steps(
    x: Tensor,
    adj: Tensor,
    num_steps: int,
    masks: list[Tensor] | tuple[Tensor, ...],
    backward: bool,
    spans: list[tuple[int, int]],
) -> Tensor:
    r"""``num_steps`` products with ``adj`` and masks, one column panel at a time.

    With masks :math:`M_0, \dots, M_{s-1}` (0/1 bytes; none without
    dropout, then they are left out below) the forward computes

    .. math::
        A (M_{s-1} \odot \cdots A (M_1 \odot A (M_0 \odot X)))

    and the backward (``backward=True``, ``adj`` the transpose)

    .. math::
        M_0 \odot A^T (M_1 \odot \cdots A^T (M_{s-1} \odot A^T G)).

    Both act on each column independently (the masks are elementwise and a
    product acts column by column), so all steps run on a panel
    :math:`X_{:, j:k}` (``spans``) before the next one: the panel, its
    product, a mask panel and the CSR operator stay in the cache, and the
    ``N x F`` input, masks and output are streamed once instead of once per
    step. Each output entry sums the same products in the same (CSR row)
    order as a product of the whole matrix, so the result equals the
    step-by-step path's bit for bit. The masks are in the layout of
    :func:`_panel_major`, so a mask panel is one contiguous read.
    """
    n = x.size(0)
    out = torch.empty_like(x)
    size = max(stop - start for start, stop in spans)
    flat = torch.empty(3, n * size, dtype=x.dtype, device=x.device)
    for start, stop in spans:
        # contiguous [n, w] views of the three panel buffers and of the masks
        cur, free, mask = (flat[i, : n * (stop - start)].view(n, -1) for i in range(3))
        panel = [m[n * start : n * stop].view(n, -1) for m in masks]
        if panel and not backward:
            mask.copy_(panel[0])
            torch.mul(x[:, start:stop], mask, out=cur)
        else:
            cur.copy_(x[:, start:stop])
        for k in range(num_steps):
            torch.addmm(free, adj, cur, beta=0.0, out=free)
            cur, free = free, cur
            if panel and (backward or k + 1 < num_steps):
                mask.copy_(panel[num_steps - 1 - k if backward else k + 1])
                cur.mul_(mask)
        out[:, start:stop] = cur
    return out


class _EulerSteps(torch.autograd.Function):
    """``num_steps`` times ``x <- adj @ (x * mask)`` for a constant CSR ``adj``.

    ``mask`` is a fresh dropout keep-mask of probability ``1 - p`` per step
    (none when ``p == 0``); the ``1 / (1 - p)`` rescaling is part of ``adj``.

    The step is linear, so the backward needs no activations: it applies the
    precomputed transpose ``adj_back`` (``torch.sparse.mm`` would transpose and
    re-sort ``adj`` on every call) and the same masks in reverse order. Nothing
    of size ``N x F`` is saved per step: the 0/1 masks are saved as one byte
    per entry, or, with ``recompute``, only their seeds (the masks are drawn
    again in the backward).

    On the CPU with ``panel_width > 0`` and at least two panels (and without
    ``recompute``), forward and backward run all steps on one column panel
    at a time (:func:`_panel_steps`): the masks are drawn for the whole matrix
    first, from the same seeds in the same order, so the output and gradient
    are bit for bit those of the step-by-step path. Otherwise the steps run
    one after the other over the whole matrix in two reused buffers (a fresh
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
        panel_width: int = 0,
        generators: tuple[torch.Generator, ...] | None = None,
    ) -> Tensor:
        ctx.panel_width = 0
        if _use_panels(x, num_steps, recompute, panel_width):
            spans = _panels(x.size(1), panel_width)
            masks = []
            if p > 0.0:
                masks = [
                    _panel_major(
                        member_keep_mask(
                            x.shape, p, draw_member_seeds(generators), x.device
                        ),
                        spans,
                    )
                    for _ in range(num_steps)
                ]
            ctx.adj_back = adj_back
            ctx.num_steps = num_steps
            ctx.p = p
            ctx.seeds = []
            ctx.panel_width = panel_width
            ctx.save_for_backward(*masks)
            return _panel_steps(x, adj, num_steps, masks, False, spans)
        bufs = (_buffer(x), _buffer(x))
        cur, masks, seeds = x, [], []
        for _ in range(num_steps):
            free = bufs[1] if cur is bufs[0] else bufs[0]
            if p > 0.0:
                seeds.append(draw_member_seeds(generators))
                byte_mask = member_keep_mask(x.shape, p, seeds[-1], x.device)
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
    def backward(
        ctx: Any, grad: Tensor
    ) -> tuple[Tensor, None, None, None, None, None, None, None]:
        masks = ctx.saved_tensors
        nones = (None,) * 7
        if ctx.panel_width and _use_panels(grad, ctx.num_steps, False, ctx.panel_width):
            grad = _panel_steps(
                grad.contiguous(),
                ctx.adj_back,
                ctx.num_steps,
                masks,
                True,
                _panels(grad.size(1), ctx.panel_width),
            )
            return (grad, *nones)
        bufs = (_buffer(grad), _buffer(grad))
        cur = grad.contiguous()
        for k in reversed(range(ctx.num_steps)):
            free = bufs[1] if cur is bufs[0] else bufs[0]
            cur = torch.addmm(free, ctx.adj_back, cur, beta=0.0, out=free)
            if masks:
                cur.mul_(masks[k].to(cur.dtype))
            elif ctx.seeds:
                mask = member_keep_mask(cur.shape, ctx.p, ctx.seeds[k], cur.device)
                cur.mul_(mask.to(cur.dtype))
        return (cur, *nones)


class _Operator(NamedTuple):
    """One Euler step ``scale * (I - step_size * L)`` as the forward uses it.

    Constant weights: ``graph`` and ``transpose`` are CSR matrices whose rows
    are the targets, resp. the sources (for :class:`_EulerSteps`).
    Differentiable weights: ``graph`` and ``edge_weight`` are the arguments of
    ``propagate``: an ``edge_index`` in the layer's ``flow`` with its weights,
    or an ``adj_t`` whose values are the weights (CSR for torch sparse inputs,
    a ``SparseTensor`` for ``SparseTensor`` inputs).
    """

    graph: Adj
    edge_weight: OptTensor = None
    transpose: Tensor | None = None


class _GraphOperators:
    r"""A graph's Laplacian and its Euler operators by scale (one cache entry).

    ``lambda_max`` is the lower estimate of :math:`\lambda_{\max}` of the
    stability check, when it was needed (``None`` when the Gershgorin bound
    alone showed the step stable, or without the check).
    """

    __slots__ = ("lambda_max", "laplacian", "layout", "operators")

    def __init__(self, laplacian: SplitLaplacian, layout: str) -> None:
        self.laplacian = laplacian
        self.layout = layout
        self.operators: dict[float, _Operator] = {}
        self.lambda_max: float | None = None


#: Relative slack of the refusal ``step_size * lambda_max > 2``: rounding in
#: the estimate never refuses a step at the bound.
_STABILITY_RTOL = 1e-6


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

    :math:`A_{ij}` is the weight of the message *into* node :math:`i` from
    node :math:`j` and degrees are weighted in-degrees. With the default
    ``flow="source_to_target"`` an ``edge_index`` column :math:`(j, i)` sends
    from ``edge_index[0]`` to ``edge_index[1]``; with
    ``flow="target_to_source"`` the other way, as in PyG's ``GCNConv`` and
    ``APPNP``. A sparse adjacency is PyG's ``adj_t`` (row :math:`i` holds the
    messages into :math:`i`): it is already oriented, so, as in PyG, it is
    only accepted with ``flow="source_to_target"`` (pass ``adj_t.t()`` for
    the reverse flow).

    The normalization is computed once per call and the :math:`1/(1-p)`
    dropout rescaling is folded into the operator, so a step costs one
    sparse-dense product and one mask.

    Explicit Euler is stable when :math:`\gamma \lambda_{\max}(\mathbf{L})
    < 2`: each eigencomponent is multiplied by :math:`|1 - \gamma \lambda|`
    per step. With the normalization, the layer refuses (``ValueError``) a
    step it knows to be unstable. An upper bound clears most steps at once:
    Gershgorin's :math:`\max_i (|L_{ii}| + \sum_{j \neq i} |L_{ij}|)`, then
    up to 4 Collatz-Wielandt steps that tighten it (one sparse product each,
    see :meth:`~diffresnet_pyg.nn.SplitLaplacian.max_eigenvalue_upper_bound`;
    one clears the authors' step 0.25 on Cora). Otherwise a lower
    estimate :math:`\hat\lambda \leq \lambda_{\max}`, the larger of
    :math:`\max_i L_{ii}` and at most 32 Lanczos steps from a fixed start
    vector (see
    :meth:`~diffresnet_pyg.nn.SplitLaplacian.max_eigenvalue_estimate`; the
    global random state is untouched), refuses :math:`\gamma \max_i L_{ii}
    \geq 2` and :math:`\gamma \hat\lambda > 2 (1 + 10^{-6})`. A stable step
    is never refused, as :math:`\hat\lambda` is a lower bound; it is exact on
    graphs of up to 32 nodes and within a few percent of
    :math:`\lambda_{\max}` on larger ones. ``"rw"`` is estimated through
    ``"sym"``, which has the same eigenvalues (:math:`\mathbf{L}_{rw} =
    \mathbf{D}^{-1/2} \mathbf{L}_{sym} \mathbf{D}^{1/2}`). On a directed graph
    (a non-symmetric Laplacian, whose Ritz values bound nothing) only the
    diagonal is checked. With ``cached=True`` the check runs once per cached
    graph; ``check_stability=False`` turns it off.

    With ``cached=True`` the Laplacian and operators of a graph are kept and
    reused while the same graph is given again: the same ``edge_index`` (or
    adjacency) and ``edge_weight`` objects, not modified since, with the same
    number of nodes, ``x`` dtype and hyperparameters. A modification is seen
    through the tensors' version counters (in-place torch operations) and,
    for writes that bypass them (``tensor.data = ...``, ``set_``, a NumPy
    array sharing the memory), through the data pointers, shapes and, for
    CPU tensors, the sum of the contents (see
    :class:`~diffresnet_pyg.nn.cache.GraphCache`). Any other graph is
    normalized afresh, so a cached layer is not served a stale operator. The
    operators of the two most recently used graphs are kept, as long as those
    graph tensors exist (e.g. the whole graph for evaluation and the current
    mini-batch's subgraph). The cache is derived data, not module state: it
    is not in the ``state_dict``, copies (``copy.deepcopy``, pickling) start
    without it, and after ``.to()`` or ``.double()`` a call with inputs of the
    new device or dtype builds operators of that device or dtype. Operators
    that need gradients (differentiable edge weights) are never cached.

    With constant edge weights the backward stores no features: the step is
    linear, so the gradient is the transposed operator applied ``num_steps``
    times (with the same dropout masks), and memory stays at a few
    :math:`N \times F` buffers whatever ``num_steps`` is. On the CPU, with
    at least ``2 * panel_width`` feature columns and saved masks, all steps
    (forward, and again backward) run on one panel of about ``panel_width``
    columns at a time, which stays in the cache: the columns are independent
    through the steps, so the result is bit for bit that of whole-matrix
    steps, but the features stream through memory once instead of once per
    step. The instance attribute ``panel_width = 0`` turns this off. Differentiable edge
    weights use autograd through message passing (``message`` on an
    ``edge_index``, ``message_and_aggregate`` on a sparse adjacency), which
    stores every step.

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
        cached (bool, optional): Keep the operators of the last two graphs
            for calls with the same graph (see above); cleared by
            :meth:`reset_parameters`. (default: :obj:`False`)
        check_stability (bool, optional): Raise on a step size that is
            certainly unstable for the graph (see above). (default: :obj:`True`)
        recompute_masks (bool, optional): With dropout, save only one seed
            per step and draw the masks again in the backward instead of
            saving them (one byte per entry per step): the backward then
            stores nothing per step, at the cost of drawing every mask twice.
            (default: :obj:`False`)
        **kwargs (optional): Additional arguments of
            :class:`torch_geometric.nn.conv.MessagePassing`, e.g. ``flow``
            (:obj:`"source_to_target"` or :obj:`"target_to_source"`, see
            above). (default: ``aggr="add"``)

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, F)` of one node set
          (a bipartite pair ``(x_src, x_dst)`` raises a :class:`ValueError`),
          edge indices :math:`(2, |\mathcal{E}|)` or a sparse adjacency
          :math:`(|\mathcal{V}|, |\mathcal{V}|)` (torch COO/CSR or
          ``torch_sparse.SparseTensor``, rows are targets), edge weights
          :math:`(|\mathcal{E}|)` *(optional, edge indices only)*
        - **output:** node features :math:`(|\mathcal{V}|, F)`

    Example:
        >>> import torch
        >>> edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
        >>> x = torch.tensor([[1.0], [0.0], [0.0]])
        >>> conv = DiffusionConv(step_size=0.5, num_steps=2, laplacian="sym")
        >>> conv(x, edge_index).sum().item() > 0
        True
        >>> # one directed edge 0 -> 1: node 1 receives, node 0 does not
        >>> directed = torch.tensor([[0], [1]])
        >>> conv = DiffusionConv(0.5, laplacian="combinatorial")
        >>> conv(x[:2], directed).squeeze()
        tensor([1.0000, 0.5000])
        >>> reverse = DiffusionConv(
        ...     0.5, laplacian="combinatorial", flow="target_to_source"
        ... )
        >>> reverse(x[:2], directed).squeeze()  # node 0 receives from node 1
        tensor([0.5000, 0.0000])
    """

    #: Column panel width of the fused CPU path (see above); ``0`` runs the
    #: steps one after the other over the whole feature matrix.
    panel_width: int = PANEL_WIDTH

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
        self._cache = GraphCache(max_entries=2)

    @property
    def dropout_active(self) -> bool:
        """Whether the next call drops entries (training mode and ``dropout > 0``)."""
        return self.training and self.dropout > 0.0

    def reset_parameters(self) -> None:
        """Clear the cached operators (the layer has no parameters)."""
        super().reset_parameters()
        self._cache.clear()

    def _oriented(self, edge_index: Adj) -> Adj:
        """``edge_index`` as ``(source, target)`` columns, or a sparse ``adj_t``."""
        if _graph_layout(edge_index) != "edge_index":
            if self.flow == "target_to_source":
                raise ValueError(_SPARSE_FLOW_ERROR)
            return edge_index
        if self.flow == "target_to_source" and isinstance(edge_index, Tensor):
            return edge_index.flip(0)
        return edge_index

    def split_laplacian(
        self,
        edge_index: Adj,
        edge_weight: OptTensor,
        num_nodes: int,
        dtype: torch.dtype,
    ) -> SplitLaplacian:
        """The layer's Laplacian of a graph (validated; cached if ``cached``).

        Its ``edge_index`` is oriented from sender to receiver whatever the
        layer's ``flow`` (reversed from the input's for
        ``flow="target_to_source"``).
        """
        return self._graph_operators(
            edge_index, edge_weight, num_nodes, dtype
        ).laplacian

    def _graph_operators(
        self,
        edge_index: Adj,
        edge_weight: OptTensor,
        num_nodes: int,
        dtype: torch.dtype,
    ) -> _GraphOperators:
        """The cache entry of a graph: looked up, or built (and stored)."""
        objects = (edge_index, edge_weight)
        extra = (
            num_nodes,
            dtype,
            self.flow,
            self.laplacian,
            self.add_self_loops,
            self.step_size,
        )
        use_cache = self.cached and not _weights_need_grad(edge_index, edge_weight)
        if use_cache:
            entry = self._cache.lookup(objects, extra)
            if entry is not None:
                return entry
        oriented = self._oriented(edge_index)
        lap = split_laplacian(
            oriented,
            edge_weight,
            num_nodes,
            self.laplacian,
            self.add_self_loops,
            dtype,
        )
        entry = _GraphOperators(lap, _graph_layout(edge_index))
        if self.check_stability and lap.num_nodes > 0:
            self._check_step(entry, oriented, edge_weight, num_nodes)
        if use_cache and not (lap.weight.requires_grad or lap.diag.requires_grad):
            self._cache.store(objects, extra, entry)
        return entry

    def _check_step(
        self,
        entry: _GraphOperators,
        graph: Adj,
        edge_weight: OptTensor,
        num_nodes: int,
    ) -> None:
        r"""Refuse a step size that is certainly unstable (see the class docs).

        Stores the estimate of :math:`\lambda_{\max}` in ``entry`` when it
        was computed. ``graph`` is oriented (sender to receiver).
        """
        lap = entry.laplacian
        step = self.step_size
        if step * lap.max_eigenvalue_upper_bound(stop_below=2.0 / step) < 2.0:
            return  # neither lower bound below can refuse it
        diag_max = float(lap.diag.detach().max())
        symmetric = lap
        if self.laplacian == "rw":  # D^-1/2 L_sym D^1/2: the same eigenvalues
            symmetric = split_laplacian(
                graph, edge_weight, num_nodes, "sym", self.add_self_loops, torch.float64
            )
        if symmetric.is_symmetric():
            entry.lambda_max = max(diag_max, symmetric.max_eigenvalue_estimate())
            how = "a Lanczos estimate"
        else:
            entry.lambda_max = diag_max
            how = "its largest diagonal entry (not symmetric: a directed graph)"
        lam = entry.lambda_max
        if step * diag_max >= 2.0 or step * lam > 2.0 * (1.0 + _STABILITY_RTOL):
            raise ValueError(
                f"step_size={step:.6g} is unstable for this graph: the "
                f"{self.laplacian!r} Laplacian has lambda_max >= {lam:.6g} ({how}), "
                f"so step_size * lambda_max >= {step * lam:.4g} > 2 and explicit "
                f"Euler grows that component by |1 - step_size * lambda_max| >= "
                f"{step * lam - 1.0:.4g} per step. The largest stable step is "
                f"2 / lambda_max <= {2.0 / lam:.6g} (laplacian_max_eigenvalue "
                "gives lambda_max exactly): use a smaller step_size, more smaller "
                "steps, or check_stability=False"
            )

    def _operator(self, entry: _GraphOperators, scale: float) -> _Operator:
        """The operator ``scale * (I - step_size * L)`` of a graph (memoized)."""
        op = entry.operators.get(scale)
        if op is not None:
            return op
        lap = entry.laplacian
        n = lap.num_nodes
        edge_index, weight = lap.euler_operator(self.step_size, scale)
        source, target = edge_index
        if not weight.requires_grad:
            adj, adj_back = csr_with_transpose(target, source, weight, n)
            op = _Operator(adj, transpose=adj_back)
        elif entry.layout == "sparse_tensor":
            adj_t = SparseTensor(
                row=target, col=source, value=weight, sparse_sizes=(n, n)
            )
            op = _Operator(adj_t)
        elif entry.layout == "adj_t":
            with quiet_sparse_warnings(unchecked=True):
                adj_t = to_torch_csr_tensor(
                    torch.stack([target, source]), weight, (n, n)
                )
            op = _Operator(adj_t)
        else:
            if self.flow == "target_to_source":
                edge_index = edge_index.flip(0)
            op = _Operator(edge_index, edge_weight=weight)
        entry.operators[scale] = op
        return op

    def forward(
        self,
        x: Tensor,
        edge_index: Adj,
        edge_weight: OptTensor = None,
        *,
        generators: Sequence[torch.Generator] | None = None,
    ) -> Tensor:
        """Apply ``num_steps`` diffusion steps to ``x``.

        Args:
            x (torch.Tensor): Node features ``[num_nodes, channels]``.
            edge_index (torch.Tensor or SparseTensor): The graph: ``edge_index``
                read in the layer's ``flow``, or a sparse ``adj_t``.
            edge_weight (torch.Tensor, optional): Non-negative weights of the
                ``edge_index`` columns.
            generators (sequence of torch.Generator, optional): With dropout,
                ``x`` holds ``B = len(generators)`` members' features side by
                side (``[N, B * C]``) and member :math:`b`'s masks are drawn
                from ``generators[b]`` (CPU generators) as this layer draws
                the masks of an ``[N, C]`` input from the global generator
                (:func:`~diffresnet_pyg.nn.dropout.member_keep_mask`).
                (default: :obj:`None`: one mask from the global generator)
        """
        if isinstance(x, (tuple, list)):
            raise ValueError(
                f"'{self.__class__.__name__}' diffuses features over one node "
                "set, but received a tuple of node features (bipartite message "
                "passing is not supported): pass the features of all nodes as one "
                "[num_nodes, channels] tensor"
            )
        if x.dim() != 2:
            raise ValueError(
                f"'x' must have shape [num_nodes, channels], got {tuple(x.shape)}"
            )
        if self.num_steps == 0:
            return x
        entry = self._graph_operators(edge_index, edge_weight, x.size(0), x.dtype)
        p = self.dropout if self.dropout_active else 0.0
        op = self._operator(entry, 1.0 / (1.0 - p))
        if op.transpose is not None:
            return _EulerSteps.apply(
                x.contiguous(),
                op.graph,
                op.transpose,
                self.num_steps,
                p,
                self.recompute_masks,
                self.panel_width,
                None if generators is None else tuple(generators),
            )
        for _ in range(self.num_steps):
            if p > 0.0:
                seeds = draw_member_seeds(generators)
                x = x * member_keep_mask(x.shape, p, seeds, x.device).to(x.dtype)
            x = self.propagate(op.graph, x=x, edge_weight=op.edge_weight)
        return x

    def message(self, x_j: Tensor, edge_weight: OptTensor) -> Tensor:
        """Neighbour features weighted by the operator's edge weights."""
        return x_j if edge_weight is None else edge_weight.view(-1, 1) * x_j

    def message_and_aggregate(self, adj_t: Adj, x: Tensor) -> Tensor:
        """One step on a sparse operator: ``adj_t @ x``."""
        return spmm(adj_t, x, reduce=self.aggr)

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(step_size={self.step_size}, "
            f"num_steps={self.num_steps}, laplacian={self.laplacian!r}, "
            f"dropout={self.dropout})"
        )


def diffusion(
    x: Tensor,
    edge_index: Adj,
    edge_weight: OptTensor = None,
    *,
    step_size: float,
    num_steps: int = 1,
    laplacian: str = "reference",
    add_self_loops: bool = True,
    dropout: float = 0.0,
    training: bool = True,
    check_stability: bool = True,
    recompute_masks: bool = False,
    flow: str = "source_to_target",
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
        flow=flow,
    )
    return conv.train(training)(x, edge_index, edge_weight)
