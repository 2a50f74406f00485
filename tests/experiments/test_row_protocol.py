"""Rows and summaries that depend only on the planned seeds.

* Rows are strict JSON (non-finite numbers written as ``null``) with a
  ``status``; older rows (no status, bare ``NaN``) are still read.
* A summary is over the runs ``config.yaml`` plans: rows outside the plan
  stay in ``runs.jsonl`` but are ignored, and counted.
* A run that repeats the split seed and init seed of an earlier run is
  counted once; the runner names repeated seeds; the protocol size is bounded.
"""

import json
import logging
import math
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from diffresnet_pyg.data import split_seeds
from diffresnet_pyg.experiments.report import read_rows, summarize_runs, write_summary
from diffresnet_pyg.experiments.results import (
    append_rows,
    make_row,
    row_status,
    strict_json,
)
from diffresnet_pyg.experiments.runner import RunSpec, repeated_seeds
from diffresnet_pyg.experiments.schema import ConfigError, config_from_dict
from diffresnet_pyg.experiments.training import MemberResult
from tests.experiments.test_report import make_config, make_rows, write_results
from tests.fake_data import small_graph, write_graph_file

REPORT_LOGGER = "diffresnet_pyg.experiments.report"


def _reject_constant(name: str) -> float:
    raise ValueError(f"not strict JSON: {name}")


def strict_loads(line: str):
    """``json.loads`` that refuses ``NaN``, ``Infinity`` and ``-Infinity``."""
    return json.loads(line, parse_constant=_reject_constant)


# ---------------------------------------------------------------------------
# Strict JSON rows with a status
# ---------------------------------------------------------------------------


def test_append_rows_writes_non_finite_numbers_as_null(tmp_path):
    path = tmp_path / "runs.jsonl"
    nan_row = {"split": 0, "val_loss": math.nan, "extra": [1.0, math.inf]}
    append_rows(path, [nan_row, {"split": 1, "val_loss": -math.inf}])
    lines = path.read_text().splitlines()
    assert [strict_loads(line) for line in lines] == [
        {"split": 0, "val_loss": None, "extra": [1.0, None]},
        {"split": 1, "val_loss": None},
    ]
    assert strict_json({"a": 0.5}) == json.dumps({"a": 0.5})


@pytest.mark.parametrize(
    ("result", "max_epochs", "status"),
    [
        (MemberResult(30, 12, 0.7, 0.8, 0.81, 1.0), 200, "ok"),
        (MemberResult(200, 200, 0.7, 0.8, 0.81, 1.0), 200, "max_epochs"),
        (MemberResult(200, 150, 0.7, 0.8, 0.81, 1.0), 200, "ok"),  # stopped early
        (MemberResult(200, 200, 0.7, 0.8, 0.81, 1.0), None, "ok"),
        (MemberResult(200, 200, math.nan, 0.3, 0.3, 1.0), 200, "diverged"),
        (MemberResult(5, 1, math.inf, 0.3, 0.3, 1.0), 200, "diverged"),
        (MemberResult(5, 1, 0.7, 0.3, None, 1.0), 200, "ok"),  # tuning: no test
    ],
)
def test_make_row_status(result, max_epochs, status):
    run = RunSpec(0, 121958, 0, 5, None, None, None)
    row = make_row(
        "cora",
        "gcn",
        run,
        result,
        batch_members=1,
        batch_seconds=1.0,
        max_epochs=max_epochs,
    )
    assert row["status"] == status
    assert list(row)[-1] == "status"


def test_old_rows_without_status_or_with_bare_nan_are_read(tmp_path):
    path = tmp_path / "runs.jsonl"
    path.write_text(
        '{"split": 0, "epochs": 9, "best_epoch": 3, "val_loss": NaN}\n'
        '{"split": 1, "epochs": 10, "best_epoch": 10, "val_loss": 0.5}\n'
        '{"split": 2, "epochs": 10, "best_epoch": 4, "val_loss": 0.5}\n'
        '{"split": 3, "epochs": 10, "val_loss": 0.5, "status": "ok"}\n'
    )
    rows = read_rows(path)
    assert [row_status(r, 10) for r in rows] == ["diverged", "max_epochs", "ok", "ok"]


def test_summary_counts_statuses_and_means_over_finite_test_accuracies(tmp_path):
    rows = make_rows(2, 3, base=0.8)
    rows[1] = dict(rows[1], val_loss=None, test_acc=None, status="diverged")
    rows[2] = dict(rows[2], val_loss=math.nan)  # an old row: bare NaN, no status
    rows[3] = dict(rows[3], epochs=1000, best_epoch=1000)  # reached max_epochs
    folder = write_results(tmp_path / "exp", rows, make_config(2, 3))
    out = write_summary(folder)
    finite = [100 * r["test_acc"] for i, r in enumerate(rows) if i != 1]
    assert out["n_runs"] == 6 and out["complete"] is True
    assert out["status_counts"] == {"ok": 3, "diverged": 2, "max_epochs": 1}
    assert out["stopped_at_max_epochs"]["n"] == 1
    assert out["excluded_from_mean"] == {"repeated_seeds": 0, "non_finite_test_acc": 1}
    assert out["test_acc"]["n"] == 5
    assert out["test_acc"]["mean"] == pytest.approx(sum(finite) / 5)
    assert [p["n"] for p in out["per_split"]] == [2, 3]
    text = (folder / "summary.md").read_text()
    assert "2 diverged" in text and "1 run has no finite test accuracy" in text
    strict_loads((folder / "summary.json").read_text())


def test_summary_of_runs_without_a_finite_test_accuracy_says_so():
    rows = [dict(r, test_acc=None) for r in make_rows(1, 2)]
    with pytest.raises(ValueError, match="none of the 2 runs has a finite test"):
        summarize_runs(rows)


# ---------------------------------------------------------------------------
# Summaries over the planned runs only
# ---------------------------------------------------------------------------


def test_summary_ignores_rows_the_config_does_not_plan(tmp_path, caplog):
    rows = make_rows(3, 3)
    folder = write_results(tmp_path / "exp", rows, make_config(2, 2))
    before = (folder / "runs.jsonl").read_text()
    with caplog.at_level(logging.WARNING, logger=REPORT_LOGGER):
        out = write_summary(folder)
    planned = [r for r in rows if r["split"] < 2 and r["init"] < 2]
    assert out["n_runs"] == 4 and out["expected_runs"] == 4
    assert out["complete"] is True
    assert out["ignored_rows"] == {"not_planned": 5}
    assert out["test_acc"]["mean"] == pytest.approx(
        100 * sum(r["test_acc"] for r in planned) / 4
    )
    assert [p["split"] for p in out["per_split"]] == [0, 1]
    assert "ignoring 5 of 9 rows outside the plan" in caplog.text
    assert (
        "5 rows of runs.jsonl are runs config.yaml does not plan"
        in (folder / "summary.md").read_text()
    )
    assert (folder / "runs.jsonl").read_text() == before  # the rows stay


def test_summary_of_a_folder_whose_rows_are_all_outside_the_plan(tmp_path):
    rows = [r for r in make_rows(2, 2) if r["split"] == 1]
    folder = write_results(tmp_path / "exp", rows, make_config(1, 2))
    with pytest.raises(ValueError, match="none of its 2 rows is a run"):
        write_summary(folder)


def test_summary_without_config_keeps_every_row(tmp_path):
    folder = write_results(tmp_path / "exp", make_rows(2, 2))
    out = write_summary(folder)
    assert out["n_runs"] == 4 and out["ignored_rows"] == {"not_planned": 0}


# ---------------------------------------------------------------------------
# Repeated seeds
# ---------------------------------------------------------------------------


def _repeat_split_zero(rows):
    """Split 1 drawn with split 0's seed: its runs are split 0's runs."""
    seeds = {r["init"]: r["init_seed"] for r in rows if r["split"] == 0}
    return [
        dict(r, split_seed=1000, init_seed=seeds[r["init"]]) if r["split"] == 1 else r
        for r in rows
    ]


def test_summary_counts_a_repeated_split_seed_once(tmp_path):
    rows = _repeat_split_zero(make_rows(3, 2))
    folder = write_results(tmp_path / "exp", rows, make_config(3, 2))
    out = write_summary(folder)
    kept = [r for r in rows if r["split"] != 1]
    assert out["n_runs"] == 6 and out["complete"] is True
    assert out["n_splits"] == 3 and out["num_distinct_splits"] == 2
    assert out["excluded_from_mean"] == {"repeated_seeds": 2, "non_finite_test_acc": 0}
    assert out["test_acc"]["n"] == 4
    assert out["test_acc"]["mean"] == pytest.approx(
        100 * sum(r["test_acc"] for r in kept) / 4
    )
    assert [p["split"] for p in out["per_split"]] == [0, 2]
    text = (folder / "summary.md").read_text()
    assert "2 runs repeat the split seed and init seed of an earlier run" in text


def test_repeated_init_seed_within_a_split_is_counted_once():
    rows = make_rows(1, 3)
    rows[2] = dict(rows[2], init_seed=rows[0]["init_seed"])
    out = summarize_runs(rows, scheme="per_class")
    assert out["excluded_from_mean"]["repeated_seeds"] == 1
    assert out["test_acc"]["n"] == 2


def test_given_splits_with_one_seed_are_different_runs():
    # the "given" scheme's splits are the dataset's mask columns, not seeds
    rows = _repeat_split_zero(make_rows(2, 2))
    out = summarize_runs(rows, scheme="given")
    assert out["excluded_from_mean"]["repeated_seeds"] == 0
    assert out["num_distinct_splits"] == 2 and out["test_acc"]["n"] == 4


def _plan_of_seeds(scheme: str, seeds: list[int], inits: list[list[int]]):
    config = config_from_dict(
        {
            "output": "out",
            "dataset": {"name": "planetoid/cora" if scheme == "given" else "cora"},
            "split": {"scheme": scheme, "num_splits": len(seeds)},
            "model": {"name": "mlp"},
        }
    )
    runs = [
        RunSpec(s, seed, i, init_seed, None, None, None)
        for s, seed in enumerate(seeds)
        for i, init_seed in enumerate(inits[s])
    ]
    return config, runs


def test_the_authors_seed_stream_repeats_and_the_plan_names_the_repeats():
    seeds = split_seeds(42, 10_000)
    assert seeds[:3] == [121958, 671155, 131932]  # the stream is unchanged
    assert len(seeds) - len(set(seeds)) == 50  # the birthday bound at work
    config, runs = _plan_of_seeds("per_class", seeds, [[7]] * len(seeds))
    (line,) = repeated_seeds(config, runs)
    where: dict[int, list[int]] = {}
    for index, seed in enumerate(seeds):
        where.setdefault(seed, []).append(index)
    groups = [(seed, at) for seed, at in where.items() if len(at) > 1]
    assert line.startswith("50 split(s) repeat the seed of an earlier split")
    for seed, at in groups[:10]:  # in the order of their first split
        assert f"seed {seed} at splits {', '.join(map(str, at))}" in line
    assert f"and {len(groups) - 10} more" in line


def test_repeated_init_seeds_are_named_with_their_split():
    config, runs = _plan_of_seeds("given", [3, 3], [[5, 6, 5], [1, 2, 4]])
    assert repeated_seeds(config, runs) == [
        "init seeds drawn twice within a split (split 0 init seed 5 at inits 0, 2); "
        "those runs are counted once in the summary"
    ]
    config, runs = _plan_of_seeds("per_class", [3, 4], [[5, 6], [7, 8]])
    assert repeated_seeds(config, runs) == []


@pytest.mark.parametrize("key", ["num_splits", "num_inits"])
def test_protocol_size_is_bounded(key):
    raw = {"output": "out", "dataset": {"name": "cora"}, "model": {"name": "mlp"}}
    config = config_from_dict({**raw, "split": {key: 10_000}})
    assert getattr(config.split, key) == 10_000
    with pytest.raises(ConfigError, match=rf"split\.{key}: .*<= 10000, got 10001"):
        config_from_dict({**raw, "split": {key: 10_001}})


# ---------------------------------------------------------------------------
# Through the entry point
# ---------------------------------------------------------------------------


def _cli(*argv: str) -> subprocess.CompletedProcess:
    # the child inherits the environment, PYTHONPATH included
    return subprocess.run(
        [sys.executable, "-m", "diffresnet_pyg.cli", "-q", *argv],
        capture_output=True,
        text=True,
        timeout=300,
    )


def _study(tmp: Path, **train) -> Path:
    write_graph_file(tmp / "graph.npz", "csr", small_graph())
    raw = {
        "output": str(tmp / "out"),
        "dataset": {"path": str(tmp / "graph.npz")},
        "split": {"scheme": "given", "num_splits": 2, "num_inits": 2},
        "model": {"name": "mlp", "hidden_channels": 4},
        "train": {"max_epochs": 3, "batch_members": 1, **train},
    }
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_cli_rows_are_strict_json_and_shrinking_the_protocol_ignores_rows(
    tmp_path,
):
    config = _study(tmp_path)
    result = _cli("run", str(config))
    assert result.returncode == 0, result.stderr
    out = tmp_path / "out"
    lines = (out / "runs.jsonl").read_text().splitlines()
    assert len(lines) == 4
    assert all(strict_loads(line)["status"] == "max_epochs" for line in lines)

    result = _cli("run", str(config), "split.num_inits=1")
    assert result.returncode == 0, result.stderr
    assert "ignoring 2 of 4 rows outside the plan" in result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_runs"] == 2 and summary["complete"] is True
    assert summary["ignored_rows"] == {"not_planned": 2}
    assert summary["test_acc"]["n"] == 2
    assert (out / "runs.jsonl").read_text().splitlines() == lines

    result = _cli("report", str(out))
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ignored_rows"] == {"not_planned": 2}


def test_cli_diverged_runs_are_written_as_null_with_their_status(tmp_path):
    config = _study(tmp_path, lr=1e30)
    result = _cli("run", str(config), "split.num_splits=1")
    assert result.returncode == 0, result.stderr
    out = tmp_path / "out"
    rows = [
        strict_loads(line) for line in (out / "runs.jsonl").read_text().splitlines()
    ]
    assert len(rows) == 2
    assert all(r["status"] == "diverged" and r["val_loss"] is None for r in rows)
    summary = strict_loads((out / "summary.json").read_text())
    assert summary["status_counts"] == {"ok": 0, "diverged": 2, "max_epochs": 0}
    assert "2 diverged" in (out / "summary.md").read_text()


def test_cli_names_a_repeated_split_seed_and_counts_its_runs_once(tmp_path):
    # master seed 5260 draws split seed 467645 for splits 2 and 7
    assert split_seeds(5260, 8)[2] == split_seeds(5260, 8)[7] == 467645
    config = _study(tmp_path)
    raw = yaml.safe_load(config.read_text())
    raw["split"] = {
        "scheme": "per_class",
        "master_seed": 5260,
        "num_splits": 8,
        "num_inits": 2,
        "train_per_class": 2,
        "val_per_class": 2,
    }
    config.write_text(yaml.safe_dump(raw))
    result = _cli("run", str(config))
    assert result.returncode == 0, result.stderr
    assert "seed 467645 at splits 2, 7" in result.stderr
    out = tmp_path / "out"
    lines = (out / "runs.jsonl").read_text().splitlines()
    rows = [strict_loads(line) for line in lines]
    assert len(rows) == 16  # every planned run is kept
    by_key = {(r["split"], r["init"]): r for r in rows}
    for init in range(2):  # the same seeds give the same run
        a, b = by_key[2, init], by_key[7, init]
        assert (a["init_seed"], a["test_acc"]) == (b["init_seed"], b["test_acc"])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_runs"] == 16 and summary["complete"] is True
    assert summary["n_splits"] == 8 and summary["num_distinct_splits"] == 7
    assert summary["excluded_from_mean"]["repeated_seeds"] == 2
    assert summary["test_acc"]["n"] == 14
    assert [p["split"] for p in summary["per_split"]] == [0, 1, 2, 3, 4, 5, 6]
