"""Chunk checkpoints: an interrupted chunk resumes and gives the same rows."""

import json
import logging
from pathlib import Path

import pytest
import yaml

from diffresnet_pyg.experiments import training
from diffresnet_pyg.experiments.checkpoints import (
    CHECKPOINT_DIR,
    checkpoint_path,
    load_checkpoint,
)
from diffresnet_pyg.experiments.runner import run_chunk, run_experiment
from diffresnet_pyg.experiments.schema import load_config

#: Row fields that measure time or batching, not the run.
TIMING = ("seconds", "batch_seconds")


def write_config(path: Path, root: Path, output: Path, minutes) -> Path:
    raw = {
        "output": str(output),
        "dataset": {"name": "cora", "root": str(root)},
        "split": {"num_splits": 1, "num_inits": 4},
        "model": {
            "name": "gat",
            "hidden_channels": 8,
            "heads": 2,
            "dropout": 0.5,
            "input_dropout": 0.5,
            "attention_dropout": 0.3,
        },
        "train": {
            "lr": 0.05,
            "max_epochs": 80,
            "patience": 3,
            "early_stopping": "loss",
            "batch_members": 4,
            "representation_metrics": True,
        },
        "executor": {"checkpoint_minutes": minutes},
    }
    path.write_text(yaml.safe_dump(raw))
    return path


def runs(folder: Path) -> dict[tuple[int, int], dict]:
    lines = (folder / "runs.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    keys = [(r["split"], r["init"]) for r in rows]
    assert len(set(keys)) == len(keys), f"a run written twice: {keys}"
    return {
        k: {f: v for f, v in r.items() if f not in TIMING}
        for k, r in zip(keys, rows, strict=True)
    }


class Interrupt(Exception):
    pass


def interrupt_at(monkeypatch, call: int) -> None:
    """Make the ``call``-th early-stopping step (an epoch's end) raise."""
    step = training.EarlyStopping.step
    calls = []

    def interrupted(self, val_loss, val_acc):
        calls.append(1)
        if len(calls) == call:
            raise Interrupt
        return step(self, val_loss, val_acc)

    monkeypatch.setattr(training.EarlyStopping, "step", interrupted)


def interrupted_run(tmp_path, fake_root, monkeypatch, call, minutes=1e-9, patch=None):
    """Run the study into ``tmp_path/res`` and interrupt it at epoch end ``call``.

    ``patch(monkeypatch_context)`` may patch more for the interrupted run.
    Returns the folder and the config.
    """
    out = tmp_path / "res"
    config = load_config(write_config(tmp_path / "c.yaml", fake_root, out, minutes))
    with monkeypatch.context() as context:
        if patch is not None:
            patch(context)
        interrupt_at(context, call)
        with pytest.raises(Interrupt):
            run_experiment(config, progress=False)
    return out, config


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, fake_root):
    tmp = tmp_path_factory.mktemp("uninterrupted")
    config = load_config(write_config(tmp / "c.yaml", fake_root, tmp / "res", None))
    run_experiment(config, progress=False)
    rows = runs(tmp / "res")
    epochs = sorted(r["epochs"] for r in rows.values())
    assert epochs[0] < epochs[-1], "the runs should finish at different epochs"
    return rows


def test_an_interrupted_chunk_resumes_with_the_same_rows(
    tmp_path, fake_root, uninterrupted, monkeypatch
):
    first = min(r["epochs"] for r in uninterrupted.values())
    out, config = interrupted_run(
        tmp_path, fake_root, monkeypatch, first + 2
    )  # after a run finished, before the others
    saved = load_checkpoint(checkpoint_path(out, [(0, 0)]))
    assert saved.training["epoch"] == first + 1
    assert len(saved.rows) == len(runs(out)) >= 1  # finished runs were written
    assert not (out / "summary.json").exists()
    summary = run_experiment(config, progress=False)
    assert summary["complete"] is True
    assert runs(out) == uninterrupted
    assert not (out / CHECKPOINT_DIR).exists()


def test_rows_only_in_the_checkpoint_are_recovered(
    tmp_path, fake_root, uninterrupted, monkeypatch
):
    """A worker process killed mid-chunk never returned its finished rows:
    the next command takes them from the checkpoint."""
    first = min(r["epochs"] for r in uninterrupted.values())
    out, config = interrupted_run(tmp_path, fake_root, monkeypatch, first + 2)
    (out / "runs.jsonl").write_text("")
    run_experiment(config, progress=False)
    assert runs(out) == uninterrupted


def test_a_checkpoint_before_any_run_finished(
    tmp_path, fake_root, uninterrupted, monkeypatch
):
    out, config = interrupted_run(tmp_path, fake_root, monkeypatch, 3)
    assert load_checkpoint(checkpoint_path(out, [(0, 0)])).training["epoch"] == 2
    run_experiment(config, progress=False)
    assert runs(out) == uninterrupted


def test_without_checkpoints_nothing_is_saved(tmp_path, fake_root, monkeypatch):
    out, _ = interrupted_run(tmp_path, fake_root, monkeypatch, 5, minutes=None)
    assert not (out / CHECKPOINT_DIR).exists()


def test_an_unreadable_checkpoint_is_removed_with_a_warning(
    tmp_path, fake_root, uninterrupted, caplog
):
    out = tmp_path / "res"
    config = load_config(write_config(tmp_path / "c.yaml", fake_root, out, 1e-9))
    junk = checkpoint_path(out, [(0, 0)])
    junk.parent.mkdir(parents=True)
    junk.write_bytes(b"not a checkpoint")
    (junk.parent / "0-1.pt.partial").write_bytes(b"half written")
    with caplog.at_level(logging.WARNING):
        run_experiment(config, progress=False)
    assert "not a readable checkpoint" in caplog.text
    assert runs(out) == uninterrupted
    assert not (out / CHECKPOINT_DIR).exists()


def test_run_chunk_refuses_a_checkpoint_of_other_runs(tmp_path, fake_root, monkeypatch):
    out = tmp_path / "res"
    config = load_config(write_config(tmp_path / "c.yaml", fake_root, out, 1e-9))
    path = tmp_path / "chunk.pt"
    with monkeypatch.context() as patch:
        interrupt_at(patch, 3)
        with pytest.raises(Interrupt):
            run_chunk(config, [(0, 0), (0, 1)], checkpoint=path, checkpoint_seconds=0)
    with pytest.raises(ValueError, match="saved for other runs"):
        run_chunk(config, [(0, 0)], checkpoint=path)
    with pytest.raises(ValueError, match="saved for other runs"):
        run_chunk(config, [(0, 0), (0, 1)], checkpoint=path, evaluate_test=False)


def test_a_run_finished_after_the_last_save_is_not_written_twice(
    tmp_path, fake_root, uninterrupted, monkeypatch
):
    """Saved at epoch first - 1, interrupted after the first run's row was
    written: that run trains again from the checkpoint, but its row is not
    written again."""
    from diffresnet_pyg.experiments import runner

    first = min(r["epochs"] for r in uninterrupted.values())
    save = runner.save_checkpoint

    def save_until_first(path, **saved):
        if saved["training"]["epoch"] < first:
            save(path, **saved)

    out, config = interrupted_run(
        tmp_path,
        fake_root,
        monkeypatch,
        first + 2,
        patch=lambda context: context.setattr(
            runner, "save_checkpoint", save_until_first
        ),
    )
    saved = load_checkpoint(checkpoint_path(out, [(0, 0)]))
    assert saved.training["epoch"] == first - 1 and saved.rows == []
    assert len(runs(out)) >= 1
    run_experiment(config, progress=False)
    assert runs(out) == uninterrupted


def test_a_shrunk_protocol_keeps_the_saved_rows_and_drops_the_chunk(
    tmp_path, fake_root, uninterrupted, monkeypatch
):
    """Resumed with fewer inits, the chunk's runs are no longer all planned:
    its finished rows are still written, the chunk starts over."""
    import dataclasses

    first = min(r["epochs"] for r in uninterrupted.values())
    out, config = interrupted_run(tmp_path, fake_root, monkeypatch, first + 2)
    saved = load_checkpoint(checkpoint_path(out, [(0, 0)]))
    (out / "runs.jsonl").write_text("")  # as if a worker process had died
    smaller = dataclasses.replace(
        config, split=dataclasses.replace(config.split, num_inits=2)
    )
    summary = run_experiment(smaller, progress=False)
    assert summary["complete"] is True and summary["n_runs"] == 2
    rows = runs(out)
    for row in saved.rows:
        key = (row["split"], row["init"])
        assert rows[key] == uninterrupted[key]
    for key in [(0, 0), (0, 1)]:  # retrained in a chunk of 2, not 4
        assert rows[key] == {
            **uninterrupted[key],
            "batch_members": rows[key]["batch_members"],
        }
    assert not (out / CHECKPOINT_DIR).exists()


def test_a_dry_run_lists_the_checkpoints_and_writes_nothing(
    tmp_path, fake_root, monkeypatch
):
    from diffresnet_pyg.experiments.runner import format_plan, plan_experiment

    out, config = interrupted_run(tmp_path, fake_root, monkeypatch, 4)
    (out / CHECKPOINT_DIR / "9-9.pt").write_bytes(b"junk")
    before = sorted((p.name, p.stat().st_mtime) for p in out.rglob("*"))
    text = format_plan(plan_experiment(config, probe_epochs=1))
    assert "resumes from checkpoints/0-0.pt: epoch 3, 4 of 4 runs training" in text
    assert "checkpoints/9-9.pt: unreadable, removed by the next run" in text
    assert sorted((p.name, p.stat().st_mtime) for p in out.rglob("*")) == before
