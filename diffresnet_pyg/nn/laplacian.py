r"""Graph Laplacians for diffusion, written as :math:`L = \mathrm{diag}(d) - W`.

Every Laplacian used by the diffusion layers is stored in the same split form:
the off-diagonal weights :math:`W_{ij}` (``i != j``) as an edge list and the
diagonal :math:`d` as a vector. One explicit Euler step of size
:math:`\gamma` is then the sparse operator

.. math::
    M = I - \gamma L, \qquad M_{ii} = 1 - \gamma d_i, \qquad
    M_{ij} = \gamma W_{ij} \; (i \neq j).

Graph convention (PyG's ``source_to_target`` flow): an edge ``(j, i)`` in
``edge_index`` with weight :math:`a` is the matrix entry :math:`A_{ij} = a`,
so row :math:`i` collects the messages *into* node :math:`i` and degrees are
weighted in-degrees :math:`\deg_i = \sum_j A_{ij}`. For undirected graphs all
of this is symmetric.

The Laplacians (always named, never implicit):

* ``"reference"`` (the Diff-ResNet authors' graph code):
  :math:`\hat A = \tilde D^{-1/2} (A + I) \tilde D^{-1/2}` (GCN
  renormalization) and :math:`L = \mathrm{diag}(\hat A \mathbf 1) - \hat A`.
  Self loops cancel in :math:`L`; they only change the degrees. This is not
  :math:`I - \hat A`.
* ``"sym"``: :math:`L = I - D^{-1/2} A D^{-1/2}`.
* ``"rw"``: :math:`L = I - D^{-1} A`.
* ``"combinatorial"``: :math:`L = \mathrm{diag}(A \mathbf 1) - A` on the weights
  as given (used with the pre-normalized Gaussian kNN weights of few-shot
  episodes).

With ``add_self_loops=True``, :math:`A` gets a self loop of weight 1 on every
node that has none (existing self loops keep their weight, as in PyG's
``gcn_norm``). Zero-degree rows of :math:`D^{-1/2}` and :math:`D^{-1}` are set
to 0, so an isolated node has :math:`L_{ii} = 1` for ``"sym"`` and ``"rw"``
and :math:`L_{ii} = 0` for the other two.

Stability of the explicit Euler step needs :math:`\lambda_{\max}(L)`. Cheap
bounds of it are methods of :class:`SplitLaplacian`: the largest diagonal
entry and the Lanczos estimate :meth:`~SplitLaplacian.max_eigenvalue_estimate`
are lower bounds (for symmetric :math:`L`), and
:meth:`~SplitLaplacian.max_eigenvalue_upper_bound` (Gershgorin's, tightened
by Collatz-Wielandt steps) is an upper bound (for any :math:`L`).
:func:`laplacian_max_eigenvalue` computes the exact value (ARPACK on the CPU,
run to convergence).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse
import scipy.sparse.linalg
import torch
from torch import Tensor
from torch_geometric.utils import add_remaining_self_loops, scatter, to_edge_index

from diffresnet_pyg import typing as dtyping

LAPLACIANS: tuple[str, ...] = ("reference", "sym", "rw", "combinatorial")

#: Seed of the private generator that draws the start and probe vectors of
#: the eigenvalue estimates (the global RNG is never touched).
ESTIMATE_SEED = 0x5EED

#: Lanczos steps of :meth:`SplitLaplacian.max_eigenvalue_estimate` at most.
LANCZOS_STEPS = 32


def _probe_vectors(count: int, n: int, device: torch.device) -> list[Tensor]:
    """``count`` fixed pseudo-random float64 vectors in ``[-1, 1)^n``."""
    gen = torch.Generator().manual_seed(ESTIMATE_SEED)
    draw = torch.rand(count, n, generator=gen, dtype=torch.float64) * 2.0 - 1.0
    return list(draw.to(device).unbind(0))


class SplitLaplacian(NamedTuple):
    r"""A Laplacian :math:`L = \mathrm{diag}(d) - W` in split form.

    Attributes:
        edge_index: Off-diagonal edges ``(source, target)``, shape ``[2, E]``.
        weight: The weights :math:`W_{ij}` of those edges, shape ``[E]``.
        diag: The diagonal :math:`d`, shape ``[N]``.
    """

    edge_index: Tensor
    weight: Tensor
    diag: Tensor

    @property
    def num_nodes(self) -> int:
        """Number of nodes :math:`N`."""
        return self.diag.numel()

    def to_dense(self) -> Tensor:
        """The dense ``[N, N]`` Laplacian (rows are targets)."""
        n = self.num_nodes
        out = torch.diag(self.diag)
        src, dst = self.edge_index
        return out.index_put((dst, src), -self.weight, accumulate=True).view(n, n)

    def _matvec(self, absolute: bool = False) -> Callable[[Tensor], Tensor]:
        """``v -> L @ v`` (or ``|L| @ v``) in float64 from the edge list."""
        src, dst = self.edge_index
        weight = self.weight.detach().to(torch.float64)
        diag = self.diag.detach().to(torch.float64)
        if absolute:
            weight, diag = weight.abs(), diag.abs()
        else:
            weight = -weight

        def matvec(v: Tensor) -> Tensor:
            return (diag * v).index_add_(0, dst, weight * v[src])

        return matvec

    def max_eigenvalue_upper_bound(
        self, steps: int = 4, stop_below: float = 0.0
    ) -> float:
        r"""An upper bound of :math:`|\lambda|` for every eigenvalue of :math:`L`.

        For every :math:`x > 0` (Collatz-Wielandt, with :math:`|L|` the
        entrywise absolute value),

        .. math::
            |\lambda| \leq \rho(L) \leq \rho(|L|) \leq
            \max_i \frac{(|L| x)_i}{x_i}.

        :math:`x = \mathbf 1` gives Gershgorin's bound :math:`\max_i (|d_i| +
        \sum_{j \neq i} |W_{ij}|)`, which can be twice :math:`\lambda_{\max}`
        (the ``"reference"`` and ``"combinatorial"`` :math:`d_i` are row
        sums). Each further step takes :math:`x \leftarrow |L| x` (one sparse
        product), which tightens the bound toward :math:`\rho(|L|)`: on the
        Cora LCC ``"reference"`` from 11.5 to 6.3 in one step
        (:math:`\lambda_{\max} = 5.78`). Holds for any :math:`L`, symmetric
        or not; it cannot refuse a step, but a step with :math:`\gamma` times
        it below 2 needs no further check.

        Args:
            steps: Products with :math:`|L|` after Gershgorin's bound.
            stop_below: Stop as soon as the bound is below this.

        Returns:
            The smallest bound found, rounded up by a relative
            :math:`10^{-12}` (float64 rounding never puts it below
            :math:`\rho(|L|)`).

        Example:
            >>> import torch
            >>> path = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
            >>> lap = split_laplacian(path, laplacian="combinatorial")
            >>> round(lap.max_eigenvalue_upper_bound(steps=0), 6)  # Gershgorin
            4.0
            >>> round(lap.max_eigenvalue_upper_bound(steps=20), 3)  # lambda_max = 3
            3.0
        """
        if self.num_nodes == 0:
            return 0.0
        matvec = self._matvec(absolute=True)
        x = torch.ones_like(self.diag, dtype=torch.float64)
        bound = float("inf")
        for step in range(steps + 1):
            y = matvec(x)
            bound = min(bound, float((y / x).max()) * (1.0 + 1e-12))
            if bound < stop_below or step == steps:
                break
            top = float(y.max())
            if top == 0.0:  # L = 0
                break
            x = y / top + 1e-6  # positive, so the next ratio bounds rho too
        return bound

    def is_symmetric(self, rtol: float = 1e-8) -> bool:
        r"""Whether :math:`W` is symmetric (up to ``rtol``), by a random probe.

        Compares :math:`u^\top W v` with :math:`v^\top W u` for two fixed
        pseudo-random vectors :math:`u, v`: equal for a symmetric :math:`W`
        (up to rounding), and, for a non-symmetric one, equal only for
        :math:`u, v` in a set of measure zero. One pass over the edges, no
        sort. Undirected graphs give symmetric ``"reference"``, ``"sym"`` and
        ``"combinatorial"`` Laplacians; ``"rw"`` is symmetric only on regular
        graphs (but similar to ``"sym"``).

        Args:
            rtol: Tolerance relative to :math:`\sum_e |W_e u_i v_j|`.

        Example:
            >>> import torch
            >>> path = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
            >>> split_laplacian(path).is_symmetric()
            True
            >>> split_laplacian(path, laplacian="rw").is_symmetric()
            False
        """
        if self.weight.numel() == 0:
            return True
        u, v = _probe_vectors(2, self.num_nodes, self.diag.device)
        src, dst = self.edge_index
        weight = self.weight.detach().to(torch.float64)
        forward = weight * u[dst] * v[src]
        backward = weight * v[dst] * u[src]
        scale = float(forward.abs().sum())
        return abs(float(forward.sum() - backward.sum())) <= rtol * scale

    def max_eigenvalue_estimate(
        self, max_steps: int = LANCZOS_STEPS, rtol: float = 1e-7
    ) -> float:
        r"""A lower estimate of :math:`\lambda_{\max}(L)` for symmetric :math:`L`.

        At most ``max_steps`` Lanczos steps (one sparse product each, in
        float64, without reorthogonalization) from a fixed pseudo-random start
        vector, stopped once the largest Ritz value :math:`\theta` has
        converged (residual :math:`\beta_k |s_k| \leq` ``rtol`` :math:`\theta`)
        or the Krylov space is invariant. Ritz values lie in the spectrum, so

        .. math::
            \max\big(\theta, \max_i d_i\big) \leq \lambda_{\max}(L)

        up to rounding (a relative :math:`10^{-12}` or so); the estimate is
        exact when the Krylov space is exhausted (at most ``max_steps``
        nodes) and within a few percent of :math:`\lambda_{\max}` otherwise
        (closest on graphs with hubs, where the top of the spectrum is
        isolated; slowest on long paths and grids). Deterministic: the start
        vector comes from a private generator (:data:`ESTIMATE_SEED`), so the
        global random state is untouched.

        Args:
            max_steps: Most Lanczos steps. (default: :data:`LANCZOS_STEPS`)
            rtol: Relative residual at which the estimate has converged.

        Raises:
            ValueError: If :math:`L` is not symmetric (see
                :meth:`is_symmetric`): its Ritz values then bound nothing.

        Example:
            >>> import torch
            >>> path = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
            >>> lap = split_laplacian(path, laplacian="combinatorial")
            >>> round(lap.max_eigenvalue_estimate(), 6)  # exact: 3 nodes
            3.0
        """
        if not isinstance(max_steps, int) or max_steps < 1:
            raise ValueError(f"'max_steps' must be an integer >= 1, got {max_steps!r}")
        n = self.num_nodes
        if n == 0:
            raise ValueError("The graph has no nodes")
        if not self.is_symmetric():
            raise ValueError(
                "The Laplacian is not symmetric (a directed graph, or 'rw', which "
                "has the eigenvalues of 'sym'): a Lanczos estimate bounds nothing"
            )
        diag_max = float(self.diag.detach().max())
        (v,) = _probe_vectors(1, n, self.diag.device)
        v = v / v.norm()
        previous = torch.zeros_like(v)
        alphas: list[float] = []
        betas: list[float] = []
        theta = diag_max
        matvec = self._matvec()
        for _ in range(min(max_steps, n)):
            w = matvec(v)
            alpha = float(w @ v)
            w -= alpha * v
            if betas:
                w -= betas[-1] * previous
            beta = float(w.norm())
            alphas.append(alpha)
            # torch's LAPACK, not NumPy's: its threads would then compete
            # with torch's for the cores during the next products
            off = torch.tensor(betas, dtype=torch.float64)
            tridiagonal = (
                torch.diag(torch.tensor(alphas, dtype=torch.float64))
                + torch.diag(off, 1)
                + torch.diag(off, -1)
            )
            ritz, vectors = torch.linalg.eigh(tridiagonal)
            theta = max(theta, float(ritz[-1]))
            if beta * abs(float(vectors[-1, -1])) <= rtol * max(abs(theta), 1e-300):
                break
            betas.append(beta)
            previous, v = v, w / beta
        return theta

    def euler_operator(
        self, step_size: float, scale: float = 1.0
    ) -> tuple[Tensor, Tensor]:
        r"""Edges and weights of :math:`\mathrm{scale} \cdot (I - \gamma L)`.

        Args:
            step_size: The Euler step :math:`\gamma`.
            scale: A factor applied to the whole operator (used to fold the
                :math:`1 / (1 - p)` dropout rescaling into it).

        Returns:
            ``(edge_index, edge_weight)`` with one self loop per node appended
            after the off-diagonal edges.
        """
        n = self.num_nodes
        loop = torch.arange(n, device=self.diag.device)
        edge_index = torch.cat([self.edge_index, loop.expand(2, n)], dim=1)
        weight = torch.cat([step_size * self.weight, 1.0 - step_size * self.diag])
        return edge_index, weight * scale


def graph_to_edge_index(
    graph: Any, edge_weight: Tensor | None = None
) -> tuple[Tensor, Tensor | None]:
    """Turn any supported graph layout into ``(edge_index, edge_weight)``.

    Args:
        graph: An ``edge_index`` tensor of shape ``[2, E]``, a torch sparse
            adjacency (COO or CSR) or a ``torch_sparse.SparseTensor``. Sparse
            layouts are read as PyG reads ``adj_t``: row ``i`` holds the
            edges *into* node ``i``.
        edge_weight: Weights for an ``edge_index`` input (must be ``None`` for
            sparse layouts, whose values are the weights).

    Returns:
        The edge list ``(source, target)`` and the weights (``None`` when the
        graph is unweighted).

    Raises:
        ValueError: On a malformed ``edge_index`` or mismatched weights.
    """
    if isinstance(graph, Tensor) and graph.layout in (
        torch.sparse_coo,
        torch.sparse_csr,
    ):
        if edge_weight is not None:
            raise ValueError(
                "'edge_weight' must be None when the graph is a sparse tensor "
                "(its values are the weights)"
            )
        if graph.dim() != 2 or graph.size(0) != graph.size(1):
            raise ValueError(
                f"A sparse adjacency must be square, got shape {tuple(graph.shape)}"
            )
        if graph.layout == torch.sparse_coo and (
            graph.is_coalesced() or graph.requires_grad
        ):
            # differentiable, unlike the _coalesced_ of PyG's to_edge_index
            graph = graph.coalesce()
            return graph.indices().detach().flip(0), graph.values()
        index, value = to_edge_index(graph)
        return index.flip(0), value
    if dtyping.WITH_TORCH_SPARSE:
        from torch_sparse import SparseTensor

        if isinstance(graph, SparseTensor):
            if edge_weight is not None:
                raise ValueError(
                    "'edge_weight' must be None when the graph is a SparseTensor"
                )
            row, col, value = graph.coo()
            return torch.stack([col, row]), value
    if not isinstance(graph, Tensor):
        raise ValueError(
            "The graph must be an 'edge_index' tensor, a torch sparse tensor or "
            f"a torch_sparse.SparseTensor, got {type(graph).__name__}"
        )
    if graph.dim() != 2 or graph.size(0) != 2:
        raise ValueError(
            f"'edge_index' must have shape [2, num_edges], got {tuple(graph.shape)}"
        )
    if graph.dtype != torch.long:
        raise ValueError(f"'edge_index' must be int64, got {graph.dtype}")
    if edge_weight is not None and (
        edge_weight.dim() != 1 or edge_weight.numel() != graph.size(1)
    ):
        raise ValueError(
            f"'edge_weight' must have shape [{graph.size(1)}] (one weight per "
            f"edge), got {tuple(edge_weight.shape)}"
        )
    return graph, edge_weight


def graph_num_nodes(graph: Any, num_nodes: int | None) -> int:
    """Number of nodes of a graph in any supported layout."""
    if isinstance(graph, Tensor) and graph.layout == torch.strided:
        inferred = int(graph.max()) + 1 if graph.numel() > 0 else 0
        if num_nodes is None:
            return inferred
        if inferred > num_nodes:
            raise ValueError(
                f"'edge_index' refers to node {inferred - 1} but the graph has "
                f"only {num_nodes} nodes"
            )
        return num_nodes
    size = graph.size(0) if isinstance(graph, Tensor) else graph.sparse_size(0)
    if num_nodes is not None and num_nodes != size:
        raise ValueError(
            f"The sparse adjacency has {size} rows but {num_nodes} nodes were given"
        )
    return int(size)


def check_laplacian(laplacian: str) -> str:
    """Validate a Laplacian name."""
    if laplacian not in LAPLACIANS:
        raise ValueError(
            f"Unknown laplacian {laplacian!r}; allowed: {', '.join(LAPLACIANS)}"
        )
    return laplacian


def split_laplacian(
    graph: Any,
    edge_weight: Tensor | None = None,
    num_nodes: int | None = None,
    laplacian: str = "reference",
    add_self_loops: bool = True,
    dtype: torch.dtype | None = None,
) -> SplitLaplacian:
    """Compute a named Laplacian of a graph in split form.

    Args:
        graph: ``edge_index``, torch sparse adjacency or ``SparseTensor`` (see
            :func:`graph_to_edge_index`).
        edge_weight: Optional edge weights for an ``edge_index`` input.
        num_nodes: Number of nodes (inferred when ``None``).
        laplacian: One of :data:`LAPLACIANS`.
        add_self_loops: Add a weight-1 self loop to every node without one
            before normalizing (ignored for ``"combinatorial"``, where self
            loops cancel).
        dtype: Floating dtype of the result (default: the weights' dtype, else
            the default dtype).

    Returns:
        The :class:`SplitLaplacian`.
    """
    check_laplacian(laplacian)
    edge_index, weight = graph_to_edge_index(graph, edge_weight)
    n = graph_num_nodes(graph, num_nodes)
    if weight is None:
        weight = torch.ones(
            edge_index.size(1),
            dtype=dtype or torch.get_default_dtype(),
            device=edge_index.device,
        )
    else:
        if dtype is not None:
            weight = weight.to(dtype)
        if not bool(torch.isfinite(weight).all()) or bool((weight < 0).any()):
            raise ValueError(
                "Edge weights must be finite and non-negative (the diffusion "
                f"Laplacians assume it), got values in [{float(weight.min())}, "
                f"{float(weight.max())}]"
            )
    if add_self_loops and laplacian != "combinatorial":
        edge_index, weight = add_remaining_self_loops(
            edge_index, weight, fill_value=1.0, num_nodes=n
        )
    src, dst = edge_index
    if laplacian != "combinatorial":
        deg = scatter(weight, dst, dim=0, dim_size=n, reduce="sum")
        power = -1.0 if laplacian == "rw" else -0.5
        deg_pow = deg.pow(power).masked_fill(deg == 0, 0.0)
        if laplacian == "rw":
            weight = weight * deg_pow[dst]
        else:
            weight = deg_pow[src] * weight * deg_pow[dst]
    loop = src == dst
    off = ~loop
    if laplacian in ("reference", "combinatorial"):
        diag = scatter(weight[off], dst[off], dim=0, dim_size=n, reduce="sum")
    else:
        diag = 1.0 - scatter(weight[loop], dst[loop], dim=0, dim_size=n, reduce="sum")
    return SplitLaplacian(edge_index[:, off], weight[off], diag)


def laplacian_max_eigenvalue(
    graph: Any,
    edge_weight: Tensor | None = None,
    num_nodes: int | None = None,
    laplacian: str = "reference",
    add_self_loops: bool = True,
) -> float:
    r"""Largest eigenvalue :math:`\lambda_{\max}(L)` (largest real part).

    Explicit Euler diffusion :math:`x \leftarrow x - \gamma L x` is stable
    when :math:`\gamma \lambda_{\max} < 2` (for symmetric :math:`L`). On the
    Cora LCC the ``"reference"`` Laplacian has :math:`\lambda_{\max} = 5.78`.

    Args:
        graph: ``edge_index``, torch sparse adjacency or ``SparseTensor``.
        edge_weight: Optional edge weights for an ``edge_index`` input.
        num_nodes: Number of nodes (inferred when ``None``).
        laplacian: One of :data:`LAPLACIANS`.
        add_self_loops: As in :func:`split_laplacian`.

    Returns:
        :math:`\lambda_{\max}` as a Python float (computed in float64 with
        ARPACK; dense for graphs of fewer than 64 nodes).

    Example:
        >>> import torch
        >>> edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
        >>> lam = laplacian_max_eigenvalue(
        ...     edge_index, laplacian="sym", add_self_loops=False
        ... )
        >>> round(lam, 6)  # the path graph is bipartite
        2.0
    """
    lap = split_laplacian(
        graph, edge_weight, num_nodes, laplacian, add_self_loops, torch.float64
    )
    n = lap.num_nodes
    if n == 0:
        raise ValueError("The graph has no nodes")
    src, dst = lap.edge_index.detach().cpu().numpy()
    mat = scipy.sparse.coo_matrix(
        (-lap.weight.detach().cpu().numpy(), (dst, src)), shape=(n, n)
    ).tocsr() + scipy.sparse.diags(lap.diag.detach().cpu().numpy())
    symmetric = abs(mat - mat.T).max() <= 1e-12 if mat.nnz else True
    if n < 64:
        dense = mat.toarray()
        eig = np.linalg.eigvalsh(dense) if symmetric else np.linalg.eigvals(dense)
        return float(np.max(eig.real))
    if symmetric:
        eig = scipy.sparse.linalg.eigsh(mat, k=1, which="LA", return_eigenvectors=False)
    else:
        eig = scipy.sparse.linalg.eigs(mat, k=1, which="LR", return_eigenvectors=False)
    return float(np.max(eig.real))
