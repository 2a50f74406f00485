import json
import logging
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy import stats

from diffresnet_pyg.experiments.report import (
    Summary,
    plot_sweep,
    read_rows,
    report_directory,
    results_table,
    summarize,
    summarize_runs,
    sweep_summary,
    sweep_table,
    write_summary,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------------------
# Helpers writing synthetic results folders
# ---------------------------------------------------------------------------


def make_rows(num_splits, num_inits, *, base=0.8, seed=0, dataset="Cora", model="m"):
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(num_splits):
        for i in range(num_inits):
            rows.append(
                {
                    "dataset": dataset,
                    "model": model,
                    "split": s,
                    "split_seed": 1000 + s,
                    "init": i,
                    "init_seed": 2000 + 10 * s + i,
                    "epochs": int(100 + 10 * s + i),
                    "best_epoch": int(80 + 10 * s + i),
                    "val_acc": float(np.clip(base + rng.normal(0, 0.01), 0, 1)),
                    "val_loss": float(rng.uniform(0.5, 1.0)),
                    "test_acc": float(np.clip(base + rng.normal(0, 0.02), 0, 1)),
                    "seconds": 1.5 + s,
                }
            )
    return rows


def make_config(num_splits, num_inits, *, dataset="Cora", model="diff_resnet", **mp):
    return {
        "name": f"{dataset.lower()}-{model}",
        "dataset": {"name": dataset, "root": "/data", "normalize": True},
        "split": {
            "scheme": "gnnbench",
            "master_seed": 42,
            "num_splits": num_splits,
            "num_inits": num_inits,
        },
        "model": {"name": model, "hidden": 64, "step_size": 0.5, **mp},
        "train": {"lr": 0.01, "weight_decay": 0.0005, "max_epochs": 1000},
        "output": "results",
    }


def write_results(folder, rows, config=None):
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if config is not None:
        (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    with (folder / "runs.jsonl").open("w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    return folder


def make_sweep(root, *, missing=("B", 4)):
    """2 methods x 3 values on a log2 axis; one (method, value) has no folder."""
    root = Path(root)
    values = [1, 2, 4]
    methods = []
    for k, label in enumerate(["A", "B"]):
        dirs = []
        for v in values:
            sub = f"{label.lower()}/v{v}"
            dirs.append(sub)
            if (label, v) == missing:
                continue
            rows = make_rows(2, 2, base=0.7 + 0.02 * v + 0.05 * k, seed=10 * k + v)
            write_results(root / sub, rows, make_config(2, 2, num_layers=v))
        methods.append(
            {"label": label, "key": "model.num_layers", "values": values, "dir": dirs}
        )
    (root / "sweep.yaml").write_text(
        yaml.safe_dump({"axis": "num_layers", "methods": methods}, sort_keys=False)
    )
    return root


# ---------------------------------------------------------------------------
# summarize
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("n", [2, 3, 10, 57])
def test_summarize_matches_numpy_and_scipy(n):
    x = np.random.default_rng(n).normal(80, 3, size=n)
    s = summarize(x.tolist())
    assert isinstance(s, Summary)
    assert s.n == n
    assert s.mean == pytest.approx(np.mean(x))
    assert s.std == pytest.approx(np.std(x, ddof=0))
    assert s.min == pytest.approx(x.min())
    assert s.max == pytest.approx(x.max())
    assert s.median == pytest.approx(np.median(x))
    lo, hi = stats.t.interval(0.95, n - 1, loc=np.mean(x), scale=stats.sem(x))
    assert s.ci95 == pytest.approx((lo, hi))
    assert all(isinstance(v, float) for v in (s.mean, s.std, *s.ci95))
    assert Summary.from_dict(json.loads(json.dumps(s.to_dict()))) == s


def test_summarize_single_value():
    s = summarize([83.5])
    assert s.n == 1
    assert s.mean == s.median == s.min == s.max == 83.5
    assert s.std == 0.0
    assert s.ci95 == (83.5, 83.5)


@pytest.mark.parametrize(
    "values", [[], [1.0, float("nan")], [float("inf")], [[1.0, 2.0]], ["a"]]
)
def test_summarize_errors(values):
    with pytest.raises(ValueError):
        summarize(values)


# ---------------------------------------------------------------------------
# read_rows / summarize_runs
# ---------------------------------------------------------------------------


def test_read_rows_truncated_last_line(tmp_path, caplog):
    rows = make_rows(1, 3)
    path = tmp_path / "runs.jsonl"
    text = "".join(json.dumps(r) + "\n" for r in rows)
    path.write_text(text + json.dumps(rows[0])[:25])
    with caplog.at_level(logging.WARNING, logger="diffresnet_pyg.experiments.report"):
        got = read_rows(path)
    assert got == rows
    assert "truncated" in caplog.text
    assert read_rows(tmp_path) == rows  # a folder stands for its runs.jsonl


def test_read_rows_malformed_middle_line(tmp_path):
    rows = make_rows(1, 3)
    lines = [json.dumps(r) for r in rows]
    lines[1] = lines[1][:-5]
    path = tmp_path / "runs.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"runs\.jsonl:2"):
        read_rows(path)


def test_read_rows_non_object_and_missing(tmp_path):
    path = tmp_path / "runs.jsonl"
    path.write_text('{"a": 1}\n\n[1, 2]\n{"b": 2}\n')
    with pytest.raises(ValueError, match=r"runs\.jsonl:3"):
        read_rows(path)
    with pytest.raises(FileNotFoundError):
        read_rows(tmp_path / "nope.jsonl")


def test_summarize_runs_numbers():
    rows = make_rows(3, 4)
    out = summarize_runs(rows)
    test = np.array([r["test_acc"] for r in rows]) * 100
    assert out["n_runs"] == 12 and out["n_splits"] == 3
    assert out["test_acc"]["mean"] == pytest.approx(test.mean())
    assert out["test_acc"]["std"] == pytest.approx(test.std())
    assert out["test_acc"]["n"] == 12
    assert out["val_acc"]["mean"] == pytest.approx(
        100 * np.mean([r["val_acc"] for r in rows])
    )
    epochs = [r["epochs"] for r in rows]
    assert out["epochs"] == {
        "mean": pytest.approx(np.mean(epochs)),
        "median": pytest.approx(np.median(epochs)),
        "min": min(epochs),
        "max": max(epochs),
    }
    assert out["seconds"]["total"] == pytest.approx(sum(r["seconds"] for r in rows))
    assert [p["split"] for p in out["per_split"]] == [0, 1, 2]
    assert [p["split_seed"] for p in out["per_split"]] == [1000, 1001, 1002]
    assert out["per_split"][1]["n"] == 4
    assert out["per_split"][1]["test_acc_mean"] == pytest.approx(test[4:8].mean())
    json.dumps(out)


def test_summarize_runs_duplicates_and_errors(caplog):
    rows = make_rows(1, 2)
    again = dict(rows[0], test_acc=0.5)
    with caplog.at_level(logging.WARNING, logger="diffresnet_pyg.experiments.report"):
        out = summarize_runs([*rows, again])
    assert out["n_runs"] == 2 and out["duplicate_rows"] == 1
    assert out["test_acc"]["min"] > 50.0  # the first row of the run counts
    assert "duplicate" in caplog.text
    with pytest.raises(ValueError, match="no runs"):
        summarize_runs([])
    with pytest.raises(ValueError, match="test_acc"):
        summarize_runs([{k: v for k, v in rows[0].items() if k != "test_acc"}])
    with pytest.raises(ValueError, match="fraction"):
        summarize_runs([dict(rows[0], test_acc=83.0)])
    with pytest.raises(ValueError, match="finite"):
        summarize_runs([dict(rows[0], val_acc=math.nan)])


# ---------------------------------------------------------------------------
# write_summary / results_table
# ---------------------------------------------------------------------------


def test_write_summary(tmp_path):
    rows = make_rows(2, 3)
    folder = write_results(tmp_path / "exp", rows, make_config(2, 3))
    out = write_summary(folder)
    saved = json.loads((folder / "summary.json").read_text())
    assert saved == json.loads(json.dumps(out))
    test = np.array([r["test_acc"] for r in rows]) * 100
    assert out["n_runs"] == 6 and out["expected_runs"] == 6 and out["complete"]
    assert out["dataset"] == "Cora" and out["model"] == "diff_resnet"
    assert out["model_params"] == {"hidden": 64, "step_size": 0.5}
    assert "root" not in out["dataset_params"]
    assert out["split"]["master_seed"] == 42
    assert out["train"]["lr"] == 0.01
    assert out["test_acc"]["mean"] == pytest.approx(test.mean())
    assert out["test_acc"]["std"] == pytest.approx(test.std())
    lo, hi = stats.t.interval(0.95, 5, loc=test.mean(), scale=stats.sem(test))
    assert out["test_acc"]["ci95"] == pytest.approx([lo, hi])

    md = (folder / "summary.md").read_text()
    assert md.startswith("# cora-diff_resnet")
    for text in [
        "Cora",
        "gnnbench",
        "master seed 42",
        "2 splits × 3 inits",
        "diff_resnet (hidden=64, step_size=0.5)",
        "lr=0.01",
        "weight_decay=0.0005",
        f"{test.mean():.2f} ± {test.std():.2f}",
        f"[{lo:.2f}, {hi:.2f}]",
        "complete: true",
        "| test acc (%) |",
        "| val acc (%) |",
    ]:
        assert text in md, text
    assert "/data" not in md
    assert not list(folder.glob("*.tmp"))


def test_write_summary_incomplete_and_without_config(tmp_path, caplog):
    rows = make_rows(2, 3)
    folder = write_results(tmp_path / "exp", rows[:4], make_config(2, 3))
    out = write_summary(folder)
    assert out["complete"] is False and out["n_runs"] == 4
    assert "complete: false" in (folder / "summary.md").read_text()
    assert write_summary(folder, expected_runs=4)["complete"] is True

    bare = write_results(tmp_path / "bare", rows)
    out = write_summary(bare)
    assert out["dataset"] == "Cora" and out["model"] == "m"
    assert out["expected_runs"] is None and out["complete"] is None
    assert "complete: unknown" in (bare / "summary.md").read_text()

    with pytest.raises(FileNotFoundError):
        write_summary(tmp_path / "nothing")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "runs.jsonl").write_text("")
    with pytest.raises(ValueError, match="no runs"):
        write_summary(empty)


def test_results_table(tmp_path):
    a = write_results(tmp_path / "a", make_rows(2, 2, base=0.8), make_config(2, 2))
    b_rows = make_rows(2, 2, base=0.7, dataset="CiteSeer", seed=3)
    b = write_results(
        tmp_path / "b", b_rows[:3], make_config(2, 2, dataset="CiteSeer", model="gcn")
    )
    table = results_table([a, b])
    lines = table.strip().splitlines()
    assert len(lines) == 4
    assert lines[0].startswith("| label | dataset | runs | test acc (%) | 95% CI |")
    assert lines[2].startswith("| diff_resnet | Cora | 4 |")
    assert lines[3].startswith("| gcn | CiteSeer | 3/4 |")
    test = np.array([r["test_acc"] for r in b_rows[:3]]) * 100
    assert f"{test.mean():.2f} ± {test.std():.2f}" in lines[3]
    assert lines[3].endswith(f"| {np.median([r['epochs'] for r in b_rows[:3]]):g} |")
    labelled = results_table([a, b], labels=["first", "x|y"])
    assert "| first |" in labelled and "| x\\|y |" in labelled
    with pytest.raises(ValueError, match="labels"):
        results_table([a, b], labels=["one"])
    assert not (a / "summary.json").exists()  # tables do not write


# ---------------------------------------------------------------------------
# Sweeps
# ---------------------------------------------------------------------------


def test_sweep_summary_and_table(tmp_path):
    sweep = make_sweep(tmp_path / "sweep")
    summary = sweep_summary(sweep)
    assert summary["axis"] == "num_layers"
    assert summary["dataset"] == "Cora"
    assert summary["split"]["num_splits"] == 2
    assert [m["label"] for m in summary["methods"]] == ["A", "B"]
    assert summary["missing"] == [{"label": "B", "value": 4, "dir": "b/v4"}]
    point = summary["methods"][0]["points"][1]
    assert point["value"] == 2 and point["n"] == 4 and not point["missing"]
    rows = read_rows(sweep / "a" / "v2" / "runs.jsonl")
    test = np.array([r["test_acc"] for r in rows]) * 100
    assert point["test_acc"]["mean"] == pytest.approx(test.mean())
    assert summary["methods"][1]["points"][2]["missing"] is True
    assert summary["methods"][1]["points"][2]["test_acc"] is None

    table = sweep_table(sweep)
    lines = table.strip().splitlines()
    assert lines[0] == "| method \\ num_layers | 1 | 2 | 4 |"
    assert len(lines) == 4
    cells_a = [c.strip() for c in lines[2].strip("|").split("|")]
    cells_b = [c.strip() for c in lines[3].strip("|").split("|")]
    assert cells_a[0] == "A" and cells_b[0] == "B"
    assert cells_a[2] == f"{test.mean():.2f} ± {test.std():.2f} (4)"
    assert cells_b[3] == "–"
    assert all(c.endswith("(4)") for c in cells_a[1:] + cells_b[1:3])


def test_sweep_empty_folder_is_missing(tmp_path):
    sweep = make_sweep(tmp_path / "sweep")
    (sweep / "b" / "v4").mkdir(parents=True)
    (sweep / "b" / "v4" / "runs.jsonl").write_text("")
    assert len(sweep_summary(sweep)["missing"]) == 1
    (sweep / "sweep.yaml").write_text(
        yaml.safe_dump(
            {"axis": "x", "methods": [{"label": "A", "values": [1], "dir": []}]}
        )
    )
    with pytest.raises(ValueError, match="dirs"):
        sweep_summary(sweep)


def test_plot_sweep_png(tmp_path):
    import matplotlib.image

    sweep = make_sweep(tmp_path / "sweep")
    path = plot_sweep(sweep)
    assert path == sweep / "sweep.png"
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    image = matplotlib.image.imread(path)
    assert image.shape[:2] == (480, 640)

    other = plot_sweep(sweep, tmp_path / "out" / "small.png", figsize=(4, 3), dpi=50)
    assert other.read_bytes()[:8] == PNG_SIGNATURE
    assert matplotlib.image.imread(other).shape[:2] == (150, 200)


def test_sweep_categorical_values(tmp_path):
    import matplotlib.image

    sweep = tmp_path / "sweep"
    write_results(sweep / "p", make_rows(1, 2), make_config(1, 2))
    write_results(sweep / "q", make_rows(1, 2, seed=1), make_config(1, 2))
    write_results(sweep / "r", make_rows(1, 2, seed=2), make_config(1, 2))
    methods = [
        {"label": "A", "key": "k", "values": ["sym", "rw"], "dir": ["p", "q"]},
        {"label": "B", "key": "k", "values": ["rw", "none"], "dir": ["r", "s"]},
    ]
    (sweep / "sweep.yaml").write_text(
        yaml.safe_dump({"axis": "norm", "methods": methods})
    )
    lines = sweep_table(sweep).strip().splitlines()
    assert lines[0] == "| method \\ norm | sym | rw | none |"
    assert lines[2].endswith("(2) | – |") and lines[3].startswith("| B | – |")
    path = plot_sweep(sweep)
    assert matplotlib.image.imread(path).shape[:2] == (480, 640)


def test_sweep_equal_numbers_share_a_column(tmp_path):
    sweep = tmp_path / "sweep"
    write_results(sweep / "p", make_rows(1, 2), make_config(1, 2))
    write_results(sweep / "q", make_rows(1, 2, seed=1), make_config(1, 2))
    methods = [
        {"label": "A", "key": "k", "values": [1], "dir": ["p"]},
        {"label": "B", "key": "k", "values": [1.0, 0.5], "dir": ["q", "missing"]},
    ]
    (sweep / "sweep.yaml").write_text(yaml.safe_dump({"axis": "t", "methods": methods}))
    lines = sweep_table(sweep).strip().splitlines()
    assert lines[0] == "| method \\ t | 0.5 | 1 |"
    assert lines[2].startswith("| A | – |") and lines[3].startswith("| B | – |")
    assert lines[3].endswith("(2) |")


# ---------------------------------------------------------------------------
# report_directory
# ---------------------------------------------------------------------------


def test_report_directory_sweep(tmp_path):
    sweep = make_sweep(tmp_path / "sweep")
    written = report_directory(sweep)
    assert sweep / "sweep.md" in written and sweep / "sweep.png" in written
    assert sweep / "a" / "v1" / "summary.json" in written
    assert sweep / "b" / "v2" / "summary.md" in written
    assert not (sweep / "b" / "v4").exists()
    assert len(written) == 5 * 2 + 2
    assert all(p.is_file() for p in written)
    md = (sweep / "sweep.md").read_text()
    assert "| method \\ num_layers | 1 | 2 | 4 |" in md
    assert "2 splits × 2 inits" in md and "Cora" in md and "master seed 42" in md
    assert "b/v4" in md
    assert (sweep / "sweep.png").read_bytes()[:8] == PNG_SIGNATURE
    # a path to sweep.yaml stands for its folder
    assert report_directory(sweep / "sweep.yaml") == written


def test_report_directory_results_folder(tmp_path):
    folder = write_results(tmp_path / "exp", make_rows(2, 2), make_config(2, 2))
    written = report_directory(folder)
    assert written == [folder / "summary.json", folder / "summary.md"]
    assert json.loads(written[0].read_text())["n_runs"] == 4


def test_report_directory_walk(tmp_path):
    root = tmp_path / "results"
    write_results(root / "z" / "exp1", make_rows(2, 2), make_config(2, 2))
    write_results(
        root / "a" / "exp2",
        make_rows(1, 3, dataset="PubMed"),
        make_config(1, 3, dataset="PubMed", model="gcn"),
    )
    (root / "empty").mkdir()
    (root / "empty" / "runs.jsonl").write_text("")
    make_sweep(root / "sw")
    written = report_directory(root)
    assert root / "results.md" in written
    assert root / "z" / "exp1" / "summary.md" in written
    assert root / "sw" / "sweep.md" in written and root / "sw" / "sweep.png" in written
    assert all(p.is_file() for p in written)
    table = (root / "results.md").read_text()
    labels = [
        line.split("|")[1].strip()
        for line in table.splitlines()
        if line.startswith("| ") and "---" not in line
    ][1:]
    assert labels == [
        "a/exp2",
        "sw/a/v1",
        "sw/a/v2",
        "sw/a/v4",
        "sw/b/v1",
        "sw/b/v2",
    ] + ["z/exp1"]
    assert "| a/exp2 | PubMed | 3 |" in table
    assert "empty" not in table


def test_report_directory_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        report_directory(tmp_path / "missing")
    (tmp_path / "nothing" / "deeper").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="no results"):
        report_directory(tmp_path / "nothing")
    (tmp_path / "note.txt").write_text("x")
    with pytest.raises(ValueError):
        report_directory(tmp_path / "note.txt")
    sweep = make_sweep(tmp_path / "sweep", missing=None)
    for folder in sweep.rglob("runs.jsonl"):
        folder.write_text("")
    with pytest.raises(ValueError, match="no runs"):
        report_directory(sweep)


# ---------------------------------------------------------------------------
# Runs that reached max_epochs; a single run
# ---------------------------------------------------------------------------


def test_summary_counts_the_runs_that_reached_max_epochs(tmp_path, caplog):
    rows = make_rows(2, 3)
    rows[0].update(epochs=1000, best_epoch=1000)  # reached max_epochs
    rows[1].update(epochs=1000, best_epoch=990)  # stopped by its rule at the end
    rows[2].update(epochs=1000)
    del rows[2]["best_epoch"]  # an old row: judged by its epochs
    config = make_config(2, 3)
    folder = write_results(tmp_path / "exp", rows, config)
    with caplog.at_level(logging.WARNING, logger="diffresnet_pyg.experiments.report"):
        out = write_summary(folder)
    assert out["stopped_at_max_epochs"] == {
        "n": 2,
        "of": 6,
        "max_epochs": 1000,
        "early_stopping": None,
    }
    sentence = (
        "2 of 6 runs stopped at max_epochs=1000 (not converged by the "
        "early-stopping rule)."
    )
    assert f"**{sentence}**" in (folder / "summary.md").read_text()
    assert sentence in caplog.text
    assert (
        json.loads((folder / "summary.json").read_text())["stopped_at_max_epochs"]["n"]
        == 2
    )
    assert results_table([folder]).splitlines()[2].endswith(" (2 at max) |")

    caplog.clear()
    config["train"]["early_stopping"] = "none"
    folder = write_results(tmp_path / "none", rows, config)
    with caplog.at_level(logging.WARNING, logger="diffresnet_pyg.experiments.report"):
        write_summary(folder)
    md = (folder / "summary.md").read_text()
    assert "Early stopping is off: every run trains max_epochs=1000 epochs." in md
    assert "max_epochs" not in caplog.text
    assert "at max" not in results_table([folder])

    folder = write_results(tmp_path / "early", make_rows(2, 3), make_config(2, 3))
    assert write_summary(folder)["stopped_at_max_epochs"]["n"] == 0
    assert "No run reached max_epochs=1000." in (folder / "summary.md").read_text()
    bare = write_results(tmp_path / "bare", rows)  # no config: unknown
    assert write_summary(bare)["stopped_at_max_epochs"] is None
    assert "max_epochs" not in (bare / "summary.md").read_text()


def test_a_single_run_has_no_interval(tmp_path):
    from diffresnet_pyg.experiments.report.formatting import format_over_runs
    from diffresnet_pyg.experiments.report.plots import error_bar

    rows = make_rows(1, 1)
    folder = write_results(tmp_path / "one", rows, make_config(1, 1))
    out = write_summary(folder)
    test = 100 * rows[0]["test_acc"]
    md = (folder / "summary.md").read_text()
    assert f"| test acc (%) | {test:.2f} (1 run) | – |" in md
    assert "± 0.00" not in md and "nan" not in md.lower()
    assert "A single run has no spread and no interval." in md
    assert format_over_runs(out["test_acc"], plus="+-") == f"{test:.2f} (1 run)"
    assert format_over_runs(summarize([1.0, 3.0]).to_dict(), plus="+-") == (
        "2.00 +- 1.00 over 2 runs"
    )
    line = results_table([folder]).splitlines()[2]
    assert f"| {test:.2f} (1 run) | – |" in line and "± 0.00" not in line

    sweep = tmp_path / "sweep"
    write_results(sweep / "p", rows, make_config(1, 1))
    write_results(sweep / "q", make_rows(1, 2, seed=1), make_config(1, 2))
    methods = [{"label": "A", "key": "k", "values": [1, 2], "dir": ["p", "q"]}]
    (sweep / "sweep.yaml").write_text(yaml.safe_dump({"axis": "t", "methods": methods}))
    cells = sweep_table(sweep).strip().splitlines()[2].strip("|").split("|")
    assert cells[1].strip() == f"{test:.2f} (1 run)"
    assert cells[2].strip().endswith("(2)") and "±" in cells[2]
    summary = sweep_summary(sweep)
    bars = [error_bar(p["test_acc"]) for p in summary["methods"][0]["points"]]
    assert (
        math.isnan(bars[0])
        and bars[1] == summary["methods"][0]["points"][1]["test_acc"]["std"]
    )
    assert plot_sweep(sweep).read_bytes()[:8] == PNG_SIGNATURE
