"""``run --dry-run`` and ``sweep --dry-run``: the plan and its estimate, no files."""

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from diffresnet_pyg.cli import main
from diffresnet_pyg.experiments.runner import (
    Plan,
    ResultsFolderError,
    _expected_longest,
    format_plan,
    format_plans,
    plan_experiment,
    plan_sweep,
    run_experiment,
)
from diffresnet_pyg.experiments.schema import config_from_dict

RESULT_KEYS = ("split", "init", "init_seed", "epochs", "val_acc", "val_loss")


def tiny(root: Path, output: Path, **sections) -> dict:
    raw = {
        "name": "tiny",
        "output": str(output),
        "dataset": {"name": "cora", "root": str(root)},
        "split": {"num_splits": 1, "num_inits": 3},
        "model": {"name": "diffresnet_reference", "layer_num": 2},
        "train": {"max_epochs": 500, "patience": 10, "batch_members": 1},
    }
    for key, value in sections.items():
        raw[key] = {**raw.get(key, {}), **value} if isinstance(value, dict) else value
    return raw


def files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def results(folder: Path) -> list[tuple]:
    lines = (folder / "runs.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    return sorted(tuple(row[k] for k in RESULT_KEYS) for row in rows)


def test_a_dry_run_plans_and_writes_nothing(tmp_path, fake_root):
    out = tmp_path / "out"
    plan = plan_experiment(config_from_dict(tiny(fake_root, out)), probe_epochs=4)
    assert not out.exists() and list(tmp_path.iterdir()) == []
    assert (plan.total, plan.done, plan.pending) == (3, 0, 3)
    assert (plan.batch, plan.chunks, plan.executor, plan.workers) == (1, 3, "local", 1)
    assert plan.probe_keys == ((0, 0),) and plan.probe_epochs == 3
    assert plan.seconds_per_epoch > 0 and not plan.exists
    # no run finished: early stopping decides, 2-20 x patience 10
    assert plan.chunk_epochs == (20.0, 200.0) and plan.finished == 0
    low, high = plan.wall_seconds
    assert low == pytest.approx(3 * 20 * plan.seconds_per_epoch)
    assert high == pytest.approx(10 * low)
    text = format_plan(plan)
    assert "tiny: " in text and "does not exist yet; a dry run writes nothing" in text
    assert "plan: 3 runs (0 done, 3 pending), 3 chunks of 1 run, on local" in text
    assert "probe: split 0, init 0, 3 epochs timed" in text
    assert "epochs per chunk: 20 - 200 (no run finished yet: early stopping" in text
    assert "estimate: 3 chunks x 20 - 200 epochs x " in text and " ≈ " in text


def test_the_probe_changes_no_result_and_no_random_state(tmp_path, fake_root):
    raw = tiny(fake_root, tmp_path / "plain", train={"max_epochs": 3})
    run_experiment(config_from_dict(raw), progress=False)

    torch.manual_seed(123)
    np.random.seed(5)
    random.seed(7)
    states = torch.get_rng_state(), np.random.get_state()[1], random.getstate()
    threads = torch.get_num_threads()
    after = {**raw, "output": str(tmp_path / "after")}
    config = config_from_dict({**after, "executor": {"kind": "local", "threads": 1}})
    plan = plan_experiment(config, probe_epochs=3)
    assert plan.threads == 1 and torch.get_num_threads() == threads
    assert torch.get_rng_state().equal(states[0])
    assert (np.random.get_state()[1] == states[1]).all()
    assert random.getstate() == states[2]
    assert not (tmp_path / "after").exists()

    run_experiment(config_from_dict(after), progress=False)
    assert results(tmp_path / "after") == results(tmp_path / "plain")


def test_an_existing_folder_is_read_not_written(tmp_path, fake_root):
    out = tmp_path / "out"
    raw = tiny(fake_root, out, split={"num_inits": 2}, train={"max_epochs": 6})
    run_experiment(config_from_dict(raw), progress=False)
    runs = out / "runs.jsonl"
    finished = [json.loads(line) for line in runs.read_text().splitlines()]
    runs.write_text(runs.read_text() + '{"split": 0, "init"')  # a cut last row
    before = files(out)

    grown = {**raw, "split": {"num_splits": 1, "num_inits": 5}}
    plan = plan_experiment(config_from_dict(grown), probe_epochs=3)
    assert files(out) == before  # not repaired, not rewritten
    assert (plan.total, plan.done, plan.pending, plan.chunks) == (5, 2, 3, 3)
    assert plan.exists and plan.probe_keys == ((0, 2),)
    mean = sum(r["epochs"] for r in finished) / 2
    assert plan.epochs_per_run == mean and plan.chunk_epochs == (mean, mean)
    assert plan.finished == 2 and plan.basis == "mean of 2 finished runs"
    assert "exists, read only" in format_plan(plan)

    other = {**grown, "train": {**raw["train"], "lr": 0.5}}
    with pytest.raises(ResultsFolderError, match="train.lr"):
        plan_experiment(config_from_dict(other))
    assert files(out) == before


def test_a_finished_folder_has_nothing_to_run(tmp_path, fake_root):
    raw = tiny(fake_root, tmp_path / "out", split={"num_inits": 1})
    raw["train"]["max_epochs"] = 2
    run_experiment(config_from_dict(raw), progress=False)
    plan = plan_experiment(config_from_dict(raw))
    assert (plan.pending, plan.chunks, plan.seconds_per_epoch) == (0, 0, None)
    assert format_plan(plan).endswith(
        "estimate: nothing to run; every run is in the folder"
    )


def test_without_early_stopping_every_run_trains_max_epochs(tmp_path, fake_root):
    raw = tiny(
        fake_root,
        tmp_path / "out",
        train={"early_stopping": "none", "max_epochs": 40, "batch_members": 2},
        executor={"kind": "processes", "workers": 2, "threads": 1},
    )
    plan = plan_experiment(config_from_dict(raw), probe_epochs=3)
    assert (plan.batch, plan.chunks, plan.parallel) == (2, 2, 2)
    assert plan.probe_keys == ((0, 0), (0, 1)) and plan.threads == 1
    assert plan.chunk_epochs == (40.0, 40.0)
    assert plan.wall_seconds[0] == pytest.approx(40 * plan.seconds_per_epoch)
    text = format_plan(plan)
    assert "on processes: 2 worker processes x 1 thread, device cpu" in text
    assert "every run trains max_epochs" in text and "/ 2 workers" in text
    assert not (tmp_path / "out").exists()


def test_the_estimate_and_its_text():
    plan = Plan(
        label="cora",
        folder=Path("results/cora"),
        exists=True,
        total=2000,
        done=6,
        batch=1,
        chunks=1994,
        executor="processes",
        workers=2,
        threads=1,
        device="cpu",
        probe_keys=((0, 6),),
        probe_epochs=9,
        seconds_per_epoch=0.21,
        finished=6,
        epochs_per_run=300.0,
        chunk_epochs=(300.0, 300.0),
        basis="mean of 6 finished runs",
    )
    assert plan.pending == 1994 and plan.parallel == 2
    assert plan.wall_seconds[0] == pytest.approx(1994 * 300 * 0.21 / 2)
    text = format_plan(plan).splitlines()
    assert text[1] == (
        "plan: 2000 runs (6 done, 1994 pending), 1994 chunks of 1 run, on "
        "processes: 2 worker processes x 1 thread, device cpu"
    )
    assert text[3] == "epochs per chunk: 300 (mean of 6 finished runs)"
    assert text[4] == (
        "estimate: 1994 chunks x 300 epochs x 0.210 s / 2 workers (taken not to "
        "slow each other down) ≈ 17.4 h (17:26:51)"
    )
    ray = Plan(**{**plan.__dict__, "executor": "ray", "workers": None})
    assert ray.wall_seconds is None
    assert "one chunk at a time; the cluster's free CPUs" in format_plan(ray)
    both = format_plans([plan, plan]).splitlines()
    assert both[-1] == (
        "sweep: 2 points, 3988 runs pending in 3988 chunks on 2 workers: "
        "≈ 34.9 h (34:53:42)"
    )


def test_the_expected_longest_of_a_batch():
    assert _expected_longest([200], 10) == 200.0
    assert _expected_longest([100, 300], 1) == 200.0
    assert _expected_longest([100, 300], 2) == 250.0  # 3 of 4 pairs hold 300
    epochs = [100, 150, 200, 400]
    assert _expected_longest(epochs, 1) < _expected_longest(epochs, 10) < 400


def test_cli_dry_run_of_a_run_and_a_sweep(tmp_path, fake_root, capsys):
    out = tmp_path / "out"
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(tiny(fake_root, out)))
    # overrides before and after the flag
    argv = ["-q", "run", str(cfg), "split.num_inits=2", "--dry-run", "train.lr=0.02"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "plan: 2 runs (0 done, 2 pending), 2 chunks of 1 run" in text
    assert "estimate: 2 chunks x 20 - 200 epochs x " in text
    assert not out.exists()

    raw = tiny(fake_root, tmp_path / "sweep", split={"num_inits": 1})
    raw["sweep"] = {
        "axis": "depth",
        "values": [1, 2],
        "methods": [{"label": "Diff-ResNet", "key": "model.layer_num"}],
    }
    cfg.write_text(yaml.safe_dump(raw))
    assert main(["-q", "sweep", str(cfg), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert text.count("plan: 1 run (0 done, 1 pending)") == 2
    assert "Diff-ResNet depth=1: " in text and "Diff-ResNet depth=2: " in text
    assert "sweep: 2 points, 2 runs pending in 2 chunks on 1 worker: ≈ " in text
    assert not (tmp_path / "sweep").exists()
    with pytest.raises(ValueError, match="use plan_sweep"):
        plan_experiment(config_from_dict(raw))
    assert len(plan_sweep(config_from_dict(raw), probe_epochs=2)) == 2


def test_dry_run_errors_are_the_run_errors(tmp_path, fake_root, capsys):
    cfg = tmp_path / "c.yaml"
    raw = tiny(fake_root, tmp_path / "out", split={"train_per_class": 400})
    cfg.write_text(yaml.safe_dump(raw))
    assert main(["run", str(cfg), "--dry-run"]) == 2
    assert "classes smaller than" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
