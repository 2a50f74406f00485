r"""Feature-space graphs: kNN graphs and the few-shot Gaussian weight matrix.

* :func:`knn_graph` has the semantics and output convention of
  :func:`torch_geometric.nn.knn_graph` (:obj:`torch_cluster.knn_graph`). It
  dispatches to :obj:`torch_cluster` or :obj:`pyg-lib` when one of them is
  installed and otherwise runs a pure-PyTorch implementation chunked over the
  query rows, so it works on a pip-only install. An exact :obj:`faiss` search
  (``IndexFlatL2``) is available on request (``backend="faiss"``).
* :func:`gaussian_weight_matrix` and :func:`gaussian_knn_graph` build the
  truncated, symmetrically normalized Gaussian-kernel weight matrix :math:`W`
  of the Diff-ResNet few-shot code (`Wang et al., TPAMI 2024
  <https://arxiv.org/abs/2105.03155>`_), densely or as a sparse graph. The
  Laplacian used with it is :math:`L = \operatorname{diag}(W \mathbf{1}) - W`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from diffresnet_pyg import typing as dtyping

__all__ = [
    "KNN_BACKENDS",
    "gaussian_knn_graph",
    "gaussian_weight_matrix",
    "knn_graph",
]

# Upper bound on the number of entries of one chunk's distance block when
# ``chunk_size`` is not given (2**25 entries = 128 MiB in float32). Chunks of
# a few hundred query rows keep the distance product a large matrix product;
# much smaller ones are dominated by per-chunk work that does not shrink with
# the chunk (``torch.cdist`` copies the candidate matrix on every call).
_DEFAULT_BLOCK_ENTRIES = 2**25

# Candidates per row re-ranked exactly: k + max(k, _RERANK_EXTRA) of the
# matrix-product ranking (whose rounding errors only reorder distances that
# agree to a few float32 ulps of the squared norms).
_RERANK_EXTRA = 16

# Query rows x features per float64 block of the exact re-ranking.
_RERANK_BLOCK_ENTRIES = 2**20

_FLOWS = ("source_to_target", "target_to_source")

#: The values of :func:`knn_graph`'s ``backend`` argument.
KNN_BACKENDS = ("auto", "torch", "torch_cluster", "pyg_lib", "faiss")


# ---------------------------------------------------------------------------
# k-nearest-neighbour graph
# ---------------------------------------------------------------------------


def _all_finite(x: Tensor) -> bool:
    r"""Whether a non-empty floating tensor has no NaN or infinite entry.

    One reduction without temporaries (:func:`torch.isfinite` would allocate
    :math:`N \times F` bytes plus intermediates, more than the kNN search):
    :func:`torch.aminmax` propagates NaN, and infinities are extremes.
    """
    low, high = torch.aminmax(x)
    return bool(torch.isfinite(low) & torch.isfinite(high))


def _check_knn_inputs(
    x: Tensor,
    k: int,
    batch: Tensor | None,
    loop: bool,
    cosine: bool,
    flow: str,
    chunk_size: int | None,
    backend: str,
) -> Tensor | None:
    """Validates the arguments of :func:`knn_graph`; returns ``batch`` on ``x``."""
    if backend not in KNN_BACKENDS:
        raise ValueError(
            f"knn_graph: 'backend' must be one of {KNN_BACKENDS}, got {backend!r}"
        )
    if not isinstance(x, Tensor) or x.dim() != 2:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(
            f"knn_graph: 'x' must be a 2-D tensor of shape [num_nodes, "
            f"num_features], got {shape}"
        )
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"knn_graph: 'k' must be an integer >= 1, got {k!r}")
    if flow not in _FLOWS:
        raise ValueError(f"knn_graph: 'flow' must be one of {_FLOWS}, got {flow!r}")
    if chunk_size is not None and (
        isinstance(chunk_size, bool)
        or not isinstance(chunk_size, int)
        or chunk_size < 1
    ):
        raise ValueError(
            f"knn_graph: 'chunk_size' must be None or an integer >= 1, "
            f"got {chunk_size!r}"
        )
    if chunk_size is not None and backend in ("torch_cluster", "pyg_lib"):
        raise ValueError(
            f"knn_graph: 'chunk_size' applies to the 'torch' and 'faiss' backends "
            f"only, got chunk_size={chunk_size} with backend={backend!r}"
        )
    if x.is_floating_point() and x.numel() > 0 and not _all_finite(x):
        raise ValueError("knn_graph: 'x' contains NaN or infinite values")

    num_nodes = x.size(0)
    if batch is not None:
        if batch.dim() != 1 or batch.numel() != num_nodes:
            raise ValueError(
                f"knn_graph: 'batch' must be a 1-D tensor with one entry per node "
                f"({num_nodes}), got shape {tuple(batch.shape)}"
            )
        if batch.is_floating_point() or batch.is_complex() or batch.dtype == torch.bool:
            raise ValueError(
                f"knn_graph: 'batch' must be an integer tensor, got {batch.dtype}"
            )
        batch = batch.to(device=x.device, dtype=torch.long)
        if num_nodes > 0:
            if int(batch.min()) < 0:
                raise ValueError("knn_graph: 'batch' contains negative graph ids")
            if bool((batch[1:] < batch[:-1]).any()):
                raise ValueError(
                    "knn_graph: 'batch' must be sorted in non-decreasing order "
                    "(nodes of one graph stored contiguously, as in PyG batches)"
                )

    if num_nodes > 0:
        if batch is None:
            sizes = torch.tensor([num_nodes])
        else:
            sizes = torch.bincount(batch).cpu()
        available = sizes - (0 if loop else 1)
        available[sizes == 0] = k  # empty graph ids (gaps) need no neighbours
        bad = (available < k).nonzero().flatten()
        if bad.numel() > 0:
            graph = int(bad[0])
            where = "'x'" if batch is None else f"graph {graph}"
            others = "" if loop else " other"
            raise ValueError(
                f"knn_graph: k={k} is larger than the number of available "
                f"neighbours: {where} has {int(sizes[graph])} nodes, i.e. "
                f"{int(available[graph])}{others} candidate points (loop={loop})"
            )
        if cosine and bool((x == 0).all(dim=1).any()):
            raise ValueError(
                "knn_graph: the cosine distance is undefined for all-zero "
                "feature rows; remove them or use cosine=False"
            )
    return batch


def _pool_size(k: int, width: int) -> int:
    """Number of candidates per row that are re-ranked exactly."""
    return min(k + max(k, _RERANK_EXTRA), width)


def _exact_distances(query: Tensor, cand: Tensor, ids: Tensor, cosine: bool) -> Tensor:
    r"""Float64 distances from ``query[i]`` to ``cand[ids[i, j]]``, ``[rows, pool]``.

    Squared Euclidean distances :math:`\sum_f (q_f - c_f)^2` from coordinate
    differences (no :math:`\lVert q \rVert^2 + \lVert c \rVert^2 - 2 q^\top
    c` cancellation), or cosine distances :math:`1 - \hat q^\top \hat c`, in
    float64. One candidate column of at most :math:`2^{20} / F` rows at a
    time, so the temporaries stay at a few MiB.
    """
    out = torch.empty(ids.shape, dtype=torch.float64, device=query.device)
    step = max(1, _RERANK_BLOCK_ENTRIES // max(query.size(1), 1))
    for start in range(0, query.size(0), step):
        q = query[start : start + step].double()
        if cosine:
            q = q / q.norm(dim=1, keepdim=True)
        block = ids[start : start + step]
        for j in range(ids.size(1)):
            c = cand[block[:, j]].double()
            if cosine:
                out[start : start + step, j] = 1.0 - (q * c).sum(1) / c.norm(dim=1)
            else:
                out[start : start + step, j] = (q - c).pow(2).sum(dim=1)
    return out


def _knn_graph_torch(
    x: Tensor,
    k: int,
    batch: Tensor | None,
    loop: bool,
    cosine: bool,
    chunk_size: int | None,
) -> tuple[Tensor, Tensor]:
    """Pure-PyTorch kNN search; returns ``(center, neighbour)`` index vectors.

    Per chunk: distances by matrix products (:func:`torch.cdist`), the
    :func:`_pool_size` nearest candidates by :obj:`topk`, then those
    re-ranked by :func:`_exact_distances`. Neighbours of each center are
    listed in order of increasing distance (self first when ``loop=True``).
    """
    num_nodes = x.size(0)
    device = x.device
    if not x.is_floating_point():
        x = x.to(torch.get_default_dtype())
    elif x.dtype in (torch.float16, torch.bfloat16):
        x = x.float()  # rank neighbours in single precision
    raw = x
    if cosine:
        x = x / x.norm(dim=1, keepdim=True)

    if batch is None:
        row_lo = torch.zeros(num_nodes, dtype=torch.long)
        row_hi = torch.full((num_nodes,), num_nodes, dtype=torch.long)
    else:
        counts = torch.bincount(batch)
        ptr = torch.cat([counts.new_zeros(1), counts.cumsum(0)]).cpu()
        batch_cpu = batch.cpu()
        row_lo, row_hi = ptr[batch_cpu], ptr[batch_cpu + 1]

    if chunk_size is None:
        chunk_size = max(1, _DEFAULT_BLOCK_ENTRIES // max(num_nodes, 1))

    # One output buffer: per-chunk results kept alive between the large,
    # short-lived distance blocks would fragment the heap (the allocator
    # carves them out of the freed blocks, so every block needs fresh memory).
    neighbours = torch.empty(num_nodes, k, dtype=torch.long, device=device)
    self_value = float("-inf") if loop else float("inf")
    for start in range(0, num_nodes, chunk_size):
        end = min(start + chunk_size, num_nodes)
        # Batch is sorted: the chunk's candidates are one contiguous slice.
        lo, hi = int(row_lo[start]), int(row_hi[end - 1])
        query, cand = x[start:end], x[lo:hi]
        if cosine:
            dist = 1.0 - query @ cand.t()
        else:
            dist = torch.cdist(query, cand)
        if batch is not None:
            other = batch[start:end].view(-1, 1) != batch[lo:hi].view(1, -1)
            dist = dist.masked_fill(other, float("inf"))
        rows = torch.arange(end - start, device=device)
        dist[rows, rows + (start - lo)] = self_value
        pool = _pool_size(k, hi - lo)
        approx, cand_ids = dist.topk(pool, dim=1, largest=False, sorted=True)
        del dist
        exact = _exact_distances(raw[start:end], raw[lo:hi], cand_ids, cosine)
        # self (loop) and other graphs keep their -inf / +inf
        exact = torch.where(torch.isinf(approx), approx.double(), exact)
        order = exact.topk(k, dim=1, largest=False, sorted=True).indices
        torch.add(cand_ids.gather(1, order), lo, out=neighbours[start:end])
        del approx, cand_ids, exact, order
    center = torch.arange(num_nodes, device=device).repeat_interleave(k)
    return center, neighbours.view(-1)


def _knn_graph_faiss(
    x: Tensor,
    k: int,
    batch: Tensor | None,
    loop: bool,
    cosine: bool,
    chunk_size: int | None,
) -> tuple[Tensor, Tensor]:
    """Exact faiss search (``IndexFlatL2``); returns ``(center, neighbour)``.

    Each graph of ``batch`` gets its own index. Every query asks for
    :func:`_pool_size` ``(k', n_g)`` results (``k' = k - 1`` other neighbours
    with ``loop=True``, else ``k``; ``n_g`` the graph's size), which are
    re-ranked by :func:`_exact_distances` with the query itself excluded by
    index, so each node gets exactly ``k'`` other neighbours, nearest first,
    and itself first when ``loop=True``.
    """
    try:
        import faiss
    except ImportError as error:
        raise ImportError(
            "knn_graph: backend='faiss' needs the 'faiss' package (pip install "
            "faiss-cpu); use backend='torch' or 'auto' without it"
        ) from error

    device = x.device
    raw = x.detach().cpu()
    if not raw.is_floating_point():
        raw = raw.to(torch.get_default_dtype())
    feats = raw.float()
    if cosine:
        feats = feats / feats.norm(dim=1, keepdim=True)
    feats = feats.contiguous().numpy()
    num_nodes = feats.shape[0]
    if batch is None:
        ptr = [0, num_nodes]
    else:
        counts = torch.bincount(batch.cpu())
        ptr = [0, *counts.cumsum(0).tolist()]
    num_other = k - 1 if loop else k
    neighbours = []
    for lo, hi in zip(ptr[:-1], ptr[1:], strict=True):
        if hi == lo:
            continue
        own = torch.arange(lo, hi).view(-1, 1)
        if num_other == 0:
            neighbours.append(own)
            continue
        index = faiss.IndexFlatL2(feats.shape[1])
        index.add(feats[lo:hi])
        step = (hi - lo) if chunk_size is None else chunk_size
        pool = _pool_size(num_other + 1, hi - lo)
        for start in range(lo, hi, step):
            end = min(start + step, hi)
            _, found = index.search(feats[start:end], pool)
            ids = torch.from_numpy(found)  # local to the graph
            exact = _exact_distances(raw[start:end], raw[lo:hi], ids, cosine)
            exact[ids == own[start - lo : end - lo] - lo] = float("inf")  # self
            order = exact.topk(num_other, dim=1, largest=False, sorted=True).indices
            ids = ids.gather(1, order) + lo
            if loop:
                ids = torch.cat([own[start - lo : end - lo], ids], dim=1)
            neighbours.append(ids)
    neighbour = torch.cat(neighbours).flatten().to(device)
    center = torch.arange(num_nodes, device=device).repeat_interleave(k)
    return center, neighbour


def knn_graph(
    x: Tensor,
    k: int,
    batch: Tensor | None = None,
    loop: bool = False,
    cosine: bool = False,
    flow: str = "source_to_target",
    chunk_size: int | None = None,
    backend: str = "auto",
) -> Tensor:
    r"""Computes the :math:`k`-nearest-neighbour graph of the rows of :obj:`x`.

    Same semantics and output convention as :func:`torch_geometric.nn.knn_graph`
    and :obj:`torch_cluster.knn_graph`: every node :math:`i` (the *center*)
    receives an edge from each of its :math:`k` nearest neighbours

    .. math::
        \mathcal{N}_k(i) = \operatorname*{arg\,min}_{S \subseteq V_{b(i)},\,
        |S| = k} \sum_{j \in S} d(\mathbf{x}_i, \mathbf{x}_j),
        \qquad
        d(\mathbf{x}_i, \mathbf{x}_j) =
        \begin{cases}
            \lVert \mathbf{x}_i - \mathbf{x}_j \rVert_2 & \text{(Euclidean)} \\
            1 - \frac{\mathbf{x}_i^\top \mathbf{x}_j}
            {\lVert \mathbf{x}_i \rVert_2 \lVert \mathbf{x}_j \rVert_2}
            & \text{(cosine)},
        \end{cases}

    where :math:`V_{b(i)}` are the nodes of the graph :math:`i` belongs to
    (without :math:`i` itself unless :obj:`loop=True`). For
    :obj:`flow="source_to_target"` :obj:`edge_index[1]` holds the center and
    :obj:`edge_index[0]` its neighbours (messages flow from the neighbours to
    the center); :obj:`"target_to_source"` swaps the two rows.

    Backends (:obj:`backend`):

    * :obj:`"auto"`: :obj:`torch_cluster.knn_graph` when :obj:`torch_cluster`
      is installed, else the :obj:`pyg-lib` kernel (through
      :func:`torch_geometric.nn.knn_graph`) when available, else the
      pure-PyTorch search (always used for :obj:`cosine=True` on CPU, which
      the compiled CPU kernels do not support). The flags are read from
      :mod:`diffresnet_pyg.typing` at call time. :obj:`"auto"` never picks
      faiss.
    * :obj:`"torch"`: the pure-PyTorch search. It processes :obj:`chunk_size`
      query rows at a time (:func:`torch.cdist` against the candidate rows of
      the chunk's graphs, then :obj:`topk`), so its memory is bounded by
      :obj:`chunk_size` :math:`\times N` distances plus one copy of the
      candidate rows (made by :func:`torch.cdist`).
    * :obj:`"torch_cluster"`, :obj:`"pyg_lib"`: that compiled kernel; an
      :class:`ImportError` if it is not installed, a :class:`ValueError` for
      :obj:`cosine=True` on CPU. On CPU :obj:`torch_cluster` searches a
      KD-tree on one thread, which is slow at high dimension (on 10,000
      Fashion-MNIST images, 784-d, about 30 times slower than
      :obj:`"torch"`; see ``experiments/scale/fashion_mnist``), so
      :obj:`"auto"` is not the fastest choice there.
    * :obj:`"faiss"`: exact search with :obj:`faiss.IndexFlatL2` (one index
      per graph of :obj:`batch`, :obj:`chunk_size` queries per search call)
      in float32 whatever the dtype of :obj:`x`; cosine distances as
      Euclidean distances of the L2-normalized rows (same order, since
      :math:`\lVert \hat a - \hat b \rVert^2 = 2 - 2 \cos(a, b)`). It uses
      faiss's own OpenMP threads (:obj:`faiss.omp_set_num_threads`).

    The pure-PyTorch and faiss searches rank by matrix products
    (:math:`\lVert a \rVert^2 + \lVert b \rVert^2 - 2 a^\top b`), whose
    rounding errors can swap neighbours whose distances agree to about
    :math:`10^{-5}` relative in float32; they therefore re-rank the
    :math:`k + \max(k, 16)` best candidates of each node by float64
    distances computed from coordinate differences (from the input values,
    also for float64 input to faiss), so their lists are exact :math:`k`-NN
    lists unless a rounding error is larger than the gap between the
    :math:`k`-th and the :math:`(k + \max(k, 16))`-th distance. They list each
    center's neighbours by increasing distance, with exactly :math:`k` edges
    per node (self loops are excluded by index, so duplicate points do not
    change the count). All backends return the same neighbour sets up to the
    order of ties (equal distances, e.g. duplicate points); the compiled
    kernels rank in the input's precision.

    Args:
        x (torch.Tensor): Node feature matrix
            :math:`\mathbf{X} \in \mathbb{R}^{N \times F}`.
        k (int): The number of neighbours per node.
        batch (torch.Tensor, optional): Sorted batch vector
            :math:`\mathbf{b} \in {\{ 0, \ldots, B-1\}}^N` assigning each node
            to a graph; neighbours are only searched within the same graph.
            (default: :obj:`None`)
        loop (bool, optional): If :obj:`True`, each node counts as its own
            (nearest) neighbour, i.e. the graph contains self loops and
            :math:`k - 1` other neighbours per node. (default: :obj:`False`)
        cosine (bool, optional): If :obj:`True`, use the cosine distance
            instead of the Euclidean distance. (default: :obj:`False`)
        flow (str, optional): :obj:`"source_to_target"` or
            :obj:`"target_to_source"`. (default: :obj:`"source_to_target"`)
        chunk_size (int, optional): Number of query rows per chunk of the
            pure-PyTorch search (per search call of faiss). :obj:`None` picks
            it so that one chunk holds at most :math:`2^{25}` distances
            (faiss: all queries in one call, faiss blocks them itself). Not
            accepted by :obj:`"torch_cluster"` and :obj:`"pyg_lib"`.
            (default: :obj:`None`)
        backend (str, optional): One of :data:`KNN_BACKENDS`, see above.
            (default: :obj:`"auto"`)

    Returns:
        torch.Tensor: :obj:`edge_index` of shape :math:`[2, N k]`
        (:obj:`torch.long`), grouped by center node in increasing order.

    Raises:
        ValueError: If :obj:`x` is not 2-D or not finite, :obj:`k < 1`,
            :obj:`k` exceeds the number of available neighbours in some graph,
            :obj:`batch` has the wrong length or is not sorted,
            :obj:`cosine=True` with an all-zero feature row, :obj:`backend` is
            unknown, :obj:`chunk_size` is given to a compiled backend, or
            :obj:`cosine=True` on CPU with a compiled backend.
        ImportError: If the requested backend's package is not installed.

    Shapes:
        - **input:** node features :math:`(N, F)`, batch vector :math:`(N)`
        - **output:** edge indices :math:`(2, N k)`

    Example:
        >>> import torch
        >>> from diffresnet_pyg.nn.knn import knn_graph
        >>> x = torch.tensor([[-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [1.0, 1.2]])
        >>> batch = torch.tensor([0, 0, 1, 1])
        >>> knn_graph(x, k=1, batch=batch)
        tensor([[1, 0, 3, 2],
                [0, 1, 2, 3]])
    """
    batch = _check_knn_inputs(x, k, batch, loop, cosine, flow, chunk_size, backend)
    if backend in ("torch_cluster", "pyg_lib"):
        return _knn_graph_compiled(x, k, batch, loop, cosine, flow, backend)
    on_cpu = x.device.type == "cpu"
    if backend == "auto" and x.size(0) > 0 and not (cosine and on_cpu):
        if dtyping.WITH_TORCH_CLUSTER:
            import torch_cluster

            return torch_cluster.knn_graph(
                x, k, batch=batch, loop=loop, flow=flow, cosine=cosine
            )
        if dtyping.WITH_PYG_LIB:
            import torch_geometric.typing
            from torch_geometric.nn import pool

            if torch_geometric.typing.WITH_KNN:
                return pool.knn_graph(
                    x, k, batch=batch, loop=loop, flow=flow, cosine=cosine
                )

    if backend == "faiss" and x.size(0) > 0:
        center, neighbour = _knn_graph_faiss(x, k, batch, loop, cosine, chunk_size)
    else:
        center, neighbour = _knn_graph_torch(x, k, batch, loop, cosine, chunk_size)
    if flow == "source_to_target":
        return torch.stack([neighbour, center], dim=0)
    return torch.stack([center, neighbour], dim=0)


def _knn_graph_compiled(
    x: Tensor,
    k: int,
    batch: Tensor | None,
    loop: bool,
    cosine: bool,
    flow: str,
    backend: str,
) -> Tensor:
    """Run the explicitly requested compiled kernel (``torch_cluster``/``pyg_lib``)."""
    if cosine and x.device.type == "cpu":
        raise ValueError(
            f"knn_graph: backend={backend!r} has no cosine distance on CPU; use "
            "backend='torch', 'faiss' or 'auto'"
        )
    if backend == "torch_cluster":
        if not dtyping.WITH_TORCH_CLUSTER:
            raise ImportError(
                "knn_graph: backend='torch_cluster' needs the 'torch_cluster' "
                "package, which is not importable; install it or use "
                "backend='torch' or 'auto'"
            )
        import torch_cluster

        return torch_cluster.knn_graph(
            x, k, batch=batch, loop=loop, flow=flow, cosine=cosine
        )
    import torch_geometric.typing

    if not (dtyping.WITH_PYG_LIB and torch_geometric.typing.WITH_KNN):
        raise ImportError(
            "knn_graph: backend='pyg_lib' needs a 'pyg-lib' build with the knn "
            "kernel, which is not importable; install it or use backend='torch' "
            "or 'auto'"
        )
    from torch_geometric.nn import pool

    return pool.knn_graph(x, k, batch=batch, loop=loop, flow=flow, cosine=cosine)


# ---------------------------------------------------------------------------
# The authors' few-shot Gaussian weight matrix
# ---------------------------------------------------------------------------


def _check_rank(name: str, value: int, num_points: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"'{name}' must be an integer, got {value!r}")
    if value < 1 or value > num_points:
        raise ValueError(
            f"'{name}' must lie in [1, n] = [1, {num_points}] (1-based rank "
            f"of a distance in a row, self distance included), got {value}"
        )


def _check_positive_rank_distance(
    dist_k: Tensor, name: str, rank: int, batched: bool
) -> None:
    """Raise if a row's ``rank``-th smallest distance (sigma_i or the cut) is 0."""
    zero = dist_k.squeeze(-1) == 0
    if not bool(zero.any()):
        return
    episode, point = (int(i) for i in zero.nonzero()[0])
    where = f"point {point}" + (f" of episode {episode}" if batched else "")
    if rank > 1:
        reason = f"at least {name} - 1 = {rank - 1} other points coincide with it"
    elif name == "sigma":
        reason = "sigma=1 selects the self distance, use sigma >= 2"
    else:
        reason = "n_top=1 keeps no entry, use n_top >= 2"
    what = (
        f"kernel width sigma_i = 0 at {where}"
        if name == "sigma"
        else f"row of {where} would be empty"
    )
    raise ValueError(
        f"gaussian_weight_matrix: {what} (the {name}={rank}-th smallest distance "
        f"of its row is 0: {reason}). Remove duplicate points or increase {name}"
    )


def gaussian_weight_matrix(x: Tensor, n_top: int = 8, sigma: int = 4) -> Tensor:
    r"""The truncated Gaussian-kernel weight matrix of the Diff-ResNet few-shot code.

    From `Wang et al., TPAMI 2024 <https://arxiv.org/abs/2105.03155>`_ and the
    authors' :obj:`calculate_weight` (github shwangtangjun/Diff-ResNet).
    With :math:`d_{ij} = \lVert \mathbf{x}_i - \mathbf{x}_j \rVert_2` and
    :math:`d_{i(r)}` the :math:`r`-th smallest entry of row :math:`i` (1-based,
    the self distance :math:`d_{ii} = 0` counts as the first):

    .. math::
        w_{ij} &= \exp\!\left(-\left(\frac{d_{ij}}{\sigma_i}\right)^2\right)
        \mathbb{1}\left[d_{ij} < d_{i(n_\mathrm{top})}\right],
        \qquad \sigma_i = d_{i(\sigma)},

        \tilde{W} &= D^{-1/2} w D^{-1/2}, \qquad D = \operatorname{diag}(w
        \mathbf{1}),

        W &= \tfrac{1}{2}\left(\tilde{W} + \tilde{W}^\top\right).

    With the defaults each row keeps itself (:math:`w_{ii} = 1`) and its 6
    nearest neighbours, and :math:`\sigma_i` is the distance to the 3rd nearest
    neighbour. The diffusion Laplacian used with it is the unnormalized
    :math:`L = \operatorname{diag}(W \mathbf{1}) - W` (the self loops cancel
    in :math:`L`; they only change the normalization).

    Numerics: distances come from :func:`torch.cdist` with
    :obj:`compute_mode="donot_use_mm_for_euclid_dist"`, i.e. sums of squared
    coordinate differences (self distances are exactly 0, no cancellation from
    the :math:`\lVert a \rVert^2 + \lVert b \rVert^2 - 2 a^\top b` form), so in
    float64 the result agrees with the authors' :obj:`torch.norm` of
    differences to rounding error (about 1e-16 relative), apart from exact
    distance ties at the :math:`n_\mathrm{top}` threshold. Batched episodes are
    processed in one vectorized pass, without a Python loop.

    Args:
        x (torch.Tensor): Features of one episode :math:`(n, d)` or of
            :math:`B` episodes of equal size :math:`(B, n, d)`.
        n_top (int, optional): Entries strictly closer than the
            :obj:`n_top`-th smallest distance of their row are kept.
            (default: :obj:`8`)
        sigma (int, optional): The kernel width of row :math:`i` is its
            :obj:`sigma`-th smallest distance. Must be at least 2 (rank 1 is
            the self distance 0). (default: :obj:`4`)

    Returns:
        torch.Tensor: The symmetric weight matrix, :math:`(n, n)` or
        :math:`(B, n, n)`, in the dtype of :obj:`x`.

    Raises:
        ValueError: If :obj:`x` is not 2-D or 3-D or has non-finite values,
            :obj:`n_top` or :obj:`sigma` is not in :math:`[1, n]`, or a row's
            kernel width :math:`\sigma_i` or truncation radius is 0. That
            happens when :obj:`sigma == 1` (or :obj:`n_top == 1`), or when at
            least :obj:`sigma - 1` (resp. :obj:`n_top - 1`) other points
            coincide with point :math:`i`; the authors' code then divides by
            zero and returns NaN. Remove duplicate points or raise the rank.

    Shapes:
        - **input:** :math:`(n, d)` or :math:`(B, n, d)`
        - **output:** :math:`(n, n)` or :math:`(B, n, n)`

    Example:
        >>> import torch
        >>> from diffresnet_pyg.nn.knn import gaussian_weight_matrix
        >>> x = torch.randn(2, 80, 64, dtype=torch.float64)  # two episodes
        >>> W = gaussian_weight_matrix(x, n_top=8, sigma=4)
        >>> W.shape
        torch.Size([2, 80, 80])
        >>> bool(torch.allclose(W, W.transpose(1, 2)))
        True
        >>> L = torch.diag_embed(W.sum(dim=-1)) - W  # the Laplacian used with W
    """
    if not isinstance(x, Tensor) or x.dim() not in (2, 3):
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(
            "gaussian_weight_matrix: 'x' must have shape (n, d) or (B, n, d), "
            f"got {shape}"
        )
    if not x.is_floating_point():
        x = x.to(torch.get_default_dtype())
    num_points = x.size(-2)
    _check_rank("n_top", n_top, num_points)
    _check_rank("sigma", sigma, num_points)
    if not bool(torch.isfinite(x).all()):
        raise ValueError("gaussian_weight_matrix: 'x' contains NaN or infinite values")

    batched = x.dim() == 3
    xb = x if batched else x.unsqueeze(0)
    dist = torch.cdist(xb, xb, compute_mode="donot_use_mm_for_euclid_dist")
    dist_n_top = dist.kthvalue(n_top, dim=-1, keepdim=True).values
    dist_sigma = dist.kthvalue(sigma, dim=-1, keepdim=True).values

    _check_positive_rank_distance(dist_sigma, "sigma", sigma, batched)
    _check_positive_rank_distance(dist_n_top, "n_top", n_top, batched)

    kernel = torch.exp(-(dist / dist_sigma).pow(2))
    weight = torch.where(dist < dist_n_top, kernel, torch.zeros_like(kernel))
    # D^-1/2 w D^-1/2 as broadcast products (bitwise equal to diagonal matmuls).
    d_inv_sqrt = weight.sum(dim=-1).pow(-0.5)
    weight = d_inv_sqrt.unsqueeze(-1) * weight * d_inv_sqrt.unsqueeze(-2)
    weight = (weight + weight.transpose(-1, -2)) / 2
    return weight if batched else weight.squeeze(0)


def gaussian_knn_graph(
    x: Tensor, n_top: int = 8, sigma: int = 4
) -> tuple[Tensor, Tensor]:
    r"""The weight matrix of :func:`gaussian_weight_matrix` as a sparse graph.

    .. math::
        \mathcal{E} = \{(i, j) : W_{ij} \neq 0\}, \qquad
        \text{edge\_weight}_{(i, j)} = W_{ij},

    including the self loops :math:`(i, i)` (:math:`W_{ii} > 0`). For batched
    episodes :math:`(B, n, d)` the graph is block diagonal over :math:`B n`
    nodes, node :math:`b n + i` being point :math:`i` of episode :math:`b`, so
    :obj:`torch_geometric.utils.to_dense_adj(edge_index, edge_attr=edge_weight,
    max_num_nodes=B * n)[0]` is the block-diagonal matrix of the :math:`B`
    dense matrices. The graph is symmetric and the edges are coalesced (sorted
    by row, then column). Its Laplacian is
    :math:`L = \operatorname{diag}(W \mathbf{1}) - W`, e.g.
    :func:`torch_geometric.utils.get_laplacian` with
    :obj:`normalization=None`. It is built from the dense matrix, so it costs
    :math:`O(B n^2)` memory (episodes are small).

    Args:
        x (torch.Tensor): Features :math:`(n, d)` or :math:`(B, n, d)`.
        n_top (int, optional): See :func:`gaussian_weight_matrix`.
            (default: :obj:`8`)
        sigma (int, optional): See :func:`gaussian_weight_matrix`.
            (default: :obj:`4`)

    Returns:
        tuple[torch.Tensor, torch.Tensor]: :obj:`edge_index` :math:`(2, E)`
        (:obj:`torch.long`) and :obj:`edge_weight` :math:`(E,)` in the dtype of
        :obj:`x`.

    Raises:
        ValueError: As :func:`gaussian_weight_matrix`.

    Example:
        >>> import torch
        >>> from torch_geometric.utils import to_dense_adj
        >>> from diffresnet_pyg.nn.knn import gaussian_knn_graph
        >>> from diffresnet_pyg.nn.knn import gaussian_weight_matrix
        >>> x = torch.randn(3, 25, 16)
        >>> edge_index, edge_weight = gaussian_knn_graph(x, n_top=5, sigma=3)
        >>> A = to_dense_adj(edge_index, edge_attr=edge_weight, max_num_nodes=75)
        >>> bool(torch.equal(A[0], torch.block_diag(*gaussian_weight_matrix(x, 5, 3))))
        True
    """
    weight = gaussian_weight_matrix(x, n_top=n_top, sigma=sigma)
    if weight.dim() == 2:
        weight = weight.unsqueeze(0)
    num_points = weight.size(-1)
    episode, row, col = weight.nonzero(as_tuple=True)
    edge_weight = weight[episode, row, col]
    offset = episode * num_points
    edge_index = torch.stack([offset + row, offset + col], dim=0)
    return edge_index, edge_weight
