"""DiffusionConv at scale: time, memory and bandwidth of one diffusion step.

Graphs: **synthetic** stochastic block models (``sparse_stochastic_blockmodel_graph``,
10 equal blocks, average degree ``--avg-degree`` with ``--within`` of it inside
the node's block, undirected, no self loops) of ``--sizes`` nodes, plus the
real Coauthor-Physics graph (``graphdata/coauthor_phy`` under
``DIFFRESNET_PYG_DATA``; skipped with a message when absent). Node features are
standard normal, ``--channels`` wide.

All methods compute the same linear map, ``K`` products with the GCN-normalized
adjacency ``A_hat = D~^-1/2 (A + I) D~^-1/2``:

* ``ours``: ``DiffusionConv(step_size=1, num_steps=K, laplacian="sym",
  cached=True)``; with the ``"sym"`` Laplacian ``L = I - A_hat`` one Euler step
  of size 1 is ``x <- A_hat x``;
* ``sparse_mm``: ``K`` times ``torch.sparse.mm(A_hat, x)`` on a CSR ``A_hat``
  built with PyG's ``gcn_norm``;
* ``appnp_csr``: PyG's ``APPNP(K, alpha=0, cached=True)`` on a torch CSR
  ``adj_t`` (its ``message_and_aggregate`` path, ``torch.sparse.mm``);
* ``appnp_edge_index``: the same ``APPNP`` on ``edge_index`` (gather, scale,
  scatter-add; it materializes an ``nnz x F`` message tensor, so it is skipped
  when ``nnz * F > --scatter-max-elements``).

The script checks that every method's output and input gradient agree with
ours (relative max difference <= ``--tolerance``) and exits with status 1 if
not. Timings alternate between methods in every repetition; the median seconds
per step are reported for the forward pass (``torch.no_grad``) and for forward
plus backward (the gradient of ``<out, g>`` with respect to the input). Peak
memory is the extra memory of one call above what was in use before it: on
the CPU the process's resident-set high-water mark (``VmHWM``, reset through
``/proc/self/clear_refs`` before every call, after ``malloc_trim``), on CUDA
``torch.cuda.max_memory_allocated``. Bandwidth: bytes a step must move (CSR
values, column indices and row pointers; the input rows, between ``N * F * 4``
read once and ``nnz * F * 4`` gathered; the output ``N * F * 4``) over its time,
as a fraction of the machine's measured copy bandwidth (STREAM-like
``copy_`` of ``--stream-elements`` floats, best of 5).

Backward memory: ``--backward-steps`` steps (forward + backward) on the SBM
graph of ``--backward-nodes`` nodes with ``--backward-channels`` channels,
``ours`` (no dropout; dropout ``--dropout`` with masks regenerated in the
backward pass, ``recompute_masks=True``, when the installed ``DiffusionConv``
has it; dropout with stored masks) against the naive autograd loop ``x = x -
(L @ x)`` with ``torch.sparse.mm`` (``L = I - A_hat``; without dropout and
with ``torch.nn.functional.dropout`` before every step). ``ours`` without
dropout and with ``recompute_masks`` are measured at every step count; the
naive loop and stored masks (whose memory grows per step, and whose runs are
slow) at ``--backward-fit-steps``, and extrapolated linearly (labelled
``extrapolated``) to the larger step counts, as is any measurement predicted
to exceed ``--memory-limit-gb``. The bytes that autograd
saves for backward (dense tensors, counted once) are recorded through
``torch.autograd.graph.saved_tensors_hooks``.

Writes to ``--output``: ``timing.csv``, ``agreement.csv``, ``bandwidth.csv``,
``slopes.csv``, ``backward_memory.csv``, ``stream.json``, ``config.json``,
``summary.md`` and the figures ``time_vs_edges.png``, ``memory_vs_edges.png``,
``ratios.png``, ``backward_memory.png``.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/diffusion_scale.py [--threads 1]
        [--sizes 10000 ... 1000000] [--channels 16 64] [--device cpu|cuda]
        [--output experiments/scale/operator/results] [--quick]
"""

from __future__ import annotations

import argparse
import csv
import gc
import inspect
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torch_geometric
from torch import Tensor
from torch_geometric.nn import APPNP
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.utils import to_torch_csr_tensor

from diffresnet_pyg.nn import DiffusionConv
from diffresnet_pyg.profiling import peak_rss, read_status, reset_peak_rss
from diffresnet_pyg.synthetic import sparse_stochastic_blockmodel_graph

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("ours", "sparse_mm", "appnp_csr", "appnp_edge_index")
MODES = ("forward", "forward_backward")
BASELINES = ("sparse_mm", "appnp_csr", "appnp_edge_index")
TARGET_RATIO = 1.1
GIB = 2.0**30

HAS_RECOMPUTE = "recompute_masks" in inspect.signature(DiffusionConv).parameters


def log(message: str) -> None:
    print(message, flush=True)


# --------------------------------------------------------------------------
# Peak memory of one call


class MemoryProbe:
    """Time and peak extra memory of calls on one device.

    CPU: :func:`diffresnet_pyg.profiling.peak_rss`: the resident-set
    high-water mark of the process is reset (``echo 5 >
    /proc/self/clear_refs``) after a garbage collection and ``malloc_trim``
    (so freed heap pages are returned and cannot hide new allocations), and the
    peak is ``VmHWM`` after the call minus ``VmRSS`` before it. CUDA: the
    allocator's peak statistics.

    The resident set includes memory the C allocator keeps after ``free``:
    glibc serves blocks below its dynamic mmap threshold (up to 32 MiB) from
    the heap and may not return them, so code that allocates fresh tensors of
    a few MiB every step can grow the resident set beyond its live tensors.
    ``MALLOC_MMAP_THRESHOLD_=131072`` in the environment fixes the threshold
    and makes the peak track live memory (at some speed cost).
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.cpu_ok = False
        if device.type == "cpu":
            self.cpu_ok = reset_peak_rss() and read_status("VmHWM") is not None
            if not self.cpu_ok:
                log("peak memory: /proc/self/clear_refs unavailable, not measured")

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def _timed(self, fn: Callable[[], object]) -> tuple[object, float]:
        start = time.perf_counter()
        out = fn()
        self._sync()
        return out, time.perf_counter() - start

    def run(self, fn: Callable[[], object]) -> tuple[object, float, float]:
        """``(result, seconds, peak extra bytes)`` of ``fn()`` (NaN if unknown)."""
        if self.device.type == "cuda":
            gc.collect()  # cheap after gc.freeze() in main
            self._sync()
            torch.cuda.reset_peak_memory_stats(self.device)
            base = torch.cuda.memory_allocated(self.device)
            out, seconds = self._timed(fn)
            peak = float(torch.cuda.max_memory_allocated(self.device) - base)
            return out, seconds, peak
        if not self.cpu_ok:
            gc.collect()
            out, seconds = self._timed(fn)
            return out, seconds, math.nan
        with peak_rss(fallback=False, release=True) as memory:
            out, seconds = self._timed(fn)
        return out, seconds, memory.extra_bytes

    def calibrate(self, num_bytes: int) -> float:
        """Measured peak of allocating and filling ``num_bytes`` (a sanity check)."""
        n = num_bytes // 4
        _, _, peak = self.run(lambda: torch.ones(n, device=self.device).sum())
        return peak


# --------------------------------------------------------------------------
# Graphs


@dataclass
class Graph:
    """A benchmark graph: ``edge_index`` (both directions, no self loops)."""

    name: str
    kind: str
    edge_index: Tensor
    num_nodes: int

    @property
    def num_edges(self) -> int:
        """Directed edges (each undirected edge twice)."""
        return int(self.edge_index.size(1))

    @property
    def nnz(self) -> int:
        """Non-zeros of ``A_hat`` (edges plus one self loop per node)."""
        return self.num_edges + self.num_nodes


def sbm_graph(
    num_nodes: int, avg_degree: float, within: float, blocks: int, seed: int
) -> Graph:
    """The synthetic SBM graph of the benchmark (equal blocks, given degree)."""
    sizes = [num_nodes // blocks] * blocks
    sizes[-1] += num_nodes - sum(sizes)
    n_b = sizes[0]
    p_in = within * avg_degree / (n_b - 1)
    p_out = (1.0 - within) * avg_degree / (num_nodes - n_b)
    if not 0.0 <= p_in <= 1.0:
        raise ValueError(
            f"--avg-degree {avg_degree} is too large for blocks of {n_b} nodes"
        )
    probs = torch.full((blocks, blocks), p_out, dtype=torch.float64)
    probs.fill_diagonal_(p_in)
    edge_index = sparse_stochastic_blockmodel_graph(sizes, probs, seed=seed)
    return Graph(f"sbm_{num_nodes}", "synthetic SBM", edge_index, num_nodes)


def real_graph(name: str, root: str | None) -> Graph | None:
    """A standardized real graph (features dropped), or ``None`` if absent."""
    from diffresnet_pyg.data import load_dataset

    try:
        data = load_dataset(name, root, normalize_features=False, download=False)
    except FileNotFoundError as error:
        log(f"skipping {name}: {error}")
        return None
    short = name.split("/")[-1]
    return Graph(short, "real", data.edge_index, int(data.num_nodes))


# --------------------------------------------------------------------------
# The methods


@dataclass
class Methods:
    """Per graph: ``K`` and a ``K``-step callable ``x -> out`` per method."""

    steps: int
    fns: dict[str, Callable[[Tensor], Tensor]]
    setup_seconds: dict[str, float]


def gcn_csr(edge_index: Tensor, num_nodes: int) -> Tensor:
    """``A_hat`` as a torch CSR matrix (rows are targets), from PyG's ``gcn_norm``."""
    index, weight = gcn_norm(edge_index, None, num_nodes, add_self_loops=True)
    return to_torch_csr_tensor(index.flip(0), weight, size=(num_nodes, num_nodes))


def build_methods(
    graph: Graph,
    channels: int,
    device: torch.device,
    call_seconds: float,
    max_steps: int,
) -> Methods:
    """The four methods on ``graph``, normalizations computed (and cached).

    ``K`` is chosen so that one ``sparse_mm`` call with ``channels`` channels
    takes about ``call_seconds`` (between 1 and ``max_steps``).
    """
    n, ei = graph.num_nodes, graph.edge_index.to(device)
    probe = torch.zeros(n, 1, device=device)
    setup: dict[str, float] = {}

    start = time.perf_counter()
    a_hat = gcn_csr(ei, n)
    setup["sparse_mm"] = time.perf_counter() - start
    sample = torch.randn(n, channels, device=device)
    torch.sparse.mm(a_hat, sample)
    _, seconds, _ = MemoryProbe(device).run(lambda: torch.sparse.mm(a_hat, sample))
    steps = max(1, min(max_steps, round(call_seconds / max(seconds, 1e-9))))

    def sparse_mm(x: Tensor) -> Tensor:
        for _ in range(steps):
            x = torch.sparse.mm(a_hat, x)
        return x

    conv = DiffusionConv(1.0, steps, laplacian="sym", add_self_loops=True, cached=True)
    start = time.perf_counter()
    conv(probe, ei)
    setup["ours"] = time.perf_counter() - start

    adj_t = to_torch_csr_tensor(ei.flip(0), size=(n, n))
    appnp_csr = APPNP(steps, alpha=0.0, cached=True)
    start = time.perf_counter()
    appnp_csr(probe, adj_t)
    setup["appnp_csr"] = time.perf_counter() - start

    appnp_ei = APPNP(steps, alpha=0.0, cached=True)
    start = time.perf_counter()
    appnp_ei(probe, ei)
    setup["appnp_edge_index"] = time.perf_counter() - start

    fns = {
        "ours": lambda x: conv(x, ei),
        "sparse_mm": sparse_mm,
        "appnp_csr": lambda x: appnp_csr(x, adj_t),
        "appnp_edge_index": lambda x: appnp_ei(x, ei),
    }
    return Methods(steps, fns, setup)


def call(fn: Callable[[Tensor], Tensor], mode: str, x: Tensor, g: Tensor):
    """One forward (no grad) or forward + backward call; returns out or grad."""
    if mode == "forward":
        with torch.no_grad():
            return fn(x)
    leaf = x.detach().requires_grad_()
    fn(leaf).backward(g)
    return leaf.grad


# --------------------------------------------------------------------------
# Timing sweep


@dataclass
class Config:
    """One timing configuration."""

    graph: Graph
    channels: int
    methods: list[str]


def rel_diff(a: Tensor, b: Tensor) -> float:
    scale = float(b.abs().max())
    return float((a - b).abs().max()) / (scale if scale > 0 else 1.0)


def time_config(
    cfg: Config,
    methods: Methods,
    probe: MemoryProbe,
    reps: int,
    budget: float,
    tolerance: float,
    seed: int,
    quiet: bool,
) -> tuple[list[dict], list[dict]]:
    """Timing rows and agreement rows of one (graph, channels) configuration.

    The number of repetitions is what fits in ``budget`` seconds (judged by the
    warm-up round), clamped to ``[min(3, reps), 3 * reps]``.
    """
    graph, f, k = cfg.graph, cfg.channels, methods.steps
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(graph.num_nodes, f, generator=gen).to(probe.device)
    g = torch.randn(graph.num_nodes, f, generator=gen).to(probe.device)

    agreement = []
    reference: dict[str, Tensor] = {}
    warm = 0.0
    for mode in MODES:  # warm-up calls double as the agreement check
        for name in cfg.methods:
            start = time.perf_counter()
            out = call(methods.fns[name], mode, x, g)
            warm += time.perf_counter() - start
            if name == "ours":
                reference[mode] = out
            else:
                diff = rel_diff(out, reference[mode])
                agreement.append(
                    {
                        "graph": graph.name,
                        "channels": f,
                        "steps": k,
                        "method": name,
                        "quantity": "output" if mode == "forward" else "input grad",
                        "max_rel_diff": diff,
                        "agree": diff <= tolerance,
                    }
                )
            del out
    reference.clear()
    # about ``budget`` seconds of timed calls, at least 3 and at most 3 x ``reps``
    reps = max(min(3, reps), min(3 * reps, round(budget / max(warm, 1e-9))))

    seconds = {(m, mode): [] for m in cfg.methods for mode in MODES}
    peaks = {(m, mode): [] for m in cfg.methods for mode in MODES}
    for rep in range(reps):
        shift = rep % len(cfg.methods)
        order = cfg.methods[shift:] + cfg.methods[:shift]
        for name in order:
            for mode in MODES:
                out, sec, peak = probe.run(
                    lambda n=name, md=mode: call(methods.fns[n], md, x, g)
                )
                del out
                seconds[(name, mode)].append(sec / k)
                peaks[(name, mode)].append(peak)
        if not quiet:
            log(f"    rep {rep + 1}/{reps} done")

    rows = []
    for name in cfg.methods:
        for mode in MODES:
            times = seconds[(name, mode)]
            rows.append(
                {
                    "graph": graph.name,
                    "kind": graph.kind,
                    "num_nodes": graph.num_nodes,
                    "num_edges": graph.num_edges,
                    "nnz": graph.nnz,
                    "channels": f,
                    "method": name,
                    "mode": mode,
                    "steps_per_call": k,
                    "reps": reps,
                    "median_s_per_step": statistics.median(times),
                    "min_s_per_step": min(times),
                    "max_s_per_step": max(times),
                    "peak_bytes": statistics.median(peaks[(name, mode)]),
                    "setup_s": methods.setup_seconds[name],
                    "device": str(probe.device),
                    "threads": torch.get_num_threads(),
                }
            )
    return rows, agreement


def ratio_line(rows: list[dict], graph: str, f: int, mode: str) -> str:
    """``ratio ours/<baseline> ...`` for one configuration and mode."""
    t = {
        r["method"]: r["median_s_per_step"]
        for r in rows
        if r["graph"] == graph and r["channels"] == f and r["mode"] == mode
    }
    parts = []
    for base in BASELINES:
        if base in t:
            parts.append(f"ours/{base} {t['ours'] / t[base]:.3g}")
        else:
            parts.append(f"ours/{base} skipped")
    ok = all(t["ours"] / t[b] <= TARGET_RATIO for b in BASELINES if b in t)
    return (
        f"ratio [{graph} F={f} {mode}] "
        + "  ".join(parts)
        + f"  (<= {TARGET_RATIO}x: {'yes' if ok else 'no'})"
    )


# --------------------------------------------------------------------------
# Bandwidth


def stream_bandwidth(device: torch.device, elements: int, reps: int = 5) -> dict:
    """Best copy (2 x 4 bytes/element) and add (3 x 4) bandwidth in bytes/s."""
    a = torch.rand(elements, device=device)
    b = torch.rand(elements, device=device)
    c = torch.empty(elements, device=device)
    probe = MemoryProbe(device)
    out = {}
    for name, fn, moved in (
        ("copy", lambda: c.copy_(a), 8),
        ("add", lambda: torch.add(a, b, out=c), 12),
    ):
        fn()
        secs = [probe.run(fn)[1] for _ in range(reps)]
        out[f"{name}_bytes_per_s"] = moved * elements / min(secs)
        out[f"{name}_median_bytes_per_s"] = moved * elements / statistics.median(secs)
    out["elements"] = elements
    return out


def step_bytes(nnz: int, n: int, f: int) -> tuple[float, float]:
    """Bytes one CSR step moves: (input rows read once, every gathered row)."""
    operator = nnz * (4 + 8) + (n + 1) * 8
    output = n * f * 4
    return operator + n * f * 4 + output, operator + nnz * f * 4 + output


def bandwidth_rows(rows: list[dict], stream: dict) -> list[dict]:
    out = []
    for r in rows:
        if r["mode"] != "forward" or r["method"] == "appnp_edge_index":
            continue
        low, high = step_bytes(r["nnz"], r["num_nodes"], r["channels"])
        t = r["median_s_per_step"]
        out.append(
            {
                "graph": r["graph"],
                "channels": r["channels"],
                "method": r["method"],
                "s_per_step": t,
                "gb_per_s_low": low / t / 1e9,
                "gb_per_s_high": high / t / 1e9,
                "fraction_of_copy_low": low / t / stream["copy_bytes_per_s"],
                "fraction_of_copy_high": high / t / stream["copy_bytes_per_s"],
            }
        )
    return out


# --------------------------------------------------------------------------
# Linearity


def loglog_slope(xs: list[float], ys: list[float]) -> float:
    slope, _ = np.polyfit(np.log(xs), np.log(ys), 1)
    return float(slope)


def slope_rows(rows: list[dict]) -> list[dict]:
    """Log-log slopes of seconds per step against ``nnz * F`` (synthetic graphs).

    Over all points, and over the larger half of them (working sets far
    beyond the caches).
    """
    out = []
    for name in METHODS:
        for mode in MODES:
            pts = [
                (r["nnz"] * r["channels"], r["median_s_per_step"])
                for r in rows
                if r["kind"] == "synthetic SBM"
                and r["method"] == name
                and r["mode"] == mode
            ]
            if len({p[0] for p in pts}) < 2:
                continue
            upper = sorted(pts)[len(pts) // 2 :]
            fit_upper = len({p[0] for p in upper}) >= 2
            out.append(
                {
                    "method": name,
                    "mode": mode,
                    "points": len(pts),
                    "slope": loglog_slope([p[0] for p in pts], [p[1] for p in pts]),
                    "upper_half_points": len(upper),
                    "slope_upper_half": (
                        loglog_slope([p[0] for p in upper], [p[1] for p in upper])
                        if fit_upper
                        else math.nan
                    ),
                }
            )
    return out


# --------------------------------------------------------------------------
# Backward memory vs number of steps


class SavedBytes:
    """Bytes of distinct dense tensors autograd saves inside the context."""

    def __init__(self) -> None:
        self.seen: set[tuple[int, int]] = set()
        self.bytes = 0

    def pack(self, t: Tensor) -> Tensor:
        """Count ``t`` (once per storage) and keep it as it is."""
        if t.layout == torch.strided and t.numel() > 0:
            storage = t.untyped_storage()
            key = (storage.data_ptr(), storage.nbytes())
            if key not in self.seen:
                self.seen.add(key)
                self.bytes += storage.nbytes()
        return t

    def context(self):
        """The hooks as a context manager."""
        return torch.autograd.graph.saved_tensors_hooks(self.pack, lambda t: t)


def backward_modes(dropout: float) -> list[tuple[str, bool]]:
    """``(mode, measured at every --backward-steps)``.

    The others are measured at ``--backward-fit-steps`` only (they store per
    step, or are slow: the naive backward transposes the operator every step).
    """
    modes = [("ours, no dropout", True)]
    if HAS_RECOMPUTE:
        modes.append((f"ours, dropout {dropout}, recompute_masks", True))
    modes += [
        ("naive autograd, no dropout", False),
        (f"ours, dropout {dropout}, stored masks", False),
        (f"naive autograd, dropout {dropout}", False),
    ]
    return modes


def make_backward_fn(mode: str, graph: Graph, dropout: float, device: torch.device):
    """A callable ``(x, steps) -> out`` for one backward-memory mode."""
    n, ei = graph.num_nodes, graph.edge_index.to(device)
    if mode.startswith("ours"):
        kwargs = {}
        if "recompute" in mode:
            kwargs["recompute_masks"] = True
        p = 0.0 if "no dropout" in mode else dropout
        conv = DiffusionConv(
            1.0, 1, laplacian="sym", dropout=p, cached=True, **kwargs
        ).train()
        with torch.no_grad():
            conv(torch.zeros(n, 1, device=device), ei)  # cache the operator

        def ours(x: Tensor, steps: int) -> Tensor:
            conv.num_steps = steps  # one cached layer; only the step count varies
            return conv(x, ei)

        return ours

    a_hat = gcn_csr(ei, n).to_sparse_coo().coalesce()
    eye = torch.arange(n, device=device)
    index = torch.cat([a_hat.indices(), eye.expand(2, n)], dim=1)
    value = torch.cat([-a_hat.values(), torch.ones(n, device=device)])
    lap = torch.sparse_coo_tensor(index, value, (n, n)).coalesce().to_sparse_csr()
    p = 0.0 if "no dropout" in mode else dropout

    def naive(x: Tensor, steps: int) -> Tensor:
        for _ in range(steps):
            if p > 0:
                x = F.dropout(x, p, training=True)
            x = x - 1.0 * torch.sparse.mm(lap, x)
        return x

    return naive


def backward_memory(args, probe: MemoryProbe, graph: Graph) -> list[dict]:
    """Peak memory of forward + backward against the number of steps."""
    n, f, device = graph.num_nodes, args.backward_channels, probe.device
    gen = torch.Generator().manual_seed(args.seed + 1)
    x = torch.randn(n, f, generator=gen).to(device)
    g = torch.randn(n, f, generator=gen).to(device)
    limit = args.memory_limit_gb * GIB
    rows = []
    if not HAS_RECOMPUTE:
        log(
            "  DiffusionConv has no recompute_masks option in this version: "
            "that mode is not measured"
        )
    for mode, every in backward_modes(args.dropout):
        fn = make_backward_fn(mode, graph, args.dropout, device)
        measure = set(args.backward_steps if every else args.backward_fit_steps)
        wanted = sorted(set(args.backward_steps) | measure)
        measured: list[tuple[int, float]] = []
        for steps in wanted:
            predicted = (
                np.polyval(np.polyfit(*zip(*measured, strict=True), 1), steps)
                if len(measured) >= 2
                else 0.0
            )
            if steps in measure and predicted <= limit:
                torch.manual_seed(args.seed)
                saved = SavedBytes()

                def run(fn=fn, steps=steps, saved=saved):
                    leaf = x.detach().requires_grad_()
                    with saved.context():
                        out = fn(leaf, steps)
                    out.backward(g)
                    return leaf.grad

                _, seconds, peak = probe.run(run)
                measured.append((steps, peak))
                rows.append(
                    {
                        "mode": mode,
                        "steps": steps,
                        "peak_bytes": peak,
                        "saved_for_backward_bytes": saved.bytes,
                        "seconds": seconds,
                        "status": "measured",
                    }
                )
                log(
                    f"  {mode:42s} steps {steps:3d}: peak {peak / GIB:7.3f} GiB, "
                    f"saved for backward {saved.bytes / GIB:7.3f} GiB, {seconds:.1f} s"
                )
            else:
                if len(measured) < 2:
                    continue
                slope, icpt = np.polyfit(*zip(*measured, strict=True), 1)
                peak = float(slope * steps + icpt)
                rows.append(
                    {
                        "mode": mode,
                        "steps": steps,
                        "peak_bytes": peak,
                        "saved_for_backward_bytes": math.nan,
                        "seconds": math.nan,
                        "status": "extrapolated",
                    }
                )
                log(
                    f"  {mode:42s} steps {steps:3d}: peak {peak / GIB:7.3f} GiB "
                    "(extrapolated, linear fit)"
                )
        del fn
        gc.collect()
    for r in rows:
        r.update({"num_nodes": n, "num_edges": graph.num_edges, "channels": f})
    return rows


# --------------------------------------------------------------------------
# Output


def display_path(path: Path) -> str:
    """``path`` relative to the repository root when it lies inside it."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def write_csv(path: Path, rows: list[dict]) -> None:
    if not rows:
        return
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def fmt_s(seconds: float) -> str:
    return f"{seconds * 1e3:.3g} ms" if seconds < 1 else f"{seconds:.3g} s"


def fmt_b(num_bytes: float) -> str:
    if math.isnan(num_bytes):
        return "n/a"
    return (
        f"{num_bytes / 2**20:.1f} MiB"
        if num_bytes < GIB
        else (f"{num_bytes / GIB:.2f} GiB")
    )


def timing_markdown(rows, agreement, bandwidth, slopes, stream) -> list[str]:
    """Markdown tables of the timing sweep."""
    lines: list[str] = []
    graphs = list(dict.fromkeys((r["graph"], r["channels"]) for r in rows))
    for mode in MODES:
        lines += [
            f"## Seconds per step, {mode.replace('_', ' + ')} (median)",
            "",
            "| graph | nodes | nnz(A_hat) | F | K | "
            + " | ".join(METHODS)
            + " | ours/sparse_mm | ours/appnp_csr | ours/appnp_edge_index |",
            "|---" * (5 + len(METHODS) + 3) + "|",
        ]
        for graph, f in graphs:
            sel = {
                r["method"]: r
                for r in rows
                if r["graph"] == graph and r["channels"] == f and r["mode"] == mode
            }
            ours = sel["ours"]
            cells = [
                fmt_s(sel[m]["median_s_per_step"]) if m in sel else "skipped"
                for m in METHODS
            ]
            ratios = [
                f"{ours['median_s_per_step'] / sel[b]['median_s_per_step']:.2f}"
                if b in sel
                else "-"
                for b in BASELINES
            ]
            lines.append(
                f"| {graph} | {ours['num_nodes']:,} | {ours['nnz']:,} | {f} | "
                f"{ours['steps_per_call']} | " + " | ".join(cells + ratios) + " |"
            )
        lines.append("")
    for mode in MODES:
        lines += [
            f"## Peak extra memory per call, {mode.replace('_', ' + ')}",
            "",
            "| graph | F | K | " + " | ".join(METHODS) + " |",
            "|---" * (3 + len(METHODS)) + "|",
        ]
        for graph, f in graphs:
            sel = {
                r["method"]: r
                for r in rows
                if r["graph"] == graph and r["channels"] == f and r["mode"] == mode
            }
            cells = [
                fmt_b(sel[m]["peak_bytes"]) if m in sel else "skipped" for m in METHODS
            ]
            k = sel["ours"]["steps_per_call"]
            lines.append(f"| {graph} | {f} | {k} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += [
        "## One-time setup (normalization, first call with 1 channel)",
        "",
        "| graph | " + " | ".join(METHODS) + " |",
        "|---" * (1 + len(METHODS)) + "|",
    ]
    for graph in dict.fromkeys(r["graph"] for r in rows):
        sel = {r["method"]: r for r in rows if r["graph"] == graph}
        lines.append(
            f"| {graph} | "
            + " | ".join(fmt_s(sel[m]["setup_s"]) if m in sel else "-" for m in METHODS)
            + " |"
        )
    lines += [
        "",
        "## Bandwidth (forward, per step)",
        "",
        f"Measured copy bandwidth {stream['copy_bytes_per_s'] / 1e9:.2f} GB/s "
        f"(add: {stream['add_bytes_per_s'] / 1e9:.2f} GB/s), best of 5 on "
        f"{stream['elements']:,} floats. Bytes per step: CSR values, column "
        "indices and row pointers, the output, and the input between read once "
        "(low) and one gathered row per non-zero (high).",
        "",
        "| graph | F | method | GB/s (low-high) | fraction of copy bandwidth |",
        "|---|---|---|---|---|",
    ]
    for b in bandwidth:
        lines.append(
            f"| {b['graph']} | {b['channels']} | {b['method']} | "
            f"{b['gb_per_s_low']:.2f}-{b['gb_per_s_high']:.2f} | "
            f"{b['fraction_of_copy_low']:.2f}-{b['fraction_of_copy_high']:.2f} |"
        )
    lines += [
        "",
        "## Log-log slope of seconds per step against nnz x F (synthetic graphs)",
        "",
        "| method | mode | slope, all points | slope, larger half of nnz x F |",
        "|---|---|---|---|",
    ]
    for s in slopes:
        lines.append(
            f"| {s['method']} | {s['mode']} | {s['slope']:.2f} ({s['points']}) | "
            f"{s['slope_upper_half']:.2f} ({s['upper_half_points']}) |"
        )
    lines += [
        "",
        "## Agreement with ours (max |diff| / max |ours|)",
        "",
        "| graph | F | K | method | quantity | max rel. diff | agree |",
        "|---|---|---|---|---|---|---|",
    ]
    for a in agreement:
        lines.append(
            f"| {a['graph']} | {a['channels']} | {a['steps']} | {a['method']} | "
            f"{a['quantity']} | {a['max_rel_diff']:.1e} | {a['agree']} |"
        )
    return lines


def summary_markdown(
    rows, agreement, bandwidth, slopes, backward, stream, machine
) -> str:
    lines = [
        "# Diffusion step at scale: results",
        "",
        f"Machine: {machine['cpu']}, {machine['cpus']} logical CPUs, "
        f"{machine['threads']} torch thread(s), device {machine['device']}; "
        f"torch {machine['torch']}, PyG {machine['pyg']}; load average at start "
        f"{machine['load_start']}, at end {machine['load_end']}.",
        "",
    ]
    if rows:
        lines += timing_markdown(rows, agreement, bandwidth, slopes, stream)
    if backward:
        b0 = backward[0]
        lines += [
            "",
            f"## Backward memory against steps ({b0['num_nodes']:,} nodes, "
            f"{b0['num_edges']:,} edges, {b0['channels']} channels)",
            "",
            "| mode | steps | peak extra memory | saved for backward | seconds "
            "| status |",
            "|---|---|---|---|---|---|",
        ]
        for b in backward:
            sec = "-" if math.isnan(b["seconds"]) else f"{b['seconds']:.1f}"
            lines.append(
                f"| {b['mode']} | {b['steps']} | {fmt_b(b['peak_bytes'])} | "
                f"{fmt_b(b['saved_for_backward_bytes'])} | {sec} | {b['status']} |"
            )
    return "\n".join(lines) + "\n"


STYLES = {
    "ours": ("C0", "o"),
    "sparse_mm": ("C1", "s"),
    "appnp_csr": ("C2", "^"),
    "appnp_edge_index": ("C3", "v"),
}


def plot_vs_edges(rows: list[dict], key: str, ylabel: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    channels = sorted({r["channels"] for r in rows})
    fig, axes = plt.subplots(
        len(MODES), len(channels), figsize=(4.2 * len(channels), 7), squeeze=False
    )
    for i, mode in enumerate(MODES):
        for j, f in enumerate(channels):
            ax = axes[i][j]
            for name in METHODS:
                color, marker = STYLES[name]
                sel = [
                    r
                    for r in rows
                    if r["method"] == name and r["mode"] == mode and r["channels"] == f
                ]
                syn = sorted(
                    (r["nnz"], r[key]) for r in sel if r["kind"] == "synthetic SBM"
                )
                real = [(r["nnz"], r[key]) for r in sel if r["kind"] == "real"]
                if syn:
                    ax.plot(
                        *zip(*syn, strict=True), color=color, marker=marker, label=name
                    )
                if real:
                    ax.plot(
                        *zip(*real, strict=True),
                        color=color,
                        marker="*",
                        markersize=12,
                        linestyle="none",
                    )
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title(f"{mode.replace('_', ' + ')}, F = {f}", fontsize=10)
            ax.set_xlabel("non-zeros of A_hat (edges + nodes)")
            ax.set_ylabel(ylabel)
            ax.grid(True, which="both", alpha=0.3)
    axes[0][0].legend(
        fontsize=8, title="lines: synthetic SBM\nstars: real graph", title_fontsize=7
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_ratios(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    configs = list(dict.fromkeys((r["graph"], r["channels"]) for r in rows))
    fig, axes = plt.subplots(len(MODES), 1, figsize=(max(6, 0.9 * len(configs)), 7))
    width = 0.8 / len(BASELINES)
    for ax, mode in zip(axes, MODES, strict=True):
        for b, base in enumerate(BASELINES):
            xs, ys = [], []
            for c, (graph, f) in enumerate(configs):
                t = {
                    r["method"]: r["median_s_per_step"]
                    for r in rows
                    if r["graph"] == graph and r["channels"] == f and r["mode"] == mode
                }
                if base in t:
                    xs.append(c + (b - (len(BASELINES) - 1) / 2) * width)
                    ys.append(t["ours"] / t[base])
            ax.bar(xs, ys, width, color=STYLES[base][0], label=f"ours / {base}")
        ax.axhline(1.0, color="k", linewidth=0.8)
        ax.axhline(
            TARGET_RATIO,
            color="k",
            linestyle="--",
            linewidth=0.8,
            label=f"{TARGET_RATIO}x",
        )
        ax.set_yscale("log")
        ax.set_xticks(range(len(configs)))
        ax.set_xticklabels([f"{g}\nF={f}" for g, f in configs], fontsize=7)
        ax.set_ylabel("time ratio (lower: ours faster)")
        ax.set_title(mode.replace("_", " + "), fontsize=10)
        ax.grid(True, axis="y", which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_backward(backward: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, mode in enumerate(dict.fromkeys(b["mode"] for b in backward)):
        color = f"C{i}"
        sel = [b for b in backward if b["mode"] == mode]
        pts = [(b["steps"], b["peak_bytes"] / GIB) for b in sel]
        ax.plot(*zip(*pts, strict=True), color=color, linestyle=":", linewidth=1)
        meas = [
            (b["steps"], b["peak_bytes"] / GIB)
            for b in sel
            if b["status"] == "measured"
        ]
        extra = [
            (b["steps"], b["peak_bytes"] / GIB)
            for b in sel
            if b["status"] != "measured"
        ]
        ax.plot(
            *zip(*meas, strict=True), color=color, marker="o", linestyle="-", label=mode
        )
        if extra:
            ax.plot(
                *zip(*extra, strict=True),
                color=color,
                marker="o",
                markerfacecolor="none",
                linestyle="none",
            )
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("diffusion steps (forward + backward)")
    ax.set_ylabel("peak extra memory (GiB)")
    b0 = backward[0]
    ax.set_title(
        f"{b0['num_nodes']:,} nodes, {b0['channels']} channels (hollow: extrapolated)",
        fontsize=10,
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --------------------------------------------------------------------------
# Main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[10_000, 30_000, 100_000, 300_000, 1_000_000],
        help="node counts of the synthetic SBM graphs",
    )
    parser.add_argument(
        "--avg-degree",
        type=float,
        default=10.0,
        help="expected degree of the SBM graphs",
    )
    parser.add_argument(
        "--within",
        type=float,
        default=0.8,
        help="fraction of the expected degree inside the block",
    )
    parser.add_argument("--blocks", type=int, default=10, help="SBM blocks")
    parser.add_argument(
        "--real",
        nargs="*",
        default=None,
        help="real datasets (load_dataset names); default "
        "graphdata/coauthor_phy, none with --quick",
    )
    parser.add_argument(
        "--root", default=None, help="dataset root (default: DIFFRESNET_PYG_DATA)"
    )
    parser.add_argument("--channels", type=int, nargs="+", default=[16, 64])
    parser.add_argument(
        "--reps",
        type=int,
        default=5,
        help="timed repetitions per method and mode (the budget may change it "
        "between min(3, reps) and 3 x reps)",
    )
    parser.add_argument(
        "--config-seconds",
        type=float,
        default=40.0,
        help="time budget of the timed repetitions of one (graph, F)",
    )
    parser.add_argument(
        "--call-seconds",
        type=float,
        default=0.4,
        help="target duration of one timed call (sets K)",
    )
    parser.add_argument(
        "--max-steps", type=int, default=16, help="largest K (steps per timed call)"
    )
    parser.add_argument(
        "--scatter-max-elements",
        type=float,
        default=2e8,
        help="skip appnp_edge_index above this nnz * F",
    )
    parser.add_argument(
        "--tolerance",
        type=float,
        default=1e-4,
        help="largest allowed relative difference to ours",
    )
    parser.add_argument("--stream-elements", type=int, default=1 << 26)
    parser.add_argument("--backward-nodes", type=int, default=1_000_000)
    parser.add_argument("--backward-channels", type=int, default=64)
    parser.add_argument("--backward-steps", type=int, nargs="+", default=[1, 8, 64])
    parser.add_argument(
        "--backward-fit-steps",
        type=int,
        nargs="+",
        default=[2, 8],
        help="steps measured for the naive loop and stored masks (from 2 steps "
        "on, both of ours' work buffers are in use, so the fit sees only the "
        "per-step growth)",
    )
    parser.add_argument("--dropout", type=float, default=0.25)
    parser.add_argument(
        "--memory-limit-gb",
        type=float,
        default=16.0,
        help="extrapolate instead of running above this peak",
    )
    parser.add_argument("--no-sweep", action="store_true", help="skip the timing sweep")
    parser.add_argument(
        "--no-backward", action="store_true", help="skip the backward-memory experiment"
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:i]")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--output",
        type=Path,
        default=ROOT / "experiments" / "scale" / "operator" / "results",
    )
    parser.add_argument(
        "--from-results",
        action="store_true",
        help="only regenerate summary.md and the figures from the CSV files in "
        "--output",
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes for a smoke test (seconds)"
    )
    parser.add_argument("--quiet", action="store_true", help="less progress output")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes = [1000, 3000]
        args.channels = [8]
        args.reps = 2
        args.config_seconds = 0.0
        args.max_steps = 2
        args.stream_elements = 1 << 20
        args.backward_nodes = 2000
        args.backward_channels = 8
        args.backward_steps = [1, 2, 4]
        args.backward_fit_steps = [1, 2]
        args.real = [] if args.real is None else args.real
    elif args.real is None:
        args.real = ["graphdata/coauthor_phy"]
    errors = []
    if any(n < 10 * args.blocks for n in args.sizes + [args.backward_nodes]):
        errors.append("--sizes/--backward-nodes must be >= 10 * --blocks")
    if any(c < 1 for c in args.channels + [args.backward_channels]):
        errors.append("--channels/--backward-channels must be >= 1")
    if args.reps < 1 or args.max_steps < 1:
        errors.append("--reps and --max-steps must be >= 1")
    if args.config_seconds < 0:
        errors.append("--config-seconds must be >= 0")
    if not 0.0 < args.within <= 1.0 or args.avg_degree <= 0:
        errors.append("--within must be in (0, 1] and --avg-degree > 0")
    if not 0.0 <= args.dropout < 1.0:
        errors.append("--dropout must be in [0, 1)")
    if any(s < 1 for s in args.backward_steps + args.backward_fit_steps):
        errors.append("--backward-steps/--backward-fit-steps must be >= 1")
    if args.threads < 1:
        errors.append("--threads must be >= 1")
    if args.no_sweep and args.no_backward:
        errors.append("--no-sweep and --no-backward leave nothing to run")
    try:
        device = torch.device(args.device)
    except RuntimeError:
        device = torch.device("meta")
    if device.type not in ("cpu", "cuda"):
        errors.append(f"--device must be cpu or cuda, got {args.device!r}")
    elif device.type == "cuda" and not torch.cuda.is_available():
        errors.append("--device cuda given but no CUDA device is available")
    if errors:
        parser.error("; ".join(errors))
    args.device = device
    return args


def machine_info(args) -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    if args.device.type == "cuda":
        cpu += f"; GPU {torch.cuda.get_device_name(args.device)}"
    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "malloc_mmap_threshold": os.environ.get("MALLOC_MMAP_THRESHOLD_"),
        "device": str(args.device),
        "torch": torch.__version__,
        "pyg": torch_geometric.__version__,
        "python": sys.version.split()[0],
        "load_start": [round(v, 2) for v in os.getloadavg()],
    }


def sweep(args: argparse.Namespace, probe: MemoryProbe):
    """The timing sweep: ``(timing rows, agreement rows, graphs)``."""
    device = probe.device
    graphs: list[Graph] = []
    for n in args.sizes:
        t0 = time.perf_counter()
        graphs.append(
            sbm_graph(n, args.avg_degree, args.within, args.blocks, args.seed)
        )
        log(
            f"synthetic SBM graph: {n:,} nodes, {graphs[-1].num_edges:,} directed "
            f"edges ({time.perf_counter() - t0:.1f} s)"
        )
    for name in args.real:
        graph = real_graph(name, args.root)
        if graph is not None:
            graphs.append(graph)
            log(
                f"real graph {name}: {graph.num_nodes:,} nodes, "
                f"{graph.num_edges:,} directed edges"
            )

    rows: list[dict] = []
    agreement: list[dict] = []
    for graph in graphs:
        methods = build_methods(
            graph, max(args.channels), device, args.call_seconds, args.max_steps
        )
        k = methods.steps
        setup = ", ".join(f"{m} {s:.2f} s" for m, s in methods.setup_seconds.items())
        log(f"[{graph.name}] K = {k} steps per call; setup: {setup}")
        for f in args.channels:
            names = [
                m
                for m in METHODS
                if m != "appnp_edge_index" or graph.nnz * f <= args.scatter_max_elements
            ]
            if len(names) < len(METHODS):
                log(
                    f"  F={f}: appnp_edge_index skipped (nnz * F = "
                    f"{graph.nnz * f:.2g} > {args.scatter_max_elements:.2g})"
                )
            cfg = Config(graph, f, names)
            new_rows, new_agree = time_config(
                cfg,
                methods,
                probe,
                args.reps,
                args.config_seconds,
                args.tolerance,
                args.seed,
                args.quiet,
            )
            rows += new_rows
            agreement += new_agree
            worst = max(a["max_rel_diff"] for a in new_agree)
            ok = all(a["agree"] for a in new_agree)
            log(
                f"  F={f}: outputs agree: {ok} (max rel. diff {worst:.1e}, "
                f"tolerance {args.tolerance:.0e})"
            )
            for mode in MODES:
                sel = [r for r in new_rows if r["mode"] == mode]
                times = "  ".join(
                    f"{r['method']} {fmt_s(r['median_s_per_step'])}" for r in sel
                )
                log(f"  F={f} {mode} s/step: {times}")
                log("  " + ratio_line(new_rows, graph.name, f, mode))
        del methods
        gc.collect()

    return rows, agreement, graphs


def report(
    out: Path,
    rows: list[dict],
    agreement: list[dict],
    backward: list[dict],
    stream: dict,
    machine: dict,
) -> None:
    """Derived rows (bandwidth, slopes), ``summary.md`` and the figures."""
    bandwidth = bandwidth_rows(rows, stream)
    for b in bandwidth:
        if b["method"] == "ours":
            log(
                f"bandwidth [{b['graph']} F={b['channels']}] ours "
                f"{b['gb_per_s_low']:.2f}-{b['gb_per_s_high']:.2f} GB/s = "
                f"{b['fraction_of_copy_low']:.2f}-{b['fraction_of_copy_high']:.2f} "
                "of copy bandwidth"
            )
    slopes = slope_rows(rows)
    for s in slopes:
        log(
            f"log-log slope of s/step vs nnz*F [{s['method']} {s['mode']}]: "
            f"{s['slope']:.2f} ({s['points']} points), larger half "
            f"{s['slope_upper_half']:.2f} ({s['upper_half_points']} points)"
        )
    write_csv(out / "bandwidth.csv", bandwidth)
    write_csv(out / "slopes.csv", slopes)
    (out / "summary.md").write_text(
        summary_markdown(rows, agreement, bandwidth, slopes, backward, stream, machine)
    )
    if rows:
        plot_timing(rows, out)
    if backward:
        plot_backward(backward, out / "backward_memory.png")


def read_csv(path: Path) -> list[dict]:
    """Rows written by :func:`write_csv`, numbers and booleans parsed back."""
    if not path.is_file():
        return []

    def parse(value: str):
        if value in ("True", "False"):
            return value == "True"
        for kind in (int, float):
            try:
                return kind(value)
            except ValueError:
                pass
        return value

    with open(path, newline="") as f:
        return [{k: parse(v) for k, v in row.items()} for row in csv.DictReader(f)]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = args.output
    if args.from_results:
        config = json.loads((out / "config.json").read_text())
        rows = read_csv(out / "timing.csv")
        agreement = read_csv(out / "agreement.csv")
        backward = read_csv(out / "backward_memory.csv")
        stream = json.loads((out / "stream.json").read_text())
        report(out, rows, agreement, backward, stream, config["machine"])
        log(f"summary and figures regenerated in {out}")
        return 0 if all(a["agree"] for a in agreement) else 1

    gc.freeze()  # the imported modules never need collecting: keeps gc.collect fast
    torch.set_num_threads(args.threads)
    device = args.device
    out.mkdir(parents=True, exist_ok=True)
    machine = machine_info(args)
    start = time.perf_counter()
    log(
        f"device {device}, {torch.get_num_threads()} thread(s), "
        f"OMP_NUM_THREADS={machine['omp_num_threads']}, load {machine['load_start']}"
    )
    log(f"DiffusionConv recompute_masks available: {HAS_RECOMPUTE}")
    probe = MemoryProbe(device)
    calib = probe.calibrate(256 * 2**20)
    log(f"memory probe calibration: allocated 256.0 MiB, measured {fmt_b(calib)}")

    stream = stream_bandwidth(device, args.stream_elements)
    log(
        f"copy bandwidth {stream['copy_bytes_per_s'] / 1e9:.2f} GB/s, "
        f"add {stream['add_bytes_per_s'] / 1e9:.2f} GB/s"
    )

    rows, agreement, graphs = ([], [], []) if args.no_sweep else sweep(args, probe)

    backward: list[dict] = []
    if not args.no_backward:
        bgraph = next(
            (
                g
                for g in graphs
                if g.kind == "synthetic SBM" and g.num_nodes == args.backward_nodes
            ),
            None,
        ) or sbm_graph(
            args.backward_nodes, args.avg_degree, args.within, args.blocks, args.seed
        )
        log(
            f"backward memory: {bgraph.num_nodes:,} nodes, {bgraph.num_edges:,} "
            f"edges, {args.backward_channels} channels"
        )
        backward = backward_memory(args, probe, bgraph)

    machine["load_end"] = [round(v, 2) for v in os.getloadavg()]
    machine["total_seconds"] = round(time.perf_counter() - start, 1)
    write_csv(out / "timing.csv", rows)
    write_csv(out / "agreement.csv", agreement)
    write_csv(out / "backward_memory.csv", backward)
    (out / "stream.json").write_text(json.dumps(stream, indent=2) + "\n")
    config = {
        k: (
            display_path(v)
            if isinstance(v, Path)
            else str(v)
            if isinstance(v, torch.device)
            else v
        )
        for k, v in vars(args).items()
    }
    config.update(
        {
            "machine": machine,
            "recompute_masks_available": HAS_RECOMPUTE,
            "command": " ".join(sys.argv),
        }
    )
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    report(out, rows, agreement, backward, stream, machine)
    all_agree = all(a["agree"] for a in agreement)
    log(f"all outputs agree: {all_agree}")
    log(f"results written to {out} ({machine['total_seconds']:.0f} s)")
    return 0 if all_agree else 1


def plot_timing(rows: list[dict], out: Path) -> None:
    """The three figures of the timing sweep."""
    plot_vs_edges(
        rows,
        "median_s_per_step",
        "seconds per step (median)",
        out / "time_vs_edges.png",
    )
    plot_vs_edges(
        [{**r, "peak_bytes": r["peak_bytes"] / 2**20} for r in rows],
        "peak_bytes",
        "peak extra memory per call (MiB)",
        out / "memory_vs_edges.png",
    )
    plot_ratios(rows, out / "ratios.png")


if __name__ == "__main__":
    sys.exit(main())
