r"""Full-batch training of many runs at once, each with its own early stopping.

A *batched model* maps ``(x, graph)`` to ``[N, B, C]`` logits of ``B``
independent members and stacks every parameter along a leading member
dimension (:class:`~diffresnet_pyg.nn.batched.BatchedDiffResNet`, the batched
baselines). A plain model is wrapped in :class:`SingleMember` (``B = 1``).

The loss is the sum of the members' mean cross-entropies, so member
:math:`b` receives exactly the gradient of its own loss; the optimizers used
here (Adam, AdamW, Adamax, SGD) update every entry independently, so member
:math:`b` follows the trajectory of its own run. After every epoch each
member is evaluated, its early-stopping rule decides, and its best weights
are snapshotted. A member that stops has its checkpoint restored, its test
accuracy read once (never, when no test nodes are given: a tuning run), and
is removed from the batch (with its optimizer state), so finished runs cost
nothing. A member's random stream, when the model has them (``streams`` of a
stacked model, ``stream`` of a :class:`SingleMember`), leaves with it: the
others draw exactly what they drew before.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Module, Parameter

from diffresnet_pyg.evaluate import Evaluator
from diffresnet_pyg.nn.streams import MemberStream

__all__ = [
    "EARLY_STOPPING_RULES",
    "OPTIMIZERS",
    "EarlyStopping",
    "EpochStatus",
    "MemberResult",
    "SingleMember",
    "make_optimizer",
    "stack_index",
    "train_members",
]

#: Early-stopping rules (see :class:`EarlyStopping`).
EARLY_STOPPING_RULES: tuple[str, ...] = ("loss_or_acc", "loss", "none")

#: Optimizers by name; each updates every parameter entry independently.
OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "adamax": torch.optim.Adamax,
    "sgd": torch.optim.SGD,
}

_ACCURACY = Evaluator("acc")


class EarlyStopping:
    r"""Early-stopping state of ``B`` members, updated from validation scores.

    Rules, with :math:`\ell` the validation loss and :math:`a` the validation
    accuracy after an epoch:

    * ``"loss_or_acc"`` (the Diff-ResNet authors' GAT-style rule): improved
      if :math:`\ell \le \ell^* \lor a \ge a^*`; then
      :math:`\ell^* \leftarrow \min(\ell, \ell^*)`,
      :math:`a^* \leftarrow \max(a, a^*)`.
    * ``"loss"`` (gnn-benchmark): improved if :math:`\ell < \ell^*`; then
      :math:`\ell^* \leftarrow \ell`.
    * ``"none"``: never stops; the final weights are used.

    An improved member is checkpointed and its patience counter reset;
    otherwise the counter grows, and at ``patience`` the member stops and
    restores its checkpoint.

    Args:
        rule (str): One of :data:`EARLY_STOPPING_RULES`.
        patience (int): Epochs without improvement before stopping (>= 1).
        num_members (int): Number of members ``B``.

    Example:
        >>> stopper = EarlyStopping("loss", patience=2, num_members=1)
        >>> for loss in [1.0, 0.5, 0.7, 0.6]:
        ...     improved, stop = stopper.step(torch.tensor([loss]), torch.zeros(1))
        >>> bool(stop), stopper.counter.tolist()
        (True, [2])
    """

    def __init__(self, rule: str, patience: int, num_members: int) -> None:
        if rule not in EARLY_STOPPING_RULES:
            raise ValueError(
                f"unknown early-stopping rule {rule!r}; allowed: "
                f"{', '.join(EARLY_STOPPING_RULES)}"
            )
        if not isinstance(patience, int) or patience < 1:
            raise ValueError(f"'patience' must be an integer >= 1, got {patience!r}")
        self.rule = rule
        self.patience = patience
        self.best_loss = torch.full((num_members,), math.inf, dtype=torch.float64)
        self.best_acc = torch.zeros(num_members, dtype=torch.float64)
        self.counter = torch.zeros(num_members, dtype=torch.long)

    def step(self, val_loss: Tensor, val_acc: Tensor) -> tuple[Tensor, Tensor]:
        """Update with one epoch's scores; return ``(improved, stop)`` masks."""
        val_loss = val_loss.detach().to("cpu", torch.float64)
        val_acc = val_acc.detach().to("cpu", torch.float64)
        if self.rule == "none":
            improved = torch.ones_like(self.counter, dtype=torch.bool)
        elif self.rule == "loss":
            improved = val_loss < self.best_loss
            self.best_loss = torch.where(improved, val_loss, self.best_loss)
        else:
            improved = (val_loss <= self.best_loss) | (val_acc >= self.best_acc)
            self.best_loss = torch.where(
                improved, torch.minimum(val_loss, self.best_loss), self.best_loss
            )
            self.best_acc = torch.where(
                improved, torch.maximum(val_acc, self.best_acc), self.best_acc
            )
        self.counter = torch.where(improved, 0, self.counter + 1)
        return improved, self.counter >= self.patience

    def select(self, index: Tensor) -> None:
        """Keep the members at ``index`` (in that order)."""
        self.best_loss = self.best_loss[index]
        self.best_acc = self.best_acc[index]
        self.counter = self.counter[index]

    def state_dict(self) -> dict[str, Tensor]:
        """The members' best scores and waiting counters (copies)."""
        return {
            "best_loss": self.best_loss.clone(),
            "best_acc": self.best_acc.clone(),
            "counter": self.counter.clone(),
        }

    def load_state_dict(self, state: Mapping[str, Tensor]) -> None:
        """Take the state :meth:`state_dict` returned (any number of members)."""
        self.best_loss = state["best_loss"].clone()
        self.best_acc = state["best_acc"].clone()
        self.counter = state["counter"].clone()


class SingleMember(Module):
    """A plain ``[N, C]`` model seen as a batched model of one member.

    Its parameters have no member dimension; the trainer treats it as one run.
    With a ``stream``, every call runs with the member's random stream
    installed as the global one
    (:meth:`~diffresnet_pyg.nn.streams.MemberStream.installed`): the module
    draws exactly what it would draw alone from the global generators,
    whatever else draws from them between its calls.

    Args:
        module (torch.nn.Module): Maps ``(x, graph)`` (and ``edge_weight``,
            when given) to ``[N, C]``.
        stream (MemberStream, optional): The run's random stream.
            (default: :obj:`None`: the global generators)
    """

    num_members = 1

    def __init__(self, module: Module, stream: MemberStream | None = None) -> None:
        super().__init__()
        self.module = module
        self.stream = stream

    def forward(
        self, x: Tensor, graph: Any, edge_weight: Tensor | None = None
    ) -> Tensor:
        """Return ``[N, 1, C]``."""
        args = (x, graph) if edge_weight is None else (x, graph, edge_weight)
        if self.stream is None:
            return self.module(*args).unsqueeze(1)
        with self.stream.installed(x.device):
            return self.module(*args).unsqueeze(1)


@dataclass(frozen=True)
class MemberResult:
    """Outcome of one member's run.

    Attributes:
        epochs (int): Epochs trained.
        best_epoch (int): The epoch whose weights were tested (the last
            checkpoint, or the final epoch when ``max_epochs`` was reached).
        val_loss (float): Validation loss of the tested weights.
        val_acc (float): Validation accuracy of the tested weights.
        test_acc (float or None): Test accuracy, read once, of the tested
            weights; :obj:`None` when the run had no test nodes (tuning).
        train_seconds (float): Wall time of the batch until this member
            finished, divided by the batch's initial size.
        metrics (dict or None): What ``measure`` of :func:`train_members`
            returned for the tested weights' outputs (:obj:`None` without
            ``measure``).
    """

    epochs: int
    best_epoch: int
    val_loss: float
    val_acc: float
    test_acc: float | None
    train_seconds: float
    metrics: dict[str, float] | None = None


@dataclass(frozen=True)
class EpochStatus:
    """The members still training after an epoch, for progress reports.

    Every tuple holds one entry per active member, in batch order.

    Attributes:
        epoch (int): The epoch (from 1).
        members (tuple[int, ...]): The active members' indices in the batch.
        val_acc (tuple[float, ...]): Validation accuracy after this epoch.
        best_val_acc (tuple[float, ...]): Validation accuracy of the current
            checkpoint (the weights that would be tested now).
        best_epoch (tuple[int, ...]): The checkpoint's epoch.
        waiting (tuple[int, ...]): Epochs since the last improvement (the
            patience counter of the early-stopping rule).
    """

    epoch: int
    members: tuple[int, ...]
    val_acc: tuple[float, ...]
    best_val_acc: tuple[float, ...]
    best_epoch: tuple[int, ...]
    waiting: tuple[int, ...]


def make_optimizer(
    name: str,
    params: Any,
    lr: float,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
    decay_params: Sequence[Tensor] | None = None,
    own_decays: Sequence[tuple[Sequence[Tensor], float]] = (),
) -> torch.optim.Optimizer:
    """An optimizer from :data:`OPTIMIZERS` (``momentum`` is SGD's only).

    With ``decay_params``, ``weight_decay`` applies to those parameters only
    (a second parameter group holds the others, without decay). Each
    ``(parameters, decay)`` of ``own_decays`` is a group of its own with that
    decay, whatever ``weight_decay`` and ``decay_params`` say.
    """
    if name not in OPTIMIZERS:
        raise ValueError(
            f"unknown optimizer {name!r}; allowed: {', '.join(OPTIMIZERS)}"
        )
    kwargs: dict[str, Any] = {"lr": lr, "weight_decay": weight_decay}
    if name == "sgd":
        kwargs["momentum"] = momentum
    elif momentum:
        raise ValueError(f"'momentum' applies to 'sgd' only, not to {name!r}")
    params = list(params)
    groups = [{"params": list(own), "weight_decay": decay} for own, decay in own_decays]
    owned = {id(p) for group in groups for p in group["params"]}
    params = [p for p in params if id(p) not in owned]
    if decay_params is not None:
        decay_ids = {id(p) for p in decay_params}
        groups += [
            {"params": [p for p in params if id(p) in decay_ids]},
            {
                "params": [p for p in params if id(p) not in decay_ids],
                "weight_decay": 0.0,
            },
        ]
    else:
        groups.append({"params": params})
    return OPTIMIZERS[name]([g for g in groups if g["params"]], **kwargs)


def _member_logits(out: Tensor, index: Tensor) -> Tensor:
    """``out[index[b], b]`` for every member: ``[B, K, C]`` from ``[N, B, C]``."""
    members = torch.arange(out.size(1), device=out.device).unsqueeze(1)
    return out[index, members]


def _scores(logits: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """Per-member mean cross-entropy and accuracy of ``[B, K, C]`` logits."""
    b, k, c = logits.shape
    loss = F.cross_entropy(logits.reshape(b * k, c), y.reshape(b * k), reduction="none")
    acc = _ACCURACY.eval_batch({"y_true": y, "y_pred": logits})["acc"]
    return loss.view(b, k).mean(1), acc


def _select_members(
    model: Module, optimizer: torch.optim.Optimizer, keep: Tensor
) -> torch.optim.Optimizer:
    """Keep members ``keep`` of a batched model and of its optimizer's state."""
    old_state = optimizer.state
    new_params = []
    for module in model.modules():
        for name, p in list(module._parameters.items()):
            if p is None:
                continue
            new = Parameter(p.detach()[keep].clone(), requires_grad=p.requires_grad)
            module._parameters[name] = new
            new_params.append((p, new))
    replaced = {id(old): new for old, new in new_params}
    groups = [
        {**{k: v for k, v in g.items() if k != "params"}}
        | {"params": [replaced[id(p)] for p in g["params"]]}
        for g in optimizer.param_groups
    ]
    streams = getattr(model, "streams", None)
    if streams is not None:
        model.streams = [streams[i] for i in keep.tolist()]
    new_opt = type(optimizer)(groups, **optimizer.defaults)
    for old, new in new_params:
        if old in old_state:
            new_opt.state[new] = {
                key: value[keep].clone()
                if torch.is_tensor(value) and value.shape == old.shape
                else value
                for key, value in old_state[old].items()
            }
    return new_opt


def train_members(
    model: Module,
    x: Tensor,
    graph: Any,
    y: Tensor,
    train_idx: Tensor,
    val_idx: Tensor,
    test_idx: Tensor | None,
    *,
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
    train_step: Callable[[Module, torch.optim.Optimizer, Tensor], None] | None = None,
    on_status: Callable[[EpochStatus], None] | None = None,
    measure: Callable[[Tensor], dict[str, float]] | None = None,
    edge_weight: Tensor | None = None,
    on_checkpoint: Callable[[dict[str, Any]], None] | None = None,
    checkpoint_seconds: float = 600.0,
    resume: Mapping[str, Any] | None = None,
) -> list[MemberResult]:
    r"""Train the ``B`` members of a batched model, each as its own run.

    Per epoch: one full-batch step on
    :math:`\sum_b \mathrm{CE}_b(\text{train}_b)`, then an evaluation-mode pass
    giving each member's validation loss and accuracy for its
    :class:`EarlyStopping` rule. A stopped member's checkpoint is restored
    and scored on its test nodes once; a member that reaches ``max_epochs``
    is scored with its final weights. Nothing is selected on test.

    Args:
        model (torch.nn.Module): A batched model (``[N, B, C]`` outputs,
            parameters stacked on dim 0) or a :class:`SingleMember`.
        x (torch.Tensor): Node features (dense or sparse, as the model takes).
        graph (Any): ``edge_index`` or sparse adjacency, passed to the model.
        y (torch.Tensor): Labels ``[N]``.
        train_idx (torch.Tensor): ``[B, T]`` training nodes of each member.
        val_idx (torch.Tensor): ``[B, V]`` validation nodes of each member.
        test_idx (torch.Tensor or None): ``[B, S]`` test nodes of each member;
            :obj:`None` never evaluates the test nodes (the results'
            ``test_acc`` is :obj:`None`), for runs that tune hyperparameters.
        optimizer (str, optional): A key of :data:`OPTIMIZERS`.
            (default: :obj:`"adam"`)
        lr (float, optional): Learning rate. (default: :obj:`0.01`)
        weight_decay (float, optional): L2 penalty (decoupled for ``adamw``).
            (default: :obj:`5e-4`)
        momentum (float, optional): SGD momentum. (default: :obj:`0.0`)
        max_epochs (int, optional): (default: :obj:`10000`)
        patience (int, optional): (default: :obj:`50`)
        early_stopping (str, optional): A rule of :data:`EARLY_STOPPING_RULES`.
            (default: :obj:`"loss_or_acc"`)
        decay_params (Callable, optional): Returns the parameters of the
            model that ``weight_decay`` applies to (default: all).
        own_decays (Callable, optional): Returns ``(parameters, decay)``
            pairs of the model: those parameters get that decay instead
            (:func:`make_optimizer`).
        on_epoch (Callable, optional): Called with ``(epoch, active members)``
            after every epoch.
        on_finish (Callable, optional): Called with ``(member, result)`` as
            soon as a member finishes (to save its row at once).
        train_step (Callable, optional): Replaces the full-batch step: called
            once per epoch, in training mode, with ``(model, optimizer,
            train_idx)`` of the active members, it makes the epoch's updates
            (e.g. one step per mini-batch,
            :func:`~diffresnet_pyg.experiments.minibatch.train_members_minibatch`).
            Evaluation stays full-batch on ``(x, graph)``.
        on_status (Callable, optional): Called after every epoch (before
            ``on_epoch``) with the active members' :class:`EpochStatus`, for
            progress reports.
        measure (Callable, optional): Called once per member as it finishes,
            with its evaluation-mode output ``[N, C]`` for the tested weights
            (the logits the test accuracy is read from); what it returns is
            the result's ``metrics`` (e.g. over-smoothing measures,
            :func:`~diffresnet_pyg.metrics.representation_metrics`).
        edge_weight (torch.Tensor, optional): Weights of the ``graph``'s
            edges, passed to the model as its third argument (the model is
            called as ``model(x, graph)`` without them).
        on_checkpoint (Callable, optional): Called, between two epochs once
            ``checkpoint_seconds`` have passed since the start or the last
            call, with the whole training state (a copy: weights, optimizer
            and early-stopping states, best-weight snapshots, random streams,
            finished members' results and the seconds trained), e.g. to save
            it to a file.
        checkpoint_seconds (float, optional): Seconds between two calls of
            ``on_checkpoint``. (default: :obj:`600.0`)
        resume (Mapping, optional): A state ``on_checkpoint`` was called
            with, for a ``model`` built as that one was (the same members
            from the same seeds) and the same inputs: training goes on after
            the state's epoch and gives the results of the uninterrupted
            call, bit for bit (at the same number of torch threads).

    Returns:
        list[MemberResult]: One result per member, in member order.
    """
    num_members = model.num_members
    for name, idx in (("train_idx", train_idx), ("val_idx", val_idx)):
        if idx.dim() != 2 or idx.size(0) != num_members:
            raise ValueError(
                f"'{name}' must have shape [{num_members}, K] (one row per "
                f"member), got {tuple(idx.shape)}"
            )
    if test_idx is not None and (
        test_idx.dim() != 2 or test_idx.size(0) != num_members
    ):
        raise ValueError(
            f"'test_idx' must have shape [{num_members}, K], got "
            f"{tuple(test_idx.shape)}"
        )
    if not isinstance(max_epochs, int) or max_epochs < 1:
        raise ValueError(f"'max_epochs' must be an integer >= 1, got {max_epochs!r}")
    single = isinstance(model, SingleMember)
    graph_args = (graph,) if edge_weight is None else (graph, edge_weight)
    opt = make_optimizer(
        optimizer,
        model.parameters(),
        lr,
        weight_decay,
        momentum,
        None if decay_params is None else decay_params(model),
        () if own_decays is None else own_decays(model),
    )
    stopper = EarlyStopping(early_stopping, patience, num_members)
    keep_snapshots = early_stopping != "none"
    snapshots = [p.detach().clone() for p in model.parameters()]
    ckpt_epoch = torch.zeros(num_members, dtype=torch.long)
    ckpt_loss = torch.full((num_members,), math.nan, dtype=torch.float64)
    ckpt_acc = torch.zeros(num_members, dtype=torch.float64)
    y_train, y_val = y[train_idx], y[val_idx]
    y_test = None if test_idx is None else y[test_idx]
    active = torch.arange(num_members)
    results: list[MemberResult | None] = [None] * num_members
    first_epoch, trained_before = 1, 0.0
    if resume is not None:
        _check_resume(resume, num_members, max_epochs)
        keep = torch.as_tensor(resume["active"], dtype=torch.long)
        if keep.numel() < num_members:
            opt = _select_members(model, opt, keep.to(snapshots[0].device))
            train_idx, val_idx, y_train, y_val, test_idx, y_test = _member_rows(
                keep, train_idx, val_idx, y_train, y_val, test_idx, y_test
            )
        active = keep
        model.load_state_dict(resume["model"])
        opt.load_state_dict(resume["optimizer"])
        snapshots = [
            s.to(p.device)
            for s, p in zip(resume["snapshots"], model.parameters(), strict=True)
        ]
        stopper.load_state_dict(resume["stopper"])
        ckpt_epoch = resume["best"]["epoch"].clone()
        ckpt_loss = resume["best"]["loss"].clone()
        ckpt_acc = resume["best"]["acc"].clone()
        for stream, state in zip(_streams(model), resume["streams"], strict=True):
            stream.set_state(state)
        _set_global_rng(resume["rng"], x.device)
        results = [None if r is None else MemberResult(**r) for r in resume["results"]]
        first_epoch = int(resume["epoch"]) + 1
        trained_before = float(resume["seconds"])
    start = saved = time.perf_counter()

    for epoch in range(first_epoch, max_epochs + 1):
        if (
            on_checkpoint is not None
            and epoch > first_epoch
            and time.perf_counter() - saved >= checkpoint_seconds
        ):
            state = {
                "epoch": epoch - 1,
                "active": active.tolist(),
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "snapshots": snapshots,
                "stopper": stopper.state_dict(),
                "best": {"epoch": ckpt_epoch, "loss": ckpt_loss, "acc": ckpt_acc},
                "streams": [stream.get_state() for stream in _streams(model)],
                "rng": _global_rng(x.device),
                "results": [r and dataclasses.asdict(r) for r in results],
                "seconds": trained_before + time.perf_counter() - start,
            }
            on_checkpoint(copy.deepcopy(state))
            saved = time.perf_counter()
        model.train()
        if train_step is not None:
            train_step(model, opt, train_idx)
        else:
            opt.zero_grad(set_to_none=True)
            loss, _ = _scores(_member_logits(model(x, *graph_args), train_idx), y_train)
            loss.sum().backward()
            opt.step()

        model.eval()
        with torch.no_grad():
            out = model(x, *graph_args)
            val_loss, val_acc = _scores(_member_logits(out, val_idx), y_val)
        improved, stop = stopper.step(val_loss, val_acc)
        ckpt_epoch = torch.where(improved, epoch, ckpt_epoch)
        ckpt_loss = torch.where(improved, val_loss.cpu().double(), ckpt_loss)
        ckpt_acc = torch.where(improved, val_acc.cpu().double(), ckpt_acc)
        if keep_snapshots and bool(improved.any()):
            with torch.no_grad():
                for snap, p in zip(snapshots, model.parameters(), strict=True):
                    if single:
                        snap.copy_(p)
                    else:
                        mask = improved.to(p.device).view(-1, *([1] * (p.dim() - 1)))
                        snap.copy_(torch.where(mask, p, snap))
        if on_status is not None:
            on_status(
                EpochStatus(
                    epoch=epoch,
                    members=tuple(active.tolist()),
                    val_acc=tuple(val_acc.detach().cpu().double().tolist()),
                    best_val_acc=tuple(ckpt_acc.tolist()),
                    best_epoch=tuple(ckpt_epoch.tolist()),
                    waiting=tuple(stopper.counter.tolist()),
                )
            )
        if on_epoch is not None:
            on_epoch(epoch, int(active.numel()))

        finished = stop | (epoch == max_epochs)
        if not bool(finished.any()):
            continue
        with torch.no_grad():  # restore the stopped members' checkpoints
            restore = stop.to(snapshots[0].device) if keep_snapshots else None
            if restore is not None:
                for snap, p in zip(snapshots, model.parameters(), strict=True):
                    if single:
                        if bool(restore[0]):
                            p.copy_(snap)
                    else:
                        mask = restore.view(-1, *([1] * (p.dim() - 1)))
                        p.copy_(torch.where(mask, snap, p))
            if restore is None or not bool(restore.all()):  # final weights
                last = finished & ~stop
                ckpt_epoch = torch.where(last, epoch, ckpt_epoch)
                ckpt_loss = torch.where(last, val_loss.cpu().double(), ckpt_loss)
                ckpt_acc = torch.where(last, val_acc.cpu().double(), ckpt_acc)
            test_acc = None
            if test_idx is not None or measure is not None:
                out = model(x, *graph_args)
            if test_idx is not None:
                _, test_acc = _scores(_member_logits(out, test_idx), y_test)
        seconds = (trained_before + time.perf_counter() - start) / num_members
        for b in torch.nonzero(finished).flatten().tolist():
            member = int(active[b])
            results[member] = MemberResult(
                epochs=epoch,
                best_epoch=int(ckpt_epoch[b]),
                val_loss=float(ckpt_loss[b]),
                val_acc=float(ckpt_acc[b]),
                test_acc=None if test_acc is None else float(test_acc[b]),
                train_seconds=seconds,
                metrics=None if measure is None else measure(out[:, b]),
            )
            if on_finish is not None:
                on_finish(member, results[member])
        keep = torch.nonzero(~finished).flatten()
        if keep.numel() == 0:
            break
        opt = _select_members(model, opt, keep.to(snapshots[0].device))
        snapshots = [s[keep.to(s.device)] for s in snapshots]
        stopper.select(keep)
        active, ckpt_epoch = active[keep], ckpt_epoch[keep]
        ckpt_loss, ckpt_acc = ckpt_loss[keep], ckpt_acc[keep]
        train_idx, val_idx, y_train, y_val, test_idx, y_test = _member_rows(
            keep, train_idx, val_idx, y_train, y_val, test_idx, y_test
        )
    return [r for r in results if r is not None]


def _member_rows(keep: Tensor, *tensors: Tensor | None) -> list[Tensor | None]:
    """The rows ``keep`` (members) of each ``[B, ...]`` tensor; :obj:`None` stays."""
    return [None if t is None else t[keep.to(t.device)] for t in tensors]


def _streams(model: Module) -> list[MemberStream]:
    """The members' random streams (none for a model without them)."""
    if isinstance(model, SingleMember):
        return [] if model.stream is None else [model.stream]
    return list(getattr(model, "streams", None) or [])


def _global_rng(device: torch.device) -> dict[str, Tensor | None]:
    """The global generators' states (CPU, and ``device``'s when CUDA)."""
    cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
    return {"cpu": torch.get_rng_state(), "cuda": cuda}


def _set_global_rng(state: Mapping[str, Tensor | None], device: torch.device) -> None:
    torch.set_rng_state(state["cpu"])
    if state["cuda"] is not None and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)


def _check_resume(resume: Mapping[str, Any], num_members: int, max_epochs: int) -> None:
    """The state is one of a model of ``num_members`` members (clear errors)."""
    missing = sorted(set(_STATE_KEYS) - set(resume))
    if missing:
        raise ValueError(f"'resume' is not a training state: missing {missing}")
    if len(resume["results"]) != num_members:
        raise ValueError(
            f"'resume' is the state of {len(resume['results'])} members, the "
            f"model has {num_members}"
        )
    if not 1 <= int(resume["epoch"]) < max_epochs:
        raise ValueError(
            f"'resume' is at epoch {resume['epoch']}, outside 1..{max_epochs - 1} "
            f"(max_epochs={max_epochs})"
        )


#: The entries of a training state (``on_checkpoint``, ``resume``).
_STATE_KEYS = (
    "epoch",
    "active",
    "model",
    "optimizer",
    "snapshots",
    "stopper",
    "best",
    "streams",
    "rng",
    "results",
    "seconds",
)


def stack_index(indices: Sequence[Tensor], device: torch.device | str) -> Tensor:
    """Stack per-member node index vectors of equal length into ``[B, K]``."""
    lengths = {int(i.numel()) for i in indices}
    if len(lengths) != 1:
        raise ValueError(
            "members batched together need the same number of nodes per split "
            f"part, got sizes {sorted(lengths)}"
        )
    return torch.stack([i.to(device) for i in indices])
