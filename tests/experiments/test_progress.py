import io
import logging
import re

import pytest
import torch

from diffresnet_pyg.experiments.progress import (
    CountProgress,
    Eta,
    RunProgress,
    format_duration,
    progress_mode,
)
from diffresnet_pyg.experiments.runner import run_experiment, run_sweep
from diffresnet_pyg.experiments.schema import config_from_dict
from diffresnet_pyg.experiments.training import EpochStatus

RUNNER = "diffresnet_pyg.experiments.runner"
#: ``run k/n (split s, init i): test acc .. %, val .. %, E epochs, t s; ETA ..``
RUN_LINE = re.compile(
    r"run (\d+)/(\d+) \((?:(.+), )?split (\d+), init (\d+)\): test acc "
    r"\d+\.\d\d %, val \d+\.\d\d %, (\d+) epochs( \(max_epochs\))?, "
    r"\d+\.\d s; (ETA \d\d:\d\d:\d\d|done in \d\d:\d\d:\d\d)$"
)


class Clock:
    """A settable monotonic clock."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def tiny(root, output, **train):
    return {
        "output": str(output),
        "dataset": {"name": "cora", "root": str(root)},
        "split": {"num_splits": 1, "num_inits": 3},
        "model": {"name": "mlp", "hidden_channels": 8},
        "train": {"max_epochs": 4, "batch_members": 2, **train},
    }


def messages(caplog, name=RUNNER):
    return [r.getMessage() for r in caplog.records if r.name == name]


# ---------------------------------------------------------------------------
# The pieces
# ---------------------------------------------------------------------------


def test_progress_mode_and_duration():
    assert [progress_mode(p) for p in (True, "bar", "log", False, None)] == [
        "bar",
        "bar",
        "log",
        None,
        None,
    ]
    with pytest.raises(ValueError, match="'bar' or 'log'"):
        progress_mode("tty")
    assert format_duration(59.6) == "00:01:00"
    assert format_duration(-3) == "00:00:00"
    assert format_duration(3 * 3600 + 51 * 60 + 50) == "03:51:50"


def test_eta_counts_the_items_finished_here_only():
    clock = Clock()
    eta = Eta(total=10, done=4, clock=clock)
    assert eta.seconds_left() is None and eta.text() == "ETA unknown"
    clock.now = 20.0
    eta.add(2)  # 10 s per run finished here; the 4 resumed ones do not count
    assert eta.done == 6 and eta.left == 4
    assert eta.seconds_left() == pytest.approx(40.0)
    assert eta.text() == "ETA 00:00:40"
    clock.now = 50.0
    eta.add(4)
    assert eta.left == 0 and eta.text() == "done in 00:00:50"


def test_eta_takes_the_first_runs_of_parallel_workers_as_parallel():
    clock = Clock()
    eta = Eta(total=10, clock=clock, parallel=2)
    clock.now = 10.0
    eta.add()  # one of two workers done after 10 s: 5 s a run, not 10 s
    assert eta.seconds_left() == pytest.approx(45.0)
    clock.now = 11.0
    eta.add()
    assert eta.seconds_left() == pytest.approx(11.0 / 2 * 8)
    clock.now = 30.0
    eta.add(3)  # past the first wave: the plain mean
    assert eta.seconds_left() == pytest.approx(30.0 / 5 * 5)
    last = Eta(total=3, done=2, clock=clock, parallel=4)  # one run left: no wave
    clock.now = 40.0
    last.add()
    assert last.text() == "done in 00:00:10"
    with pytest.raises(ValueError, match="parallel"):
        Eta(total=1, parallel=0)


ROW = dict(split=0, init=0, epochs=100, best_epoch=50, val_acc=0.5, test_acc=0.8)


@pytest.mark.parametrize("mode", ["log", "bar"])
def test_the_projection_is_logged_once_after_the_first_wave(caplog, mode):
    clock = Clock()
    log = logging.getLogger("test.progress")
    progress = RunProgress(
        mode,
        total=12,
        done=2,
        desc="x",
        logger=log,
        clock=clock,
        file=io.StringIO(),
        workers=2,
    )
    with caplog.at_level(logging.INFO, logger="test.progress"):
        for k in range(1, 11):
            clock.now = 20.0 * ((k + 1) // 2)  # two workers: two runs per 20 s
            progress.run_finished(dict(ROW, init=k, seconds=20.0))
            if k == 1:
                assert progress.projection_text().startswith(
                    "projected wall time for 10 runs: 00:01:50 (from 1 finished run,"
                )
    progress.close()
    lines = messages(caplog, "test.progress")
    assert [line for line in lines if line.startswith("projected")] == [
        "projected wall time for 10 runs: 00:01:40 (from 2 finished runs, 2 "
        "workers); 2 runs were done before"
    ]
    assert len(lines) == (11 if mode == "log" else 1)


def test_the_projection_waits_for_a_batch_and_needs_runs_left(caplog):
    clock = Clock()
    log = logging.getLogger("test.progress")
    quiet = RunProgress(False, total=9, done=0, desc="x", logger=log, clock=clock)
    batched = RunProgress(
        "log", total=9, done=0, desc="x", logger=log, clock=clock, batch=3
    )
    ray = RunProgress(
        "log", total=4, done=0, desc="x", logger=log, clock=clock, workers=None
    )
    short = RunProgress(
        "log", total=2, done=0, desc="x", logger=log, clock=clock, workers=2
    )
    with caplog.at_level(logging.INFO, logger="test.progress"):
        for k in range(3):
            clock.now = 10.0 * (k + 1)
            for progress in (quiet, batched, ray, short):
                if progress.eta.left:
                    progress.run_finished(dict(ROW, seconds=10.0))
    projected = [
        m for m in messages(caplog, "test.progress") if m.startswith("projected")
    ]
    assert projected == [
        "projected wall time for 4 runs: 00:00:40 (from 1 finished run, workers "
        "as the cluster schedules them)",
        # one chunk of 3 runs, trained together: 30 s for 3 runs of 9
        "projected wall time for 9 runs: 00:01:30 (from 3 finished runs, 1 worker)",
    ]  # the 2 runs of two workers leave none to project


def test_run_lines_name_the_run_and_mark_max_epochs(caplog):
    clock = Clock()
    log = logging.getLogger("test.progress")
    progress = RunProgress(
        "log", total=3, done=1, desc="x", logger=log, interval=60.0, clock=clock
    )
    row = dict(
        split=0, init=1, epochs=200, best_epoch=200, val_acc=0.5, test_acc=0.8012
    )
    with caplog.at_level(logging.INFO, logger="test.progress"):
        clock.now = 12.0
        progress.run_finished(dict(row, seconds=12.0), max_epochs=200)
        clock.now = 30.0
        progress.run_finished(
            dict(row, init=2, best_epoch=150, seconds=18.0, test_acc=None),
            label="GCN lr=0.01",
            max_epochs=200,
        )
    progress.close()
    assert messages(caplog, "test.progress") == [
        "run 2/3 (split 0, init 1): test acc 80.12 %, val 50.00 %, "
        "200 epochs (max_epochs), 12.0 s; ETA 00:00:12",
        "projected wall time for 2 runs: 00:00:24 (from 1 finished run, 1 worker); "
        "1 run was done before",
        "run 3/3 (GCN lr=0.01, split 0, init 2): val acc 50.00 %, 200 epochs, "
        "18.0 s; done in 00:00:30",
    ]


def status(epoch, members, val, best, best_epoch, waiting):
    return EpochStatus(
        epoch, tuple(members), tuple(val), tuple(best), tuple(best_epoch), waiting
    )


def test_epoch_lines_are_sparse(caplog):
    clock = Clock()
    log = logging.getLogger("test.progress")
    progress = RunProgress(
        "log", total=4, done=0, desc="x", logger=log, interval=60.0, clock=clock
    )
    with caplog.at_level(logging.INFO, logger="test.progress"):
        progress.start_chunk([(0, 0)], patience=100)
        for epoch in range(1, 1001):
            clock.now = epoch * 0.5  # 2 epochs a second: a line every 120 epochs
            progress.status(status(epoch, [0], [0.8], [0.81], [epoch - 3], (3,)))
            progress.epoch(epoch, 1)
        progress.start_chunk([(0, 1), (0, 2), (0, 3)], label="GCN", patience=100)
        clock.now += 60.0
        progress.status(status(7, [0, 2], [0.7, 0.75], [0.72, 0.78], [5, 6], (2, 1)))
        progress.epoch(7, 2)
    lines = messages(caplog, "test.progress")
    assert len(lines) == 1000 // 120 + 1
    assert lines[0] == (
        "split 0, init 0: epoch 120: val acc 80.00 %, best 81.00 % at epoch 117 "
        "(3/100 epochs without improvement)"
    )
    assert lines[-1] == (
        "GCN, split 0, inits 1-3: epoch 7, 2 of 3 runs training: "
        "val acc 70.00-75.00 %, best 78.00 % at epoch 6"
    )


def test_the_epoch_bar_has_no_total():
    out = io.StringIO()
    progress = RunProgress(
        "bar", total=2, done=0, desc="x", logger=logging.getLogger("t"), file=out
    )
    progress.start_chunk([(0, 0)], patience=100)
    for epoch in range(1, 420):
        progress.status(status(epoch, [0], [0.8], [0.81], [epoch - 3], (3,)))
        progress.epoch(epoch, 1)
    assert progress._epochs.total is None
    progress._epochs.refresh()
    text = out.getvalue()
    assert "419epoch [" in text and "best 81.0@416" in text
    assert "wait 3/100" in text
    progress.close()


def test_count_progress_lines(caplog):
    clock = Clock()
    log = logging.getLogger("test.progress")
    progress = CountProgress(
        "log",
        total=10,
        done=2,
        desc="tiny",
        unit="episode",
        logger=log,
        clock=clock,
        interval=60.0,
    )
    with caplog.at_level(logging.INFO, logger="test.progress"):
        for step in range(4):
            clock.now = 30.0 * (step + 1)
            progress.update(2, f"NP, episodes {2 * step}-{2 * step + 1}: 80.00 %")
    progress.close()
    assert messages(caplog, "test.progress") == [
        "tiny: 6/10 episodes (NP, episodes 2-3: 80.00 %); ETA 00:01:00",
        "tiny: 10/10 episodes (NP, episodes 6-7: 80.00 %); done in 00:02:00",
    ]


# ---------------------------------------------------------------------------
# The runners
# ---------------------------------------------------------------------------


def test_run_experiment_logs_every_run_with_an_eta(tmp_path, fake_root, caplog):
    config = config_from_dict(tiny(fake_root, tmp_path / "out", max_epochs=5))
    with caplog.at_level(logging.INFO, logger=RUNNER):
        run_experiment(config, progress="log")
    lines = [m for m in messages(caplog) if m.startswith("run ")]
    matches = [RUN_LINE.match(line) for line in lines]
    assert all(matches), lines
    assert [m.group(1, 2) for m in matches] == [("1", "3"), ("2", "3"), ("3", "3")]
    assert sorted(m.group(5) for m in matches) == ["0", "1", "2"]
    assert all(m.group(8).startswith("ETA") for m in matches[:-1])
    assert matches[-1].group(8).startswith("done in")
    for m in matches:  # no early stop within 5 epochs: all reach max_epochs
        assert m.group(6) == "5" and m.group(7) == " (max_epochs)"
        assert m.group(3) is None  # one results folder: no point label

    caplog.clear()  # resuming: k counts the runs done before
    grown = config_from_dict(
        {
            **tiny(fake_root, tmp_path / "out", max_epochs=5),
            "split": {"num_splits": 1, "num_inits": 4},
        }
    )
    with caplog.at_level(logging.INFO, logger=RUNNER):
        run_experiment(grown, progress="log")
    lines = [m for m in messages(caplog) if m.startswith("run ")]
    assert len(lines) == 1 and lines[0].startswith("run 4/4 (split 0, init 3)")


@pytest.mark.parametrize("mode", ["log", "bar"])
def test_run_experiment_logs_the_projection_once(tmp_path, fake_root, caplog, mode):
    # 3 runs, 2 per chunk, in this process: projected after the first chunk
    config = config_from_dict(tiny(fake_root, tmp_path / "out"))
    with caplog.at_level(logging.INFO, logger=RUNNER):
        run_experiment(config, progress=mode)
    lines = [m for m in messages(caplog) if m.startswith("projected")]
    assert len(lines) == 1, messages(caplog)
    assert re.fullmatch(
        r"projected wall time for 3 runs: \d\d:\d\d:\d\d \(from 2 finished runs, "
        r"1 worker\)",
        lines[0],
    )


def test_processes_project_from_the_first_run_of_each_worker(
    tmp_path, fake_root, caplog
):
    raw = tiny(fake_root, tmp_path / "out", batch_members=1)
    raw["split"]["num_inits"] = 4
    raw["executor"] = {"kind": "processes", "workers": 2, "threads": 1}
    with caplog.at_level(logging.INFO, logger=RUNNER):
        run_experiment(config_from_dict(raw), progress="log")
    lines = messages(caplog)
    projected = [m for m in lines if m.startswith("projected")]
    assert len(projected) == 1
    assert projected[0].endswith("(from 2 finished runs, 2 workers)")
    runs = [m for m in lines if m.startswith("run ")]
    assert lines.index(projected[0]) == lines.index(runs[1]) + 1


def test_quiet_and_bar_modes_write_no_run_lines(tmp_path, fake_root, caplog, capsys):
    with caplog.at_level(logging.INFO, logger=RUNNER):
        run_experiment(
            config_from_dict(tiny(fake_root, tmp_path / "a")), progress=False
        )
        run_experiment(
            config_from_dict(tiny(fake_root, tmp_path / "b", max_epochs=37)),
            progress="bar",
        )
    assert not [m for m in messages(caplog) if m.startswith("run ")]
    err = capsys.readouterr().err.replace("\r", "\n")
    epoch_bars = [line for line in err.splitlines() if line.startswith("epochs:")]
    assert any(re.search(r"\d+epoch \[", line) for line in epoch_bars), err
    for line in epoch_bars:  # no total (37), hence no ETA against it
        assert "/37" not in line and "<" not in line and "%|" not in line
    assert re.search(r"3/3 \[\d\d:\d\d<\d\d:\d\d", err)  # the runs bar has its ETA


def test_run_sweep_lines_name_the_point(tmp_path, fake_root, caplog):
    raw = tiny(fake_root, tmp_path / "sweep")
    raw["split"] = {"num_splits": 1, "num_inits": 1}
    raw["sweep"] = {
        "axis": "hidden",
        "values": [4, 8],
        "methods": [{"label": "MLP", "key": "model.hidden_channels"}],
    }
    with caplog.at_level(logging.INFO, logger=RUNNER):
        run_sweep(config_from_dict(raw), progress="log")
    lines = [m for m in messages(caplog) if m.startswith("run ")]
    assert [RUN_LINE.match(line).group(1, 2, 3) for line in lines] == [
        ("1", "2", "MLP hidden=4"),
        ("2", "2", "MLP hidden=8"),
    ]


def test_tune_logs_trials_with_an_eta(tmp_path, fake_root, caplog):
    pytest.importorskip("optuna")
    from diffresnet_pyg.experiments.schema.search import space_from_dict
    from diffresnet_pyg.experiments.tune import tune

    raw = tiny(fake_root, tmp_path / "res")
    raw["split"] = {"num_splits": 1, "num_inits": 1}
    space = space_from_dict(
        {"trials": 2, "seed": 0, "params": {"train.lr": {"float": [0.001, 0.05]}}}
    )
    with caplog.at_level(logging.INFO):
        tune(config_from_dict(raw), space, tmp_path / "tune", progress="log")
    trials = messages(caplog, "diffresnet_pyg.experiments.tune")
    trials = [m for m in trials if re.match(r"trial \d+ \(", m)]
    assert len(trials) == 2
    assert re.match(r"trial 0 \(1/2\): val acc \(%\) \d+\.\d\d \(1 run\) ", trials[0])
    assert re.search(r"; ETA \d\d:\d\d:\d\d$", trials[0])
    assert re.search(r"; done in \d\d:\d\d:\d\d$", trials[1])
    runs = [m for m in messages(caplog) if m.startswith("run ")]
    assert len(runs) == 2 and all("val acc" in m for m in runs)  # no test acc


def test_run_fewshot_logs_episodes(tmp_path, caplog):
    from diffresnet_pyg.experiments.fewshot_config import fewshot_config_from_dict
    from diffresnet_pyg.experiments.fewshot_runner import run_fewshot
    from diffresnet_pyg.fewshot.features import ClassFeatures, save_feature_file

    gen = torch.Generator().manual_seed(0)
    path = tmp_path / "test.npz"
    x = torch.randn(6, 1, 4, generator=gen) * 3 + torch.randn(6, 8, 4, generator=gen)
    save_feature_file(path, ClassFeatures.from_tensor(x.double()))
    raw = {
        "task": "fewshot",
        "name": "tiny",
        "output": str(tmp_path / "out"),
        "features": {"source": "file", "path": str(path)},
        "preprocess": {"center": False},
        "episodes": {
            "way": 3,
            "shot": 1,
            "query": 2,
            "num_episodes": 5,
            "seed": 1,
            "chunk_size": 2,
        },
        "methods": [{"label": "NP", "name": "nearest_prototype"}],
    }
    name = "diffresnet_pyg.experiments.fewshot_runner"
    with caplog.at_level(logging.INFO, logger=name):
        run_fewshot(fewshot_config_from_dict(raw), progress="log")
    lines = messages(caplog, name)
    assert lines, "no progress line"
    assert re.fullmatch(
        r"tiny: 5/5 episodes \(NP, episodes 4-4: \d+\.\d\d %\); "
        r"done in \d\d:\d\d:\d\d",
        lines[-1],
    )
