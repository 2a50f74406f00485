"""Every method on every shipped graph: run the table's experiments, write the table.

Two protocols:

- ``per_class``: the authors' protocol (20 train / 30 validation labels per
  class, the rest test, largest connected component), the first
  ``--splits`` splits x ``--inits`` inits from master seed 42;
- ``public``: Planetoid's public split (140/500/1000 on the full graph) of
  Cora and Citeseer, one split x ``--inits`` inits.

Every method runs its shipped config ``configs/<dataset>/<method>.yaml``
unchanged except for the split counts (and, for ``public``, the Planetoid file
on its full graph). Results go to ``results/<protocol>/<dataset>/<method>/``;
a rerun resumes. From the repository root::

    python experiments/datasets/table.py run per_class --datasets cora --methods gcn mlp
    python experiments/datasets/table.py run public --inits 10
    python experiments/datasets/table.py write

``write`` regenerates ``table.md`` (and the tables of ``README.md``) from
whatever rows exist, with every cell's run count.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from diffresnet_pyg.experiments.report.folder import collect_summary
from diffresnet_pyg.experiments.report.markdown import markdown_table
from diffresnet_pyg.experiments.results import RUNS_FILE, write_atomic
from diffresnet_pyg.experiments.runner import run_experiment
from diffresnet_pyg.experiments.schema import load_config

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

#: Table column -> dataset folder under ``configs/``.
DATASETS = {
    "Cora": "cora",
    "Citeseer": "citeseer",
    "Amazon-Computers": "amazon_computers",
    "Coauthor-CS": "coauthor_cs",
    "Coauthor-Physics": "coauthor_physics",
}
#: Table row -> config name under ``configs/<dataset>/``.
METHODS = {
    "Diff-ResNet (default)": "diffresnet",
    "Diff-ResNet (tuned)": "diffresnet_tuned",
    "Diff-ResNet (authors' model)": "diffresnet_reference",
    "No-Diff-ResNet": "no_diffresnet",
    "GCN": "gcn",
    "GAT": "gat",
    "APPNP": "appnp",
    "GCNII": "gcnii",
    "MLP": "mlp",
}
#: Cells too slow to rerun here (the authors' model takes 7 min a run on Cora
#: and 27 on Citeseer on one thread), read from the protocol study, which ran
#: the same config on the same first splits and inits.
ELSEWHERE = {
    ("per_class", dataset, "diffresnet_reference"): Path(
        f"experiments/protocol/results/{dataset}/diffresnet_reference"
    )
    for dataset in ("cora", "citeseer")
}
#: The lines of README.md between which ``write`` puts the tables.
BEGIN, END = "<!-- table: begin -->", "<!-- table: end -->"
#: Planetoid names of the datasets with a public split.
PUBLIC = {"cora": "planetoid/cora", "citeseer": "planetoid/citeseer"}


def folder(protocol: str, dataset: str, method: str) -> Path:
    """The results folder of one cell (relative to the repository root)."""
    if (protocol, dataset, method) in ELSEWHERE:
        return ELSEWHERE[protocol, dataset, method]
    return (HERE / "results" / protocol / dataset / method).relative_to(ROOT)


def overrides(protocol: str, dataset: str, splits: int, inits: int) -> list[str]:
    """The command-line overrides that turn a shipped config into a cell."""
    if protocol == "public":
        return [
            f"dataset.name={PUBLIC[dataset]}",
            "dataset.largest_component=false",
            "split.scheme=public",
            "split.num_splits=1",
            f"split.num_inits={inits}",
        ]
    return [f"split.num_splits={splits}", f"split.num_inits={inits}"]


def run(
    protocol: str, datasets: list[str], methods: list[str], splits: int, inits: int
) -> None:
    """Run (or resume) every cell with a shipped config."""
    for dataset in datasets:
        for method in methods:
            path = Path("configs") / dataset / f"{method}.yaml"
            if not path.exists():
                print(f"skip {dataset}/{method}: no {path}", flush=True)
                continue
            if (protocol, dataset, method) in ELSEWHERE:
                where = folder(protocol, dataset, method)
                print(f"skip {dataset}/{method}: read from {where}")
                continue
            out = folder(protocol, dataset, method)
            config = load_config(
                path, [*overrides(protocol, dataset, splits, inits), f"output={out}"]
            )
            print(f"{protocol} {dataset} {method}", flush=True)
            run_experiment(config, progress=False)


def cell(protocol: str, dataset: str, method: str) -> tuple[str, float | None]:
    """``mean ± half-width of the 95 % interval (runs)`` of one cell's test accuracy."""
    out = folder(protocol, dataset, method)
    if not (out / RUNS_FILE).exists():
        return "", None
    summary = collect_summary(out)
    acc = summary["test_acc"]
    half = (acc["ci95"][1] - acc["ci95"][0]) / 2
    runs = f"{summary['n_runs']}" + (
        "" if summary["complete"] else f"/{summary['expected_runs']}"
    )
    if summary["n_runs"] < 2:  # no interval from one run
        return f"{acc['mean']:.2f} ({runs})", acc["mean"]
    return f"{acc['mean']:.2f} ± {half:.2f} ({runs})", acc["mean"]


def table(protocol: str, datasets: dict[str, str]) -> str:
    """One markdown table: methods x datasets, the best mean of a column in bold."""
    cells = {
        (name, column): cell(protocol, dataset, METHODS[name])
        for name in METHODS
        for column, dataset in datasets.items()
    }
    best = {
        column: max(
            (v for (_, c), (_, v) in cells.items() if c == column and v is not None),
            default=None,
        )
        for column in datasets
    }
    rows = []
    for name in METHODS:
        row = [name]
        for column in datasets:
            text, value = cells[name, column]
            row.append(
                f"**{text}**"
                if value is not None and value == best[column]
                else text or "–"
            )
        if any(cell != "–" for cell in row[1:]):
            rows.append(row)
    return markdown_table(["method", *datasets], rows, "l" + "r" * len(datasets))


def write() -> Path:
    """Write ``table.md`` from the rows on disk."""
    text = "\n".join(
        [
            "# Test accuracy (%) on every shipped graph",
            "",
            "Generated by `python experiments/datasets/table.py write`. Each cell:",
            "mean test accuracy ± half-width of its 95 % interval (runs; `n/m`",
            "when only n of the m planned runs exist). Bold: best mean of the column.",
            "",
            "## Authors' per-class protocol (20/30 per class, largest component)",
            "",
            table("per_class", DATASETS),
            "",
            "## Planetoid public split (140/500/1000, full graph)",
            "",
            table("public", {k: v for k, v in DATASETS.items() if v in PUBLIC}),
            "",
        ]
    )
    path = HERE / "table.md"
    write_atomic(path, text)
    readme = HERE / "README.md"
    page = readme.read_text()
    start, end = page.index(BEGIN) + len(BEGIN), page.index(END)
    body = text.split("\n", 6)[6]  # the tables, without table.md's own header
    write_atomic(readme, page[:start] + "\n" + body + page[end:])
    return path


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    runner = sub.add_parser("run", help="run or resume cells")
    runner.add_argument("protocol", choices=("per_class", "public"))
    runner.add_argument("--datasets", nargs="+", default=list(DATASETS.values()))
    runner.add_argument("--methods", nargs="+", default=list(METHODS.values()))
    runner.add_argument("--splits", type=int, default=10)
    runner.add_argument("--inits", type=int, default=2)
    sub.add_parser("write", help="write table.md")
    args = parser.parse_args()
    os.chdir(ROOT)
    if args.command == "run":
        datasets = args.datasets
        if args.protocol == "public":
            datasets = [d for d in datasets if d in PUBLIC]
        run(args.protocol, datasets, args.methods, args.splits, args.inits)
    print(write())
