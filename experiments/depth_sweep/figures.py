"""Figures and tables of the depth study, from whatever rows exist.

Reads the sweep folders ``experiments/depth_sweep/<dataset>/`` (one per
dataset, written by ``diffresnet-pyg sweep configs/sweeps/<dataset>_depth.yaml``)
and their ``layerwise.jsonl`` (``layerwise.py``), and writes beside them:

* ``accuracy.png``: test accuracy against depth, the mean with its 95 % t
  interval as a band, one panel per dataset;
* ``energy.png``: the Dirichlet energy of each run's output (logits) against
  depth, log scale: the median over runs with the range as a band;
* ``layerwise.png``: the Dirichlet energy after every layer of one run (split
  0, init 0) of GCN and Diff-ResNet at each depth;
* ``table.md``: test accuracy (mean ± half of the 95 % interval, with the run
  count), median Dirichlet energy and MAD per method and depth, the paper's
  depth claims checked in numbers, and the training time per run with what
  the full 100 x 20 protocol would cost.

From the repository root::

    python experiments/depth_sweep/figures.py
"""

from __future__ import annotations

import argparse
import math
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from diffresnet_pyg.experiments.report.stats import summarize
from diffresnet_pyg.experiments.report.sweeps import sweep_summary
from diffresnet_pyg.experiments.results import RUNS_FILE, read_rows, write_atomic

HERE = Path(__file__).resolve().parent
DATASETS = {"cora": "Cora", "citeseer": "Citeseer"}
LAYERWISE_FILE = "layerwise.jsonl"
#: Depth at which the paper's claims are checked, and their thresholds.
CLAIM_DEPTH = 32
GCN_LOSS_OVER = 0.5
DIFF_RESNET_LOSS_UNDER = 0.1
#: Runs per point of the full protocol (100 splits x 20 inits).
PROTOCOL_RUNS = 2000


def _point_rows(sweep_dir: Path, point: Mapping[str, Any]) -> list[dict[str, Any]]:
    path = sweep_dir / point["dir"] / RUNS_FILE
    return read_rows(path) if path.is_file() else []


def _metric(rows: Sequence[Mapping[str, Any]], name: str) -> list[float]:
    """The finite values of one over-smoothing measure over the rows."""
    values = []
    for row in rows:
        value = (row.get("metrics") or {}).get(name)
        if isinstance(value, (int, float)) and math.isfinite(value):
            values.append(float(value))
    return values


def collect(sweep_dir: Path) -> dict[str, Any]:
    """Per method and depth: accuracy statistics and the runs' energies."""
    summary = sweep_summary(sweep_dir)
    methods: dict[str, dict[int, dict[str, Any]]] = {}
    for method in summary["methods"]:
        points: dict[int, dict[str, Any]] = {}
        for point in method["points"]:
            rows = [
                r
                for r in _point_rows(sweep_dir, point)
                if isinstance(r.get("test_acc"), (int, float))
                and math.isfinite(r["test_acc"])
            ]
            if not rows:
                continue
            accuracy = summarize([100.0 * r["test_acc"] for r in rows])
            points[int(point["value"])] = {
                "accuracy": accuracy,
                "energy": _metric(rows, "dirichlet_energy"),
                "mad": _metric(rows, "mad"),
                "seconds": [float(r["seconds"]) for r in rows],
                "expected": point["expected_runs"],
            }
        methods[method["label"]] = points
    depths = sorted({int(p["value"]) for m in summary["methods"] for p in m["points"]})
    return {"split": summary["split"], "methods": methods, "depths": depths}


def _cell(point: Mapping[str, Any] | None) -> str:
    if point is None:
        return "–"
    acc = point["accuracy"]
    if acc.n == 1:
        return f"{acc.mean:.2f} (1)"
    half = (acc.ci95[1] - acc.ci95[0]) / 2
    return f"{acc.mean:.2f} ± {half:.2f} ({acc.n})"


def _median_cell(point: Mapping[str, Any] | None, name: str) -> str:
    if point is None or not point[name]:
        return "–"
    return f"{statistics.median(point[name]):.3g}"


def relative_loss(points: Mapping[int, Mapping[str, Any]], depth: int) -> float | None:
    """``(best - acc(depth)) / best`` over the depths up to ``depth``."""
    if depth not in points:
        return None
    shallower = [p["accuracy"].mean for d, p in points.items() if d <= depth]
    best = max(shallower)
    return (best - points[depth]["accuracy"].mean) / best


def _header(depths: Sequence[int]) -> tuple[str, str]:
    """The head and rule lines of a Markdown table with one column per depth."""
    head = "| method | " + " | ".join(str(d) for d in depths) + " |"
    return head, "|---|" + "---|" * len(depths)


def table(name: str, data: Mapping[str, Any]) -> str:
    """The Markdown tables of one dataset."""
    methods = data["methods"]
    depths = data["depths"]
    split = data["split"]
    head, rule = _header(depths)
    lines = [
        f"### {name}",
        "",
        f"Per-class splits, master seed {split.get('master_seed')}, "
        f"{split.get('num_splits')} splits x {split.get('num_inits')} inits per "
        "point. Test accuracy (%), mean ± half of the 95 % t interval (runs):",
        "",
        head,
        rule,
    ]
    for label, points in methods.items():
        lines.append(
            f"| {label} | " + " | ".join(_cell(points.get(d)) for d in depths) + " |"
        )
    lines += [
        "",
        "Dirichlet energy of the output (median over the runs):",
        "",
        head,
        rule,
    ]
    for label, points in methods.items():
        cells = " | ".join(_median_cell(points.get(d), "energy") for d in depths)
        lines.append(f"| {label} | {cells} |")
    lines += [
        "",
        "Mean average cosine distance (MAD) of the output, all pairs (median):",
        "",
        head,
        rule,
    ]
    for label, points in methods.items():
        cells = " | ".join(_median_cell(points.get(d), "mad") for d in depths)
        lines.append(f"| {label} | {cells} |")
    lines += [
        "",
        f"Relative loss at depth {CLAIM_DEPTH} (from the best shallower depth):",
        "",
    ]
    for label, points in methods.items():
        loss = relative_loss(points, CLAIM_DEPTH)
        text = "not measured yet" if loss is None else f"{100 * loss:.1f} %"
        lines.append(f"- {label}: {text}")
    claims = []
    gcn = relative_loss(methods.get("GCN", {}), CLAIM_DEPTH)
    if gcn is not None:
        verdict = "holds" if gcn > GCN_LOSS_OVER else "does not hold"
        claims.append(
            f"GCN loses more than {100 * GCN_LOSS_OVER:.0f} % at {CLAIM_DEPTH} "
            f"layers: {verdict} ({100 * gcn:.1f} %)."
        )
    ours = relative_loss(methods.get("Diff-ResNet", {}), CLAIM_DEPTH)
    if ours is not None:
        verdict = "holds" if ours < DIFF_RESNET_LOSS_UNDER else "does not hold"
        claims.append(
            f"Diff-ResNet loses less than {100 * DIFF_RESNET_LOSS_UNDER:.0f} % at "
            f"{CLAIM_DEPTH} layers: {verdict} ({100 * ours:.1f} %)."
        )
    if claims:
        lines += ["", "The paper's claims:", "", *[f"- {c}" for c in claims]]
    lines += ["", *cost_lines(methods, depths)]
    return "\n".join(lines) + "\n"


def cost_lines(
    methods: Mapping[str, Mapping[int, Mapping[str, Any]]], depths: Sequence[int]
) -> list[str]:
    """Training seconds per run (one thread), and what the protocol would cost.

    A row's ``seconds`` is its share of its batch's training time, so the sum
    over the rows is the core time the study spent training. The projection
    to 100 splits x 20 inits multiplies each point's mean by 2,000 runs; it
    covers only the points with rows.
    """
    lines = [
        "Training time per run (s, mean over the runs, one torch thread):",
        "",
        *_header(depths),
    ]
    spent = full = 0.0
    measured = 0
    for label, points in methods.items():
        cells = []
        for d in depths:
            point = points.get(d)
            if point is None or not point["seconds"]:
                cells.append("–")
                continue
            mean = statistics.fmean(point["seconds"])
            cells.append(f"{mean:.3g}")
            spent += sum(point["seconds"])
            full += mean * PROTOCOL_RUNS
            measured += 1
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    missing = len(methods) * len(depths) - measured
    lines += [
        "",
        f"Core-hours spent training these rows: {spent / 3600:.1f}. At "
        f"{PROTOCOL_RUNS:,} runs per point (100 splits x 20 inits), the "
        f"{measured} points with rows would take {full / 3600:,.0f} core-hours"
        + (
            f"; {missing} points have no rows yet and are not counted."
            if missing
            else "."
        ),
    ]
    return lines


def _panels(all_data: Mapping[str, Any]) -> tuple[Any, list[Any]]:
    """A figure with one panel per dataset (matplotlib's Agg canvas)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6 * len(all_data), 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    count = len(all_data)
    return fig, [fig.add_subplot(1, count, i + 1) for i in range(count)]


def plot_accuracy(all_data: Mapping[str, Mapping[str, Any]], path: Path) -> None:
    """Test accuracy against depth with 95 % bands, one panel per dataset."""
    fig, axes = _panels(all_data)
    for ax, (name, data) in zip(axes, all_data.items(), strict=True):
        for i, (label, points) in enumerate(data["methods"].items()):
            depths = sorted(points)
            if not depths:
                continue
            acc = [points[d]["accuracy"] for d in depths]
            (line,) = ax.plot(
                depths, [a.mean for a in acc], marker="o", label=label, color=f"C{i}"
            )
            ax.fill_between(
                depths,
                [a.ci95[0] for a in acc],
                [a.ci95[1] for a in acc],
                color=line.get_color(),
                alpha=0.2,
            )
        ax.set_xscale("log", base=2)
        ax.set_xlabel("depth (layers, propagation steps, diffusion steps or time)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"{name}: accuracy vs depth (95 % interval)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.savefig(path, dpi=100)


def plot_energy(all_data: Mapping[str, Mapping[str, Any]], path: Path) -> None:
    """Dirichlet energy of the output against depth (log), one panel per dataset."""
    fig, axes = _panels(all_data)
    for ax, (name, data) in zip(axes, all_data.items(), strict=True):
        for i, (label, points) in enumerate(data["methods"].items()):
            depths = [d for d in sorted(points) if points[d]["energy"]]
            if not depths:
                continue
            energy = [points[d]["energy"] for d in depths]
            (line,) = ax.plot(
                depths,
                [statistics.median(e) for e in energy],
                marker="o",
                label=label,
                color=f"C{i}",
            )
            ax.fill_between(
                depths,
                [min(e) for e in energy],
                [max(e) for e in energy],
                color=line.get_color(),
                alpha=0.15,
            )
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("depth")
        ax.set_ylabel("Dirichlet energy of the output (logits)")
        ax.set_title(f"{name}: over-smoothing vs depth (median, range)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.savefig(path, dpi=100)


def plot_layerwise(
    rows_by_dataset: Mapping[str, Sequence[Mapping[str, Any]]], path: Path
) -> None:
    """Dirichlet energy after every layer of one run per depth (GCN, Diff-ResNet)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    methods = sorted({r["method"] for rows in rows_by_dataset.values() for r in rows})
    fig = Figure(
        figsize=(5 * len(methods), 4 * len(rows_by_dataset)), layout="constrained"
    )
    FigureCanvasAgg(fig)
    for i, (name, rows) in enumerate(rows_by_dataset.items()):
        for j, method in enumerate(methods):
            ax = fig.add_subplot(
                len(rows_by_dataset), len(methods), i * len(methods) + j + 1
            )
            mine = [r for r in rows if r["method"] == method]
            for depth in sorted({r["depth"] for r in mine}):
                layers = sorted(
                    (r for r in mine if r["depth"] == depth), key=lambda r: r["layer"]
                )
                energy = [max(r["dirichlet_energy_sym"], 1e-30) for r in layers]
                ax.plot([r["layer"] for r in layers], energy, label=f"depth {depth}")
            ax.set_yscale("log")
            ax.set_xlabel("layer (diffusion step for Diff-ResNet)")
            ax.set_ylabel("Dirichlet energy (sym normalization)")
            ax.set_title(f"{name}: {method}, split 0 / init 0", fontsize=9)
            ax.grid(alpha=0.3, which="both")
            ax.legend(fontsize=7)
    fig.savefig(path, dpi=100)


def main() -> None:
    """Write the figures and the tables from the rows there are."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=HERE)
    args = parser.parse_args()
    folder: Path = args.folder
    all_data = {
        name: collect(folder / key)
        for key, name in DATASETS.items()
        if (folder / key / "sweep.yaml").is_file()
    }
    if not all_data:
        raise SystemExit(f"no sweep folder under {folder} yet")
    text = "\n".join(table(name, data) for name, data in all_data.items())
    write_atomic(folder / "table.md", "# Depth study: tables\n\n" + text)
    plot_accuracy(all_data, folder / "accuracy.png")
    plot_energy(all_data, folder / "energy.png")
    layerwise = {
        name: read_rows(folder / key / LAYERWISE_FILE)
        for key, name in DATASETS.items()
        if (folder / key / LAYERWISE_FILE).is_file()
    }
    if layerwise:
        plot_layerwise(layerwise, folder / "layerwise.png")
    print(text)


if __name__ == "__main__":
    main()
