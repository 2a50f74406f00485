r"""Mini-batch training of many runs at once, each with its own early stopping.

:func:`train_members_minibatch` is
:func:`~diffresnet_pyg.experiments.training.train_members` (same members,
optimizers, early stopping, checkpoints and results) with the epoch's single
full-batch step replaced by one step per mini-batch. For a batch with node
ids :math:`S` (targets :math:`S_t \subseteq S`: all of :math:`S` for
partitions, the seed nodes for neighbour sampling) the loss is

.. math::
    \mathcal{L} = \sum_{b} \frac{1}{|T_b \cap S_t|}
    \sum_{i \in T_b \cap S_t} \mathrm{CE}\big(f_b(\mathbf{X}_S,
    \mathbf{A}_S)_i, y_i\big),

with :math:`T_b` member :math:`b`'s training nodes (members have different
splits) and :math:`\mathbf{A}_S` the batch's graph, on which every
normalization (the diffusion Laplacian included) is recomputed. A member
with no training node in the batch contributes 0 (its gradient is zero,
but a stateful optimizer such as Adam still moves it by its momentum); a
batch without any member's training node is skipped.

Validation and test are evaluated on the *whole graph*, in evaluation mode,
after every epoch (as in full-batch training): mini-batches bound the memory
of training (activations kept for the backward pass), while inference without
gradients is assumed to fit. Nothing is selected on test.

Diffusion layers built with ``cached=True``
(:class:`~diffresnet_pyg.nn.DiffusionConv`) need no special handling: their
cache is keyed on the graph they are given, so every batch gets the Laplacian
of its own subgraph, and the whole graph's, kept beside the current batch's,
is built once for the evaluation. Any other module that caches a graph operator
(PyG's ``cached=True`` keeps the first graph's) is refused.

:func:`batch_loader` and :func:`evaluation_graph` turn a ``train.batching``
config section into the loader and evaluation graph.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Module
from torch_geometric.data import Data
from torch_geometric.utils import to_undirected

from diffresnet_pyg.experiments.schema import BatchingConfig
from diffresnet_pyg.experiments.training import MemberResult, train_members
from diffresnet_pyg.loader import (
    RandomPartitionLoader,
    cluster_loader,
    neighbor_loader,
    select_rows,
)
from diffresnet_pyg.nn import DiffusionConv, knn_graph

__all__ = [
    "batch_loader",
    "cached_modules",
    "evaluation_graph",
    "seeded_generator",
    "train_members_minibatch",
]


def cached_modules(model: Module) -> list[str]:
    """Names of the non-diffusion submodules that cache a graph operator.

    A cached operator (``cached=True``, e.g. PyG's ``GCNConv``) belongs to
    the first graph it saw; mini-batches change the graph on every step, so
    such a model cannot be trained on them. :class:`DiffusionConv` layers are
    not listed: their cache is keyed on the graph (another graph rebuilds it).
    """
    return [
        name or type(model).__name__
        for name, module in model.named_modules()
        if getattr(module, "cached", False) is True
        and not isinstance(module, DiffusionConv)
    ]


def seeded_generator(*seeds: int) -> torch.Generator:
    """A CPU :class:`torch.Generator` seeded from all of ``seeds`` together.

    Example:
        >>> a, b = seeded_generator(0, 121958, 711880), seeded_generator(0, 121958)
        >>> torch.randperm(5, generator=a).tolist() != torch.randperm(
        ...     5, generator=b).tolist()
        True
    """
    state = np.random.SeedSequence([int(s) for s in seeds]).generate_state(2)
    seed = (int(state[0]) << 32 | int(state[1])) & (2**63 - 1)
    return torch.Generator().manual_seed(seed)


def _batch_step(
    model: Module,
    optimizer: torch.optim.Optimizer,
    batch: Data,
    x: Tensor,
    y: Tensor,
    train_idx: Tensor,
    num_nodes: int,
) -> bool:
    """One optimizer step on ``batch``; False (no step) without training nodes."""
    device = train_idx.device
    n_id = batch.n_id.to(device)
    num_targets = int(batch.batch_size) if "batch_size" in batch else n_id.numel()
    local = torch.full((num_nodes,), -1, dtype=torch.long, device=device)
    local[n_id[:num_targets]] = torch.arange(num_targets, device=device)
    position = local[train_idx]  # [B, T]: row of each training node, or -1
    member, slot = (position >= 0).nonzero(as_tuple=True)
    if member.numel() == 0:
        return False
    optimizer.zero_grad(set_to_none=True)
    out = model(select_rows(x, n_id), batch.edge_index.to(device))
    logits = out[position[member, slot], member]
    loss = F.cross_entropy(logits, y[train_idx[member, slot]], reduction="none")
    num_members = train_idx.size(0)
    counts = torch.bincount(member, minlength=num_members).clamp(min=1)
    per_member = torch.zeros(num_members, dtype=loss.dtype, device=device)
    per_member = per_member.index_add(0, member, loss) / counts
    per_member.sum().backward()
    optimizer.step()
    return True


def train_members_minibatch(
    model: Module,
    x: Tensor,
    loader: Iterable[Data],
    y: Tensor,
    train_idx: Tensor,
    val_idx: Tensor,
    test_idx: Tensor | None,
    *,
    eval_graph: Any,
    optimizer: str = "adam",
    lr: float = 0.01,
    weight_decay: float = 5e-4,
    momentum: float = 0.0,
    max_epochs: int = 10000,
    patience: int = 50,
    early_stopping: str = "loss_or_acc",
    decay_params: Callable[[Module], Sequence[Tensor]] | None = None,
    own_decays: (
        Callable[[Module], Sequence[tuple[Sequence[Tensor], float]]] | None
    ) = None,
    on_epoch: Callable[[int, int], None] | None = None,
    on_finish: Callable[[int, MemberResult], None] | None = None,
    measure: Callable[[Tensor], dict[str, float]] | None = None,
) -> list[MemberResult]:
    r"""Train the ``B`` members of a batched model on mini-batches.

    Per epoch: one optimizer step per batch of ``loader`` on the loss of the
    module description (each member on its own training nodes among the
    batch's targets), then the full-graph evaluation, early stopping,
    checkpointing and test scoring of
    :func:`~diffresnet_pyg.experiments.training.train_members`.

    Args:
        model (torch.nn.Module): A batched model or a
            :class:`~diffresnet_pyg.experiments.training.SingleMember`; no
            submodule but diffusion layers may cache its graph operator.
        x (torch.Tensor): Features of all nodes (dense, COO or CSR); a batch
            gets ``x[batch.n_id]``.
        loader (Iterable[Data]): Re-iterable; each pass is one epoch of
            batches with ``n_id``, ``edge_index`` and optionally
            ``batch_size`` (targets: the first ``batch_size`` nodes, else
            all), e.g. :class:`~diffresnet_pyg.loader.RandomPartitionLoader`.
        y (torch.Tensor): Labels ``[N]``.
        train_idx (torch.Tensor): ``[B, T]`` training nodes of each member.
        val_idx (torch.Tensor): ``[B, V]`` validation nodes.
        test_idx (torch.Tensor or None): ``[B, S]`` test nodes (:obj:`None`:
            never evaluated).
        eval_graph (Any): The whole graph (``edge_index`` or sparse
            adjacency) for evaluation.
        optimizer (str, optional): As in ``train_members``.
            (default: :obj:`"adam"`)
        lr (float, optional): (default: :obj:`0.01`)
        weight_decay (float, optional): (default: :obj:`5e-4`)
        momentum (float, optional): (default: :obj:`0.0`)
        max_epochs (int, optional): (default: :obj:`10000`)
        patience (int, optional): (default: :obj:`50`)
        early_stopping (str, optional): (default: :obj:`"loss_or_acc"`)
        decay_params (Callable, optional): (default: all parameters)
        own_decays (Callable, optional): As in ``train_members``.
        on_epoch (Callable, optional): Called with ``(epoch, active members)``.
        on_finish (Callable, optional): Called with ``(member, result)``.
        measure (Callable, optional): As in ``train_members`` (on the
            full-graph output).

    Returns:
        list[MemberResult]: One result per member, in member order.

    Raises:
        ValueError: A submodule other than a diffusion layer caches its graph
            operator.
    """
    cached = cached_modules(model)
    if cached:
        raise ValueError(
            "mini-batch training changes the graph on every step, but these "
            f"modules cache their graph operator (cached=True): {', '.join(cached)}; "
            "build the model with cached=False"
        )
    num_nodes = int(y.numel())

    def step(model: Module, opt: torch.optim.Optimizer, train_idx: Tensor) -> None:
        for batch in loader:
            _batch_step(model, opt, batch, x, y, train_idx, num_nodes)

    return train_members(
        model,
        x,
        eval_graph,
        y,
        train_idx,
        val_idx,
        test_idx,
        optimizer=optimizer,
        lr=lr,
        weight_decay=weight_decay,
        momentum=momentum,
        max_epochs=max_epochs,
        patience=patience,
        early_stopping=early_stopping,
        decay_params=decay_params,
        own_decays=own_decays,
        on_epoch=on_epoch,
        on_finish=on_finish,
        train_step=step,
        measure=measure,
    )


def batch_loader(
    batching: BatchingConfig,
    edge_index: Tensor,
    num_nodes: int,
    *,
    x: Tensor,
    train_nodes: Tensor,
    generator: torch.Generator,
) -> Iterable[Data]:
    """The loader of a ``train.batching`` section (its method not ``"full"``).

    Args:
        batching (BatchingConfig): The section.
        edge_index (torch.Tensor): Edges of the whole graph.
        num_nodes (int): :math:`N`.
        x (torch.Tensor): Features (for ``knn``).
        train_nodes (torch.Tensor): The seeds of neighbour sampling (all
            members' training nodes).
        generator (torch.Generator): The loader's randomness.

    Raises:
        MissingBackendError: ``"cluster"`` or ``"neighbor"`` without the
            compiled packages they need.
    """
    method = batching.method
    if method == "random_partition":
        return RandomPartitionLoader(
            edge_index,
            num_nodes,
            batching.num_parts,
            batching.parts_per_batch,
            resample=batching.resample,
            x=x,
            knn=batching.knn,
            generator=generator,
        )
    if method == "cluster":
        return cluster_loader(
            edge_index.cpu(),
            num_nodes,
            batching.num_parts,
            batching.parts_per_batch,
            generator=generator,
        )
    if method == "neighbor":
        return neighbor_loader(
            edge_index.cpu(),
            num_nodes,
            train_nodes.cpu(),
            list(batching.num_neighbors),
            batching.batch_size,
            generator=generator,
        )
    raise ValueError(f"batching method {method!r} has no loader (full-batch)")


def evaluation_graph(batching: BatchingConfig, x: Tensor, edge_index: Tensor) -> Tensor:
    """The whole graph that validation and test are evaluated on.

    ``edge_index`` itself, or with ``knn`` the undirected :math:`k`-nearest-
    neighbour graph of all of ``x`` (the graph the per-batch kNN graphs
    approximate; its search costs :math:`O(N^2 F)` and densifies ``x``).
    """
    if batching.knn is None:
        return edge_index
    dense = x.to_dense() if x.layout != torch.strided else x
    return to_undirected(knn_graph(dense.float(), batching.knn), num_nodes=x.size(0))
