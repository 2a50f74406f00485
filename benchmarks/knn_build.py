r"""k-NN graph of Fashion-MNIST (70,000 images): build time, memory, agreement.

Builds the k-NN graph (default k = 10, self excluded, Euclidean distance) of
all 70,000 Fashion-MNIST images (60,000 training images, then the 10,000 test
images, in file order) with every backend of
:func:`diffresnet_pyg.nn.knn_graph` that is installed, side by side:

* ``torch``: the chunked pure-PyTorch search (default chunk, and any extra
  ``--chunk-sizes``, e.g. 59 = the rows per chunk of the earlier default
  bound of :math:`2^{22}` distances at 70,000 points);
* ``torch_cluster``, ``pyg_lib``: the compiled kernels (skipped, with a
  message, when not importable);
* ``faiss``: exact search with ``faiss.IndexFlatL2``.

on two feature sets: ``pixels`` (784-d, :math:`x / 255 \in [0, 1]`) and
``pca50`` (the projection on the 50 leading principal components of the
pixels, exact PCA of the images used, float32).

Every (features, backend) build runs in a fresh Python process
(``--isolation none`` runs them all in the benchmark's process, for smoke
tests). Reported:

* wall time of the :func:`knn_graph` call (after one untimed warm-up call on
  100 points, which loads the libraries' lazy state);
* peak extra memory: the process's peak resident set size during the build
  minus its resident size just before it (the peak is reset with
  ``/proc/self/clear_refs`` where Linux allows it; otherwise
  ``ru_maxrss`` after minus ``ru_maxrss`` before);
* agreement with the first backend (``torch``): the fraction of nodes whose
  neighbour sets are identical; every differing node is checked against the
  exact distances (integer arithmetic for pixels: squared distances of the
  0..255 values, exact in float64; float64 for PCA features): the node's
  list is *valid* when the distance of its farthest listed neighbour equals
  the true k-th nearest distance, i.e. the lists differ only by a choice
  among equal distances (ties) and not by a missed neighbour;
* exactness of each backend on a random sample of nodes (seed 0): the
  fraction of sampled nodes whose list is valid, and the largest relative
  excess of a listed distance over the true k-th distance.

Usage::

    python benchmarks/knn_build.py [--quick] [--num-images N] [--k 10]
        [--features pixels pca50] [--backends torch torch_cluster faiss]
        [--chunk-sizes 59] [--threads 2] [--sample 500] [--json FILE]
        [--isolation process|none] [--timeout SECONDS]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

FEATURES = ("pixels", "pca50")
BACKENDS = ("torch", "torch_cluster", "pyg_lib", "faiss")
QUICK_IMAGES = 2000
PCA_DIM = 50


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------


def load_images(num_images: int | None, root: str | None) -> np.ndarray:
    """Fashion-MNIST training then test images as uint8 ``[N, 784]``."""
    from diffresnet_pyg.fewshot.images import load_fashion_mnist

    parts = [load_fashion_mnist(root, train=train)[0] for train in (True, False)]
    images = torch.cat(parts).flatten(1).mul_(255).round_().to(torch.uint8)
    if num_images is not None:
        images = images[:num_images]
    return images.numpy()


def pca_projection(x: np.ndarray, dim: int) -> np.ndarray:
    r"""Exact PCA: coordinates on the ``dim`` leading principal axes (float32).

    .. math::
        \mathbf{Z} = (\mathbf{X} - \mathbf{1}\bar{\mathbf{x}}^\top)
        \mathbf{V}_{:, 1:d}, \qquad
        \tfrac{1}{N-1} (\mathbf{X} - \mathbf{1}\bar{\mathbf{x}}^\top)^\top
        (\mathbf{X} - \mathbf{1}\bar{\mathbf{x}}^\top) = \mathbf{V}
        \boldsymbol{\Lambda} \mathbf{V}^\top

    (eigenvalues descending, in float64), each axis signed so that its
    largest-magnitude loading is positive.
    """
    xd = torch.from_numpy(x).double()
    centred = xd - xd.mean(dim=0)
    cov = centred.t() @ centred / (xd.size(0) - 1)
    _, vectors = torch.linalg.eigh(cov)
    axes = vectors[:, -dim:].flip(1)
    top = axes.abs().argmax(dim=0)
    axes = axes * axes[top, torch.arange(dim)].sign()
    return (centred @ axes).float().numpy()


def feature_matrix(images: np.ndarray, name: str) -> np.ndarray:
    """The float32 features ``name`` of the uint8 images."""
    pixels = images.astype(np.float32) / 255.0
    if name == "pixels":
        return pixels
    return pca_projection(pixels, PCA_DIM)


# ---------------------------------------------------------------------------
# One build, in a fresh process
# ---------------------------------------------------------------------------


def measure_build(spec: dict[str, Any]) -> dict[str, Any]:
    """Build one graph as ``spec`` says; save the ``[N, k]`` neighbours.

    Returns the wall time and the peak extra memory of the build.
    """
    threads = spec["threads"]
    torch.set_num_threads(threads)
    if spec["backend"] == "faiss":
        import faiss

        faiss.omp_set_num_threads(threads)
    from diffresnet_pyg.nn.knn import knn_graph
    from diffresnet_pyg.profiling import peak_rss, reset_peak_rss

    x = torch.from_numpy(np.load(spec["features"]))
    k, chunk = spec["k"], spec["chunk_size"]

    def build(points: torch.Tensor) -> torch.Tensor:
        return knn_graph(points, k, chunk_size=chunk, backend=spec["backend"])

    build(x[:100])  # warm-up: lazy library state, thread pools
    if spec["in_process"] and not reset_peak_rss():
        raise RuntimeError(
            "--isolation none needs a writable /proc/self/clear_refs (Linux) to "
            "reset the peak memory; use --isolation process"
        )
    with peak_rss() as memory:
        start = time.perf_counter()
        edge_index = build(x)
        seconds = time.perf_counter() - start
    method = memory.method
    if edge_index.size(1) != x.size(0) * k:
        raise RuntimeError(
            f"backend {spec['backend']!r} returned {edge_index.size(1)} edges, "
            f"expected {x.size(0)} x {k}"
        )
    center = edge_index[1]
    if not torch.equal(center, torch.arange(x.size(0)).repeat_interleave(k)):
        order = torch.argsort(center, stable=True)
        edge_index = edge_index[:, order]
    np.save(spec["result"], edge_index[0].view(-1, k).numpy())
    if spec["in_process"]:
        method += ", in the benchmark's own process"
    return {
        "seconds": seconds,
        "peak_extra_mib": memory.extra_mib,
        "memory_method": method,
        "threads": torch.get_num_threads(),
    }


def worker(spec: dict[str, Any]) -> None:
    """Entry point of a fresh build process: print the measurement as JSON."""
    print(json.dumps(measure_build(spec)))


def run_backend(
    features: Path,
    backend: str,
    k: int,
    chunk: int | None,
    threads: int,
    out: Path,
    isolation: str,
    timeout: float | None = None,
) -> dict[str, Any] | None:
    """Run one build in a fresh interpreter (or here, ``isolation="none"``).

    Returns ``None`` if the build process ran past ``timeout`` seconds (it is
    then killed).
    """
    spec = {
        "features": str(features),
        "backend": backend,
        "k": k,
        "chunk_size": chunk,
        "threads": threads,
        "result": str(out),
        "in_process": isolation == "none",
    }
    if isolation == "none":
        return measure_build(spec)
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
    }
    try:
        proc = subprocess.run(
            [sys.executable, __file__, "--worker", json.dumps(spec)],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return None
    if proc.returncode != 0:
        raise RuntimeError(f"{backend} build failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def available(backend: str) -> str | None:
    """``None`` if ``backend`` can run here, else why not."""
    if backend == "torch":
        return None
    if backend == "faiss":
        try:
            import faiss  # noqa: F401
        except ImportError:
            return "faiss is not installed (pip install faiss-cpu)"
        return None
    from diffresnet_pyg import typing as dtyping

    if backend == "torch_cluster" and not dtyping.WITH_TORCH_CLUSTER:
        return "torch_cluster is not importable"
    if backend == "pyg_lib":
        import torch_geometric.typing

        if not (dtyping.WITH_PYG_LIB and torch_geometric.typing.WITH_KNN):
            return "pyg-lib (with its knn kernel) is not importable"
    return None


# ---------------------------------------------------------------------------
# Agreement and exactness
# ---------------------------------------------------------------------------


def exact_sq_distances(
    reference: np.ndarray, nodes: np.ndarray, exact_integer: bool
) -> np.ndarray:
    """Squared distances ``[len(nodes), N]`` in float64 (exact for integers).

    For integer-valued ``reference`` (0..255 pixels) all products and sums are
    integers below :math:`2^{53}`, so float64 arithmetic is exact.
    """
    ref = torch.from_numpy(reference).double()
    sq = (ref * ref).sum(dim=1)
    out = []
    for start in range(0, len(nodes), 256):
        rows = torch.from_numpy(nodes[start : start + 256])
        d = sq[rows].unsqueeze(1) + sq.unsqueeze(0) - 2 * ref[rows] @ ref.t()
        if not exact_integer:
            d = d.clamp_min(0)
        d[torch.arange(len(rows)), rows] = float("inf")  # self excluded
        out.append(d.numpy())
    return np.concatenate(out) if out else np.empty((0, ref.size(0)))


def list_excess(
    dist: np.ndarray, nodes: np.ndarray, lists: np.ndarray, k: int
) -> np.ndarray:
    """Relative excess of each node's farthest listed distance over the true k-th.

    0 means the list is a valid k-NN list (ties allowed).
    """
    kth = np.partition(dist, k - 1, axis=1)[:, k - 1]
    listed = np.take_along_axis(dist, lists[nodes], axis=1).max(axis=1)
    kth_d, listed_d = np.sqrt(kth), np.sqrt(listed)
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = (listed_d - kth_d) / kth_d
    # a zero k-th distance (duplicates): any positive listed distance is a miss
    return np.where(kth_d > 0, relative, np.where(listed_d > 0, np.inf, 0.0))


def compare(
    reference: np.ndarray,
    exact_integer: bool,
    lists: dict[str, np.ndarray],
    k: int,
    sample: int,
) -> dict[str, dict[str, Any]]:
    """Agreement with the first backend, and exactness on a random sample."""
    names = list(lists)
    base = np.sort(lists[names[0]], axis=1)
    num_nodes = base.shape[0]
    rng = np.random.default_rng(0)
    sampled = np.sort(rng.choice(num_nodes, min(sample, num_nodes), replace=False))
    sample_dist = exact_sq_distances(reference, sampled, exact_integer)
    # exact ties only count as ties for integer data; floats allow rounding
    tol = 0.0 if exact_integer else 1e-9
    report: dict[str, dict[str, Any]] = {}
    for name in names:
        ids = np.sort(lists[name], axis=1)
        same = (ids == base).all(axis=1)
        differ = np.flatnonzero(~same)
        entry: dict[str, Any] = {
            "identical_fraction": float(same.mean()),
            "differing_nodes": int(differ.size),
        }
        if differ.size:
            dist = exact_sq_distances(reference, differ, exact_integer)
            local = np.arange(differ.size)
            excess_this = list_excess(dist, local, lists[name][differ], k)
            excess_base = list_excess(dist, local, lists[names[0]][differ], k)
            both = (excess_this <= tol) & (excess_base <= tol)
            entry["differing_both_valid"] = int(both.sum())
            entry["differing_valid"] = int((excess_this <= tol).sum())
            entry["differing_reference_valid"] = int((excess_base <= tol).sum())
            entry["differing_max_excess"] = float(
                max(excess_this.max(), excess_base.max())
            )
        excess = list_excess(
            sample_dist, np.arange(sampled.size), lists[name][sampled], k
        )
        entry["sample_valid_fraction"] = float((excess <= tol).mean())
        entry["sample_max_excess"] = float(excess.max())
        report[name] = entry
    return report


# ---------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    """Parse ``argv`` (default: the command line) and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke test: the first {QUICK_IMAGES} images",
    )
    parser.add_argument("--num-images", type=int, default=None)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--features", nargs="+", default=list(FEATURES))
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS))
    parser.add_argument(
        "--chunk-sizes",
        type=int,
        nargs="*",
        default=[],
        help="extra 'torch' builds with these query rows per chunk",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--isolation",
        choices=("process", "none"),
        default="process",
        help="'process': every build in a fresh process (default); 'none': all "
        "builds in this process, the peak memory reset between them (faster "
        "start, but memory freed by earlier builds may be reused unseen)",
    )
    parser.add_argument(
        "--sample", type=int, default=500, help="nodes checked for exactness"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="stop a build process after this many seconds (reported, left out "
        "of the comparison); only with --isolation process",
    )
    parser.add_argument("--root", default=None, help="Fashion-MNIST folder")
    parser.add_argument("--json", type=Path, default=None, help="write results")
    args = parser.parse_args(argv)
    if args.worker is not None:
        worker(json.loads(args.worker))
        return

    for name, allowed, given in (
        ("--features", FEATURES, args.features),
        ("--backends", BACKENDS, args.backends),
    ):
        bad = [value for value in given if value not in allowed]
        if bad:
            parser.error(f"{name}: unknown {bad}; allowed: {', '.join(allowed)}")
    if "torch" not in args.backends:
        parser.error("--backends must include 'torch' (the reference of agreement)")
    if args.k < 1 or args.threads < 1 or args.sample < 1:
        parser.error("--k, --threads and --sample must be >= 1")
    if args.timeout is not None and (args.timeout <= 0 or args.isolation == "none"):
        parser.error("--timeout must be > 0 and needs --isolation process")
    if any(c < 1 for c in args.chunk_sizes):
        parser.error("--chunk-sizes must be >= 1")
    if args.quick and args.num_images is not None:
        parser.error("--quick and --num-images are exclusive")
    num_images = QUICK_IMAGES if args.quick else args.num_images

    images = load_images(num_images, args.root)
    num_nodes = images.shape[0]
    runs: list[tuple[str, str, int | None]] = []
    for backend in ("torch", *[b for b in BACKENDS if b != "torch"]):
        if backend not in args.backends:
            continue
        why = available(backend)
        if why is not None:
            print(f"skipping backend {backend}: {why}")
            continue
        runs.append((backend, backend, None))
        if backend == "torch":
            runs += [(f"torch (chunk {c})", "torch", c) for c in args.chunk_sizes]
    print(
        f"Fashion-MNIST: {num_nodes} images (train then test), k={args.k}, "
        f"self excluded, Euclidean; {args.threads} threads per build; "
        f"torch {torch.__version__}; "
        + (
            "one fresh process per build"
            if args.isolation == "process"
            else "all builds in one process"
        )
    )

    results: dict[str, Any] = {
        "num_nodes": num_nodes,
        "k": args.k,
        "threads": args.threads,
        "features": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for feat in args.features:
            x = feature_matrix(images, feat)
            path = Path(tmp) / f"{feat}.npy"
            np.save(path, x)
            lists, rows = {}, {}
            timed_out = {}
            for label, backend, chunk in runs:
                out = Path(tmp) / f"{feat}-{len(lists)}.npy"
                row = run_backend(
                    path,
                    backend,
                    args.k,
                    chunk,
                    args.threads,
                    out,
                    args.isolation,
                    args.timeout,
                )
                if row is None:
                    print(
                        f"  {feat:6s} {label:16s} stopped after --timeout "
                        f"{args.timeout:g} s (process startup included)",
                        flush=True,
                    )
                    timed_out[label] = {"timed_out_after_seconds": args.timeout}
                    continue
                lists[label] = np.load(out)
                rows[label] = row
                print(
                    f"  {feat:6s} {label:16s} {row['seconds']:8.2f} s "
                    f"{row['peak_extra_mib']:8.1f} MiB",
                    flush=True,
                )
            if "torch" not in lists:
                print("  the 'torch' build (the reference) was stopped: no comparison")
                results["features"][feat] = {
                    "dim": x.shape[1],
                    "builds": rows,
                    "timed_out": timed_out,
                }
                continue
            reference = images if feat == "pixels" else x
            agreement = compare(reference, feat == "pixels", lists, args.k, args.sample)
            for label in rows:
                rows[label].update(agreement[label])
            results["features"][feat] = {
                "dim": x.shape[1],
                "feature_mib": x.nbytes / 2**20,
                "builds": rows,
                "timed_out": timed_out,
            }
            print_table(feat, x.shape[1], rows, args.sample)

    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")


def print_table(feat: str, dim: int, rows: dict[str, Any], sample: int) -> None:
    """Print one feature set's builds side by side, ratios to ``torch``."""
    base = rows["torch"]
    print(f"\n{feat} ({dim}-d)")
    print(
        f"{'backend':16s} {'seconds':>8s} {'x torch':>8s} {'peak MiB':>9s} "
        f"{'x torch':>8s} {'identical':>10s} {'differ':>7s} {'ties':>6s} "
        f"{'exact':>6s} {'t.exact':>7s} {'valid@' + str(sample):>10s}"
    )
    for label, row in rows.items():
        ties = row.get("differing_both_valid", 0)
        print(
            f"{label:16s} {row['seconds']:8.2f} "
            f"{row['seconds'] / base['seconds']:8.2f} "
            f"{row['peak_extra_mib']:9.1f} "
            f"{row['peak_extra_mib'] / max(base['peak_extra_mib'], 1e-9):8.2f} "
            f"{100 * row['identical_fraction']:9.3f}% "
            f"{row['differing_nodes']:7d} {ties:6d} "
            f"{row.get('differing_valid', 0):6d} "
            f"{row.get('differing_reference_valid', 0):7d} "
            f"{100 * row['sample_valid_fraction']:9.1f}%"
        )
    worst = max(
        [row.get("differing_max_excess", 0.0) for row in rows.values()]
        + [row["sample_max_excess"] for row in rows.values()]
    )
    print(
        "identical: same neighbour set as 'torch'; differ: nodes whose sets "
        "differ; ties: of those, nodes where both lists are exact k-NN lists "
        "(they differ only among equal distances); exact / t.exact: of those, "
        "nodes where this backend's / torch's list is exact; valid: sampled "
        "nodes whose list is an exact k-NN list. Largest relative excess of a "
        "listed "
        f"distance over the true k-th distance: {worst:.2e}"
    )
    print(f"memory: {base['memory_method']}")


if __name__ == "__main__":
    main()
