r"""GRAND: graph neural diffusion with learned attention.

From `"GRAND: Graph Neural Diffusion" <https://arxiv.org/abs/2106.10934>`_
(Chamberlain et al., ICML 2021). The node states follow the diffusion equation

.. math::
    \frac{\partial \mathbf{X}(t)}{\partial t}
        = \bigl(\mathbf{A}(\mathbf{X}) - \mathbf{I}\bigr)\, \mathbf{X}(t)

with a row-stochastic attention matrix :math:`\mathbf{A}` supported on the
graph's edges, integrated with :func:`torchdiffeq.odeint` between a linear
encoder and a linear decoder.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Linear, Module, Parameter
from torch_geometric.utils import add_remaining_self_loops, scatter, softmax
from torchdiffeq import odeint

from diffresnet_pyg.nn.models.diff_resnet import linear
from diffresnet_pyg.nn.sparse import sparse_dropout

#: :mod:`torchdiffeq` solvers with adaptive step size (``rtol``/``atol`` apply).
ADAPTIVE_METHODS = ("dopri5", "dopri8", "bosh3", "fehlberg2", "adaptive_heun")
#: :mod:`torchdiffeq` solvers on a fixed grid (they need a ``step_size``).
FIXED_GRID_METHODS = (
    "euler",
    "midpoint",
    "heun2",
    "heun3",
    "rk4",
    "explicit_adams",
    "implicit_adams",
)
#: All accepted values of ``method``.
METHODS = ADAPTIVE_METHODS + FIXED_GRID_METHODS
#: Accepted attention normalizations.
ATTENTION_NORMS = ("softmax", "squareplus")

# The authors' best Cora setting: tolerances are ``tol_scale * 1e-9`` (rtol)
# and ``tol_scale * 1e-7`` (atol).
_CORA_TIME = 18.294754260552843
_CORA_DROPOUT = 0.046878964627763316
_CORA_TOL_SCALE = 821.9773048827274
_CORA_MAX_NFE = 2000

AttentionNorm = Literal["softmax", "squareplus"]


def squareplus_normalize(src: Tensor, index: Tensor, num_nodes: int) -> Tensor:
    r"""Normalize ``src`` per group of ``index`` with squareplus instead of exp.

    .. math::
        a_e = \frac{s(z_e - m)}{\sum_{e' : \mathrm{index}(e') =
            \mathrm{index}(e)} s(z_{e'} - m) + 10^{-16}}, \qquad
        s(z) = \tfrac{1}{2}\bigl(z + \sqrt{z^2 + 4}\bigr),

    where :math:`m` is the maximum of ``src`` over *all* entries (as in the
    reference implementation; squareplus is not shift invariant).

    Args:
        src (torch.Tensor): Scores ``[E, ...]``.
        index (torch.Tensor): Group of every score ``[E]``.
        num_nodes (int): Number of groups.

    Example:
        >>> src = torch.tensor([0.0, 0.0, 3.0])
        >>> squareplus_normalize(src, torch.tensor([0, 0, 1]), 2)
        tensor([0.5000, 0.5000, 1.0000])
    """
    out = src - src.max() if src.numel() > 0 else src
    out = 0.5 * (out + torch.sqrt(out * out + 4.0))
    total = scatter(out, index, dim=0, dim_size=num_nodes, reduce="sum") + 1e-16
    return out / total.index_select(0, index)


def propagate(edge_index: Tensor, weight: Tensor, x: Tensor) -> Tensor:
    r"""Sparse product :math:`\mathbf{A} \mathbf{X}` with edge weights as entries.

    :math:`(\mathbf{A} \mathbf{X})_i = \sum_{(j, i)} w_{ji}\, \mathbf{x}_j`:
    edge :math:`(j, i)` (``edge_index[0] = j``, ``edge_index[1] = i``) sends
    :math:`\mathbf{x}_j` to node :math:`i`, so :math:`A_{ij} = w_{ji}`.

    Args:
        edge_index (torch.Tensor): Edges ``[2, E]``.
        weight (torch.Tensor): Edge weights ``[E]``.
        x (torch.Tensor): Node states ``[N, F]``.

    Example:
        >>> edge_index = torch.tensor([[0, 1], [1, 1]])
        >>> propagate(edge_index, torch.tensor([0.5, 0.5]), torch.eye(2))
        tensor([[0.0000, 0.0000],
                [0.5000, 0.5000]])
    """
    src, dst = edge_index[0], edge_index[1]
    messages = x.index_select(0, src) * weight.unsqueeze(-1)
    return scatter(messages, dst, dim=0, dim_size=x.size(0), reduce="sum")


class GRANDAttention(Module):
    r"""Multi-head scaled dot-product attention over a graph's edges.

    For every head :math:`h` with query/key maps :math:`\mathbf{W}_Q^h,
    \mathbf{W}_K^h` of width :math:`d_k` = ``attention_channels // heads``:

    .. math::
        a^h_{ij} = \operatorname*{softmax}_{j \in \mathcal{N}(i)} \left(
            \frac{(\mathbf{W}_Q^h \mathbf{x}_i + \mathbf{b}_Q^h)^\top
            (\mathbf{W}_K^h \mathbf{x}_j + \mathbf{b}_K^h)}{\sqrt{d_k}}\right),

    where :math:`\mathcal{N}(i)` are the sources :math:`j` of the edges
    :math:`(j, i)` (self loops included when present), so
    :math:`\sum_{j} a^h_{ij} = 1` for every node with an incoming edge.
    ``normalization="squareplus"`` replaces :math:`\exp` by squareplus (see
    :func:`squareplus_normalize`).

    As in the reference implementation, :meth:`reset_parameters` sets the
    query and key *weights* to the constant :math:`10^{-5}` (biases keep
    PyTorch's default initialization): the initial attention is then almost
    uniform over every neighbourhood, i.e. close to the random-walk normalized
    adjacency, and is learned from there.

    Args:
        channels (int): Width of the node states.
        heads (int, optional): Number of heads. (default: :obj:`8`)
        attention_channels (int, optional): Total query/key width (a multiple
            of ``heads``). (default: :obj:`128`)
        normalization (str, optional): ``"softmax"`` or ``"squareplus"``.
            (default: :obj:`"softmax"`)
    """

    def __init__(
        self,
        channels: int,
        heads: int = 8,
        attention_channels: int = 128,
        normalization: AttentionNorm = "softmax",
    ) -> None:
        super().__init__()
        _check_positive_int("channels", channels)
        _check_positive_int("heads", heads)
        _check_positive_int("attention_channels", attention_channels)
        if attention_channels % heads != 0:
            raise ValueError(
                f"'attention_channels' ({attention_channels}) must be divisible "
                f"by 'heads' ({heads})"
            )
        if normalization not in ATTENTION_NORMS:
            raise ValueError(
                "'attention_norm' (normalization) must be one of "
                f"{ATTENTION_NORMS}, got {normalization!r}"
            )
        self.channels = channels
        self.heads = heads
        self.attention_channels = attention_channels
        self.head_channels = attention_channels // heads
        self.normalization = normalization
        self.query = Linear(channels, attention_channels)
        self.key = Linear(channels, attention_channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Constant ``1e-5`` weights, default biases (the reference init)."""
        for lin in (self.query, self.key):
            lin.reset_parameters()
            torch.nn.init.constant_(lin.weight, 1e-5)

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        """Return the attention ``[E, heads]`` of every edge and head.

        Args:
            x (torch.Tensor): Node states ``[N, channels]``.
            edge_index (torch.Tensor): Edges ``[2, E]`` (source, target).
        """
        num_nodes = x.size(0)
        shape = (num_nodes, self.heads, self.head_channels)
        query = self.query(x).view(shape)
        key = self.key(x).view(shape)
        src, dst = edge_index[0], edge_index[1]
        scores = (query.index_select(0, dst) * key.index_select(0, src)).sum(-1)
        scores = scores / math.sqrt(self.head_channels)
        if self.normalization == "softmax":
            return softmax(scores, dst, num_nodes=num_nodes)
        return squareplus_normalize(scores, dst, num_nodes)

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self.channels}, heads={self.heads}, "
            f"attention_channels={self.attention_channels}, "
            f"normalization={self.normalization!r})"
        )


class GRANDODEFunc(Module):
    r"""Right-hand side of the GRAND diffusion equation.

    .. math::
        f(t, \mathbf{X}) = \sigma(\alpha)\,\bigl(\bar{\mathbf{A}}\,\mathbf{X}
            - \mathbf{X}\bigr) + \beta\, \mathbf{X}(0),
        \qquad \bar{\mathbf{A}} = \frac{1}{H} \sum_{h=1}^{H} \mathbf{A}^h,

    with trainable scalars :math:`\alpha, \beta` (both initialized to 0), the
    source term :math:`\beta \mathbf{X}(0)` only when ``add_source=True``, and
    the head-averaged attention :math:`\bar{\mathbf{A}}` of
    :class:`GRANDAttention` evaluated at :math:`\mathbf{X}(0)` once
    (GRAND-l, ``nonlinear=False``) or at the current state :math:`\mathbf{X}`
    in every evaluation (GRAND-nl, ``nonlinear=True``).

    Call :meth:`set_state` with :math:`\mathbf{X}(0)` and the edges before
    integrating; :attr:`nfe` counts the evaluations since then.

    Args:
        channels (int): Width of the node states.
        heads (int, optional): Attention heads. (default: :obj:`8`)
        attention_channels (int, optional): Total query/key width.
            (default: :obj:`128`)
        nonlinear (bool, optional): Recompute the attention from the current
            state in every evaluation. (default: :obj:`False`)
        add_source (bool, optional): Add :math:`\beta \mathbf{X}(0)`.
            (default: :obj:`True`)
        attention_norm (str, optional): ``"softmax"`` or ``"squareplus"``.
            (default: :obj:`"softmax"`)
        detach_source (bool, optional): Use :math:`\mathbf{X}(0)` without
            gradient in the source term, as the reference implementation
            does. (default: :obj:`True`)
        max_nfe (int, optional): Raise a :class:`RuntimeError` instead of
            evaluating more than this many times per integration (``None``:
            no limit). (default: :obj:`None`)
    """

    def __init__(
        self,
        channels: int,
        heads: int = 8,
        attention_channels: int = 128,
        nonlinear: bool = False,
        add_source: bool = True,
        attention_norm: AttentionNorm = "softmax",
        detach_source: bool = True,
        max_nfe: int | None = None,
    ) -> None:
        super().__init__()
        if max_nfe is not None:
            _check_positive_int("max_nfe", max_nfe)
        self.attention = GRANDAttention(
            channels, heads, attention_channels, attention_norm
        )
        self.alpha_train = Parameter(torch.zeros(()))
        self.beta_train = Parameter(torch.zeros(()))
        self.nonlinear = nonlinear
        self.add_source = add_source
        self.detach_source = detach_source
        self.max_nfe = max_nfe
        self.nfe = 0
        self.edge_index: Tensor | None = None
        self.x0: Tensor | None = None
        self.weight: Tensor | None = None

    def reset_parameters(self) -> None:
        r"""Reinitialize the attention and set :math:`\alpha = \beta = 0`."""
        self.attention.reset_parameters()
        with torch.no_grad():
            self.alpha_train.zero_()
            self.beta_train.zero_()

    @property
    def alpha(self) -> Tensor:
        r"""The diffusivity :math:`\sigma(\alpha) \in (0, 1)`."""
        return torch.sigmoid(self.alpha_train)

    def attention_weights(self, x: Tensor, edge_index: Tensor) -> Tensor:
        r"""Head-averaged attention ``[E]``: the entries of :math:`\bar{\mathbf{A}}`.

        Entry :math:`e` of edge :math:`(j, i)` is :math:`\bar A_{ij}`.
        """
        return self.attention(x, edge_index).mean(dim=-1)

    def set_state(self, x0: Tensor, edge_index: Tensor) -> None:
        r"""Fix :math:`\mathbf{X}(0)` and the edges, reset :attr:`nfe`.

        For GRAND-l this computes the attention from ``x0`` (with gradient).
        """
        self.edge_index = edge_index
        self.x0 = x0.detach() if self.detach_source else x0
        self.weight = None if self.nonlinear else self.attention_weights(x0, edge_index)
        self.nfe = 0

    def clear_state(self) -> None:
        """Drop the tensors stored by :meth:`set_state` (keeps :attr:`nfe`)."""
        self.edge_index = self.x0 = self.weight = None

    def forward(self, t: Tensor, x: Tensor) -> Tensor:
        """Evaluate :math:`f(t, X)` (``t`` is unused: the system is autonomous)."""
        if self.edge_index is None or self.x0 is None:
            raise RuntimeError("Call 'set_state(x0, edge_index)' before integrating")
        if self.max_nfe is not None and self.nfe >= self.max_nfe:
            raise RuntimeError(
                f"GRAND: the ODE solver needed more than max_nfe={self.max_nfe} "
                "function evaluations; loosen 'rtol'/'atol', shorten 'time', use "
                "a fixed-grid method or raise 'max_nfe'"
            )
        self.nfe += 1
        if self.weight is None:
            weight = self.attention_weights(x, self.edge_index)
        else:
            weight = self.weight
        out = self.alpha * (propagate(self.edge_index, weight, x) - x)
        if self.add_source:
            out = out + self.beta_train * self.x0
        return out

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self.attention.channels}, "
            f"nonlinear={self.nonlinear}, add_source={self.add_source})"
        )


class GRAND(Module):
    r"""Graph neural diffusion (GRAND-l / GRAND-nl).

    From `"GRAND: Graph Neural Diffusion" <https://arxiv.org/abs/2106.10934>`_
    (Chamberlain et al., ICML 2021):

    .. math::
        \mathbf{X}(0) &= \mathrm{dropout}_{p_{\mathrm{in}}}(\mathbf{X}_{\mathrm{in}})
            \,\mathbf{W}_1 + \mathbf{b}_1 \\
        \frac{\partial \mathbf{X}}{\partial t} &= \sigma(\alpha)\,
            \bigl(\bar{\mathbf{A}}(\mathbf{X}) - \mathbf{I}\bigr)\,\mathbf{X}
            + \beta\,\mathbf{X}(0), \qquad t \in [0, T] \\
        \mathbf{Y} &= \mathrm{dropout}_{p}\bigl(\mathrm{ReLU}(\mathbf{X}(T))\bigr)
            \,\mathbf{W}_2 + \mathbf{b}_2

    :math:`\bar{\mathbf{A}}` is the head-averaged, row-stochastic multi-head
    scaled dot-product attention over the edges plus self loops
    (:class:`GRANDAttention`), computed once from :math:`\mathbf{X}(0)`
    (GRAND-l) or from the current state at every function evaluation
    (GRAND-nl); :math:`\alpha, \beta` are trainable scalars initialized to 0
    and the source term is :obj:`add_source`. The ODE is solved with
    :func:`torchdiffeq.odeint` (gradients by backpropagation through the
    solver). Defaults are the authors' best Cora setting (``time``,
    ``dropout``, tolerances ``tol_scale * 1e-9`` / ``tol_scale * 1e-7`` with
    ``tol_scale = 821.98``, ``max_nfe``). :attr:`nfe` is the number of function
    evaluations of the last forward pass. ``x`` may be a sparse COO/CSR tensor
    (bag-of-words features): input dropout then acts on its stored values and
    the encoder uses a sparse-dense product.

    Args:
        in_channels (int): Input feature width.
        hidden_channels (int): Width of the diffused node states.
        out_channels (int): Number of outputs (classes).
        time (float, optional): Integration time :math:`T > 0`.
            (default: :obj:`18.294754260552843`)
        method (str, optional): A :mod:`torchdiffeq` solver, one of
            :obj:`METHODS`. (default: :obj:`"dopri5"`)
        step_size (float, optional): Step of the fixed-grid solvers (required
            by them, ignored by the adaptive ones). (default: :obj:`None`)
        rtol (float, optional): Relative tolerance of adaptive solvers.
            (default: ``tol_scale * 1e-9`` :math:`\approx 8.22 \cdot 10^{-7}`)
        atol (float, optional): Absolute tolerance of adaptive solvers.
            (default: ``tol_scale * 1e-7`` :math:`\approx 8.22 \cdot 10^{-5}`)
        input_dropout (float, optional): Dropout on the input features.
            (default: :obj:`0.5`)
        dropout (float, optional): Dropout before the decoder.
            (default: :obj:`0.046878964627763316`)
        heads (int, optional): Attention heads. (default: :obj:`8`)
        attention_channels (int, optional): Total query/key width (a multiple
            of ``heads``). (default: :obj:`128`)
        nonlinear (bool, optional): GRAND-nl (attention recomputed from the
            current state) instead of GRAND-l. (default: :obj:`False`)
        add_source (bool, optional): Add the source term
            :math:`\beta \mathbf{X}(0)`. (default: :obj:`True`)
        self_loops (bool, optional): Add the missing self loops to the edges.
            (default: :obj:`True`)
        max_num_steps (int, optional): Step limit of the adaptive solvers
            (``None``: :mod:`torchdiffeq`'s default); exceeding it raises a
            :class:`RuntimeError`. (default: :obj:`None`)
        max_nfe (int, optional): Raise a :class:`RuntimeError` instead of
            evaluating the right-hand side more than this many times in one
            forward pass (``None``: no limit). (default: :obj:`2000`)
        attention_norm (str, optional): ``"softmax"`` (paper) or
            ``"squareplus"``. (default: :obj:`"softmax"`)
        detach_source (bool, optional): Stop the gradient through
            :math:`\mathbf{X}(0)` in the source term, as the reference
            implementation does. (default: :obj:`True`)

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, F_{in})` (dense or
          sparse), edge indices :math:`(2, |\mathcal{E}|)`
        - **output:** :math:`(|\mathcal{V}|, F_{out})`

    Example:
        >>> import torch
        >>> edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
        >>> model = GRAND(8, 16, 3, time=3.0, heads=2, attention_channels=8)
        >>> model(torch.randn(3, 8), edge_index).shape
        torch.Size([3, 3])
        >>> model.nfe > 0
        True
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        out_channels: int,
        time: float = _CORA_TIME,
        method: str = "dopri5",
        step_size: float | None = None,
        rtol: float = _CORA_TOL_SCALE * 1e-9,
        atol: float = _CORA_TOL_SCALE * 1e-7,
        input_dropout: float = 0.5,
        dropout: float = _CORA_DROPOUT,
        heads: int = 8,
        attention_channels: int = 128,
        nonlinear: bool = False,
        add_source: bool = True,
        self_loops: bool = True,
        max_num_steps: int | None = None,
        max_nfe: int | None = _CORA_MAX_NFE,
        attention_norm: AttentionNorm = "softmax",
        detach_source: bool = True,
    ) -> None:
        super().__init__()
        _check_positive_int("in_channels", in_channels)
        _check_positive_int("hidden_channels", hidden_channels)
        _check_positive_int("out_channels", out_channels)
        if not _is_real(time) or not 0.0 < time < math.inf:
            raise ValueError(f"'time' must be a finite number > 0, got {time!r}")
        if method not in METHODS:
            raise ValueError(
                f"Unknown ODE solver 'method' {method!r}; expected one of the "
                f"torchdiffeq solvers {', '.join(METHODS)}"
            )
        if step_size is not None and (
            not _is_real(step_size) or not 0.0 < step_size < math.inf
        ):
            raise ValueError(
                f"'step_size' must be a finite number > 0, got {step_size!r}"
            )
        if method in FIXED_GRID_METHODS and step_size is None:
            raise ValueError(
                f"The fixed-grid solver {method!r} needs a 'step_size' (the "
                "reference implementation uses 1.0)"
            )
        for name, value in (("rtol", rtol), ("atol", atol)):
            if not _is_real(value) or not 0.0 < value < math.inf:
                raise ValueError(f"'{name}' must be a finite number > 0, got {value!r}")
        for name, value in (("input_dropout", input_dropout), ("dropout", dropout)):
            if not _is_real(value) or not 0.0 <= value < 1.0:
                raise ValueError(f"'{name}' must be in [0, 1), got {value!r}")
        if max_num_steps is not None:
            _check_positive_int("max_num_steps", max_num_steps)
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.out_channels = out_channels
        self.time = float(time)
        self.method = method
        self.step_size = None if step_size is None else float(step_size)
        self.rtol = float(rtol)
        self.atol = float(atol)
        self.input_dropout = float(input_dropout)
        self.dropout = float(dropout)
        self.self_loops = self_loops
        self.max_num_steps = max_num_steps
        self.lin1 = Linear(in_channels, hidden_channels)
        self.lin2 = Linear(hidden_channels, out_channels)
        self.func = GRANDODEFunc(
            hidden_channels,
            heads,
            attention_channels,
            nonlinear=nonlinear,
            add_source=add_source,
            attention_norm=attention_norm,
            detach_source=detach_source,
            max_nfe=max_nfe,
        )

    @property
    def nfe(self) -> int:
        """Function evaluations of the last integration."""
        return self.func.nfe

    def reset_parameters(self) -> None:
        """Reinitialize all parameters."""
        self.lin1.reset_parameters()
        self.lin2.reset_parameters()
        self.func.reset_parameters()

    def integrate(self, x: Tensor, edge_index: Tensor) -> Tensor:
        r"""Solve the diffusion equation from :math:`\mathbf{X}(0)` = ``x``.

        Args:
            x (torch.Tensor): Encoded node states ``[N, hidden_channels]``.
            edge_index (torch.Tensor): Edges ``[2, E]`` (self loops are added
                here when :obj:`self_loops` is set).

        Returns:
            torch.Tensor: :math:`\mathbf{X}(T)`, ``[N, hidden_channels]``.
        """
        if self.self_loops:
            edge_index, _ = add_remaining_self_loops(edge_index, num_nodes=x.size(0))
        t = torch.tensor([0.0, self.time], dtype=x.dtype, device=x.device)
        if self.method in FIXED_GRID_METHODS:
            options = {"step_size": self.step_size}
        elif self.max_num_steps is not None:
            options = {"max_num_steps": self.max_num_steps}
        else:
            options = {}
        self.func.set_state(x, edge_index)
        try:
            out = odeint(
                self.func,
                x,
                t,
                rtol=self.rtol,
                atol=self.atol,
                method=self.method,
                options=options,
            )
        except AssertionError as err:  # torchdiffeq's step limit / dt underflow
            raise RuntimeError(
                f"GRAND: the ODE solver {self.method!r} failed: {err}"
            ) from err
        finally:
            self.func.clear_state()
        return out[-1]

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        """Return the ``[num_nodes, out_channels]`` logits.

        Args:
            x (torch.Tensor): Node features ``[N, in_channels]`` (dense, or
                sparse COO/CSR).
            edge_index (torch.Tensor): Edges ``[2, E]``.
        """
        if x.dim() != 2 or x.size(1) != self.in_channels:
            raise ValueError(
                f"'x' must have shape [num_nodes, {self.in_channels}], got "
                f"{tuple(x.shape)}"
            )
        if not x.is_floating_point():
            raise ValueError(f"'x' must be floating point, got {x.dtype}")
        if edge_index.dim() != 2 or edge_index.size(0) != 2:
            raise ValueError(
                f"'edge_index' must have shape [2, num_edges], got "
                f"{tuple(edge_index.shape)}"
            )
        x = sparse_dropout(x, self.input_dropout, self.training)
        x = linear(x, self.lin1)
        x = self.integrate(x, edge_index)
        x = F.relu(x)
        x = F.dropout(x, self.dropout, self.training)
        return self.lin2(x)

    def __repr__(self) -> str:
        attention = self.func.attention
        return (
            f"{self.__class__.__name__}({self.in_channels}, {self.hidden_channels}, "
            f"{self.out_channels}, time={self.time:g}, method={self.method!r}, "
            f"heads={attention.heads}, nonlinear={self.func.nonlinear})"
        )


def _is_real(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_positive_int(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"'{name}' must be an integer >= 1, got {value!r}")
