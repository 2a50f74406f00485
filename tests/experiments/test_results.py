import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from diffresnet_pyg.experiments import results
from diffresnet_pyg.experiments.results import (
    CONFIG_FILE,
    LOCK_FILE,
    ROW_KEYS,
    RUNS_FILE,
    ResultsFolderError,
    append_rows,
    claim_config_folder,
    claim_folder,
    load_rows,
    make_row,
    read_rows,
    write_atomic,
)
from diffresnet_pyg.experiments.runner import RunSpec
from diffresnet_pyg.experiments.schema import config_from_dict
from diffresnet_pyg.experiments.training import MemberResult

ROOT = Path(__file__).resolve().parents[2]


def committed(pattern: str) -> list[Path]:
    """Committed result files of the experiments (none outside a git checkout)."""
    try:
        out = subprocess.run(
            ["git", "ls-files", pattern],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return sorted(ROOT.glob(pattern))
    return [ROOT / line for line in out.splitlines()]


RUN_FILES = committed("experiments/**/runs.jsonl")
EPISODE_FILES = committed("experiments/**/episodes.jsonl")


def config(output: Path, **model):
    return config_from_dict(
        {
            "output": str(output),
            "dataset": {"name": "cora"},
            "split": {"num_splits": 1, "num_inits": 2},
            "model": {"name": "diffresnet_reference", "layer_num": 2, **model},
        }
    )


# ------------------------------------------------------------------ claiming


def test_claim_creates_the_folder_and_writes_the_config(tmp_path):
    folder = tmp_path / "a" / "b"
    cfg = config(folder)
    claim_folder(folder, cfg)
    written = yaml.safe_load((folder / CONFIG_FILE).read_text())
    assert written["model"]["layer_num"] == 2
    assert config_from_dict(written) == cfg
    claim_folder(folder, cfg)  # the same config again: accepted
    assert sorted(p.name for p in folder.iterdir()) == [LOCK_FILE, CONFIG_FILE]


def test_claim_accepts_more_runs_and_another_output(tmp_path):
    folder = tmp_path / "res"
    claim_folder(folder, config(folder))
    grown = config_from_dict(
        {
            "output": str(tmp_path / "elsewhere"),
            "dataset": {"name": "cora"},
            "split": {"num_splits": 3, "num_inits": 5},
            "model": {"name": "diffresnet_reference", "layer_num": 2},
            "train": {"batch_members": 7},
        }
    )
    claim_folder(folder, grown)
    written = yaml.safe_load((folder / CONFIG_FILE).read_text())
    assert written["split"]["num_inits"] == 5  # the config as last run


def test_claim_refuses_another_config(tmp_path):
    folder = tmp_path / "res"
    claim_folder(folder, config(folder))
    before = (folder / CONFIG_FILE).read_text()
    with pytest.raises(ResultsFolderError) as info:
        claim_folder(folder, config(folder, layer_num=4))
    assert str(info.value) == (
        f"{folder} holds results of a different config (model.layer_num: 2 -> 4). "
        "Use another output folder, or delete this one to start over"
    )
    assert (folder / CONFIG_FILE).read_text() == before


def test_claim_refuses_an_unreadable_config(tmp_path):
    folder = tmp_path / "res"
    folder.mkdir()
    (folder / CONFIG_FILE).write_text("dataset: [unclosed\n")
    with pytest.raises(ResultsFolderError, match="cannot be read") as info:
        claim_folder(folder, config(folder))
    assert str(info.value).endswith("; choose another output folder or remove it")
    assert (folder / CONFIG_FILE).read_text() == "dataset: [unclosed\n"


def test_claim_config_folder_with_any_config_type(tmp_path):
    def differences(old, new):
        diff = [f"{k}: {old.get(k)!r} -> {v!r}" for k, v in new.items() if old[k] != v]
        return "; ".join(diff) or None

    kwargs = dict(to_dict=dict, from_dict=dict, differences=differences)
    claim_config_folder(tmp_path, {"a": 1, "b": 2}, **kwargs)
    claim_config_folder(tmp_path, {"a": 1, "b": 2}, **kwargs)
    with pytest.raises(ResultsFolderError, match=r"different config \(b: 2 -> 3\)"):
        claim_config_folder(tmp_path, {"a": 1, "b": 3}, **kwargs)


# ----------------------------------------------------------- atomic writes


def test_write_atomic_replaces_the_whole_file(tmp_path):
    path = tmp_path / "summary.json"
    write_atomic(path, "old\n")
    write_atomic(path, "new text\n")
    assert path.read_text() == "new text\n"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_write_atomic_failure_leaves_no_partial_file(tmp_path):
    path = tmp_path / "summary.json"
    write_atomic(path, "old\n")
    # a lone surrogate cannot be encoded: the write fails half-way
    with pytest.raises(UnicodeEncodeError):
        write_atomic(path, "x" * 100_000 + "\ud800")
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]
    with pytest.raises(UnicodeEncodeError):
        write_atomic(tmp_path / "new.json", "\ud800")
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


# --------------------------------------------------------- rows on disk


def test_append_then_read_and_load(tmp_path, monkeypatch):
    synced = []
    fsync = results.os.fsync
    monkeypatch.setattr(results.os, "fsync", lambda fd: synced.append(fd) or fsync(fd))
    path = tmp_path / RUNS_FILE
    assert read_rows(path) == [] and load_rows(path) == []
    append_rows(path, [{"split": 0, "init": 0, "acc": 0.5}])
    append_rows(path, [{"split": 0, "init": 1}, {"split": 1, "init": 0}])
    assert len(synced) == 2  # every append is made durable
    expected = [
        {"split": 0, "init": 0, "acc": 0.5},
        {"split": 0, "init": 1},
        {"split": 1, "init": 0},
    ]
    assert read_rows(path) == expected
    assert load_rows(path) == expected
    assert path.read_text() == "".join(json.dumps(r) + "\n" for r in expected)


@pytest.mark.parametrize(
    "tail",
    [
        '{"split": 1, "ini',  # cut in the middle of a row
        "{",
        '{"split": 1, "init": 0, "acc": 0.',
    ],
)
def test_load_rows_repairs_a_truncated_last_row(tmp_path, tail, caplog):
    path = tmp_path / RUNS_FILE
    good = [{"split": 0, "init": 0}, {"split": 0, "init": 1}]
    text = "".join(json.dumps(r) + "\n" for r in good)
    path.write_text(text + tail)
    assert read_rows(path) == good  # reading alone changes nothing
    assert path.read_text() == text + tail
    assert "truncated last line" in caplog.text
    assert load_rows(path) == good
    assert path.read_text() == text  # the cut row is gone from the file
    append_rows(path, [{"split": 1, "init": 0}])  # a resume appends cleanly
    assert read_rows(path) == [*good, {"split": 1, "init": 0}]
    assert not list(tmp_path.glob("*.tmp"))


def test_load_rows_keeps_the_lines_it_keeps(tmp_path):
    path = tmp_path / RUNS_FILE
    lines = ['{"a": 1.0, "b": [1, 2]}', '{"a":2}']  # not json.dumps' spacing
    path.write_text(lines[0] + "\n\n" + lines[1])  # blank line, no final newline
    assert load_rows(path) == [{"a": 1.0, "b": [1, 2]}, {"a": 2}]
    assert path.read_text() == lines[0] + "\n" + lines[1] + "\n"


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"a": 1}\n{"a": \n{"a": 3}\n', r"runs\.jsonl:2: malformed JSON line"),
        ('{"a": 1}\n[1, 2]\n', r"runs\.jsonl:2: expected a JSON object per line"),
    ],
)
def test_corrupt_rows_are_errors_and_the_file_is_kept(tmp_path, text, message):
    path = tmp_path / RUNS_FILE
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        load_rows(path)
    with pytest.raises(ValueError, match=message):
        read_rows(path)
    assert path.read_text() == text


@pytest.mark.parametrize(
    "path", RUN_FILES + EPISODE_FILES, ids=lambda p: str(p.relative_to(ROOT))
)
def test_committed_results_load_unchanged(path, tmp_path):
    copy = tmp_path / path.name
    shutil.copyfile(path, copy)
    rows = load_rows(copy)
    assert rows and all(isinstance(row, dict) for row in rows)
    assert copy.read_bytes() == path.read_bytes()


# ------------------------------------------------------------------ the row


def rebuild(row: dict, max_epochs: int | None = None) -> dict:
    """The row ``make_row`` writes for the run and result ``row`` records."""
    run = RunSpec(
        row["split"], row["split_seed"], row["init"], row["init_seed"], *([None] * 3)
    )
    result = MemberResult(
        epochs=row["epochs"],
        best_epoch=row["best_epoch"],
        val_loss=row["val_loss"],
        val_acc=row["val_acc"],
        test_acc=row.get("test_acc"),  # absent: a run that never saw the test
        train_seconds=row["seconds"],
        metrics=row.get("metrics"),  # only with train.representation_metrics
    )
    return make_row(
        row["dataset"],
        row["model"],
        run,
        result,
        batch_members=row["batch_members"],
        batch_seconds=row["batch_seconds"],
        max_epochs=max_epochs,
    )


RUNNER_FILES = [
    p for p in RUN_FILES if "split_seed" in p.read_text().partition("\n")[0]
]


def test_make_row_keys_and_order():
    run = RunSpec(2, 131932, 1, 80664, None, None, None)
    result = MemberResult(72, 22, 0.676, 0.8, 0.819, 0.96)
    row = make_row("cora", "gcn", run, result, batch_members=20, batch_seconds=19.2)
    assert tuple(row) == ROW_KEYS
    assert row == {
        "dataset": "cora",
        "model": "gcn",
        "split": 2,
        "split_seed": 131932,
        "init": 1,
        "init_seed": 80664,
        "epochs": 72,
        "best_epoch": 22,
        "val_acc": 0.8,
        "val_loss": 0.676,
        "test_acc": 0.819,
        "seconds": 0.96,
        "batch_members": 20,
        "batch_seconds": 19.2,
        "status": "ok",
    }


@pytest.mark.skipif(not RUNNER_FILES, reason="no committed runs.jsonl found")
@pytest.mark.parametrize("path", RUNNER_FILES, ids=lambda p: str(p.parent.name))
def test_make_row_writes_the_committed_rows_byte_for_byte(path):
    config = yaml.safe_load((path.parent / "config.yaml").read_text())
    max_epochs = config["train"]["max_epochs"]  # tells the status max_epochs
    for line in path.read_text().splitlines():
        row = json.loads(line)
        # rows written before rows had a status have none; only rows of runs
        # with train.representation_metrics have metrics, just before status
        keys = tuple(k for k in ROW_KEYS if k in row or k not in ("test_acc", "status"))
        if "metrics" in row:
            status = ("status",) if "status" in keys else ()
            keys = keys[: len(keys) - len(status)] + ("metrics",) + status
        extra = {k: v for k, v in row.items() if k not in keys}
        assert tuple(row)[: len(keys)] == keys
        rebuilt = {k: v for k, v in rebuild(row, max_epochs).items() if k in keys}
        assert json.dumps({**rebuilt, **extra}) == line
