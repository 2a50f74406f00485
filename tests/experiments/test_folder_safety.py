"""One writer per results folder, bounded YAML, workers that die with their parent.

The tests start the real entry point (``python -m diffresnet_pyg.cli``) in
subprocesses, on the tiny synthetic graph of :mod:`tests.fake_data`.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from diffresnet_pyg.experiments.fewshot_config import load_fewshot_config
from diffresnet_pyg.experiments.results import (
    LOCK_FILE,
    RUNS_FILE,
    folder_lock_scope,
    lock_folder,
)
from diffresnet_pyg.experiments.schema import (
    MAX_YAML_BYTES,
    MAX_YAML_NODES,
    ConfigError,
    parse_overrides,
    read_yaml,
    read_yaml_file,
)
from diffresnet_pyg.experiments.tune import load_space
from tests.fake_data import small_graph, write_graph_file

CLI = [sys.executable, "-m", "diffresnet_pyg.cli"]


def _config(tmp: Path, **sections) -> Path:
    write_graph_file(tmp / "graph.npz", "csr", small_graph())
    raw = {
        "output": str(tmp / "out"),
        "dataset": {"path": str(tmp / "graph.npz")},
        "split": {"scheme": "given", "num_splits": 2, "num_inits": 2},
        "model": {"name": "mlp", "hidden_channels": 4},
        "train": {"max_epochs": 150, "patience": 150, "batch_members": 1},
    }
    for key, value in sections.items():
        raw[key] = {**raw.get(key, {}), **value}
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _start(*argv: str) -> subprocess.Popen:
    return subprocess.Popen(
        [*CLI, "-q", *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _keys(folder: Path) -> list[tuple[int, int]]:
    rows = [
        json.loads(line)
        for line in (folder / RUNS_FILE).read_text().split("\n")
        if line.strip()
    ]
    return [(row["split"], row["init"]) for row in rows]


def _wait_for_rows(proc: subprocess.Popen, runs: Path, count: int = 1) -> None:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if runs.exists() and runs.read_text().count("\n") >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"no row in {runs} (exit {proc.poll()})")


# ------------------------------------------------------------ one writer


def test_two_processes_on_one_folder_leave_one_row_per_key(tmp_path):
    cfg = _config(tmp_path)
    procs = [_start("run", str(cfg)), _start("run", str(cfg))]
    errs = [proc.communicate(timeout=300)[1] for proc in procs]
    codes = sorted(proc.returncode for proc in procs)
    assert codes == [0, 2], errs
    winner, loser = (0, 1) if procs[0].returncode == 0 else (1, 0)
    lines = errs[loser].strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("diffresnet-pyg: error: "), errs
    assert str(tmp_path / "out") in lines[0]
    assert f"PID {procs[winner].pid}" in lines[0], lines[0]
    keys = _keys(tmp_path / "out")
    assert sorted(keys) == [(s, i) for s in range(2) for i in range(2)]


def test_a_held_folder_is_refused_with_the_holders_pid(tmp_path):
    cfg = _config(tmp_path)
    with folder_lock_scope():
        lock_folder(tmp_path / "out")
        result = subprocess.run(
            [*CLI, "-q", "run", str(cfg)], capture_output=True, text=True, timeout=300
        )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"diffresnet-pyg: error: {tmp_path / 'out'} is in use by another process "
        f"(PID {os.getpid()}, see {tmp_path / 'out' / LOCK_FILE}); wait for it to "
        "finish or stop it, then rerun to resume"
    ]
    assert not (tmp_path / "out" / RUNS_FILE).exists()


def test_a_rerun_after_the_holder_was_killed_resumes(tmp_path):
    cfg = _config(tmp_path, split={"num_inits": 4})
    proc = _start("run", str(cfg))
    runs = tmp_path / "out" / RUNS_FILE
    _wait_for_rows(proc, runs)
    proc.kill()  # SIGKILL: the lock file stays, with a dead PID in it
    proc.wait(timeout=60)
    assert (tmp_path / "out" / LOCK_FILE).read_text().strip() == str(proc.pid)
    done = len(_keys(tmp_path / "out"))
    assert done < 8
    rerun = subprocess.run(
        [*CLI, "-q", "run", str(cfg), "split.num_inits=1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert rerun.returncode == 0, rerun.stderr
    keys = _keys(tmp_path / "out")
    assert len(keys) == len(set(keys)) and {(0, 0), (1, 0)} <= set(keys)


def test_report_keeps_the_first_row_of_a_duplicated_run(tmp_path):
    folder = tmp_path / "res"
    folder.mkdir()
    row = {"split": 0, "split_seed": 7, "epochs": 10, "val_acc": 0.5, "seconds": 1.0}
    rows = [
        {**row, "init": 0, "test_acc": 0.8},
        {**row, "init": 1, "test_acc": 0.6},
        {**row, "init": 0, "test_acc": 0.2},  # a second process's row
        {**row, "init": 1, "test_acc": 0.2},
    ]
    (folder / RUNS_FILE).write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = subprocess.run(
        [*CLI, "report", str(folder)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert "2 duplicate row(s)" in result.stderr  # the warning
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["n_runs"] == 2 and summary["duplicate_rows"] == 2
    assert summary["test_acc"]["mean"] == pytest.approx(70.0)
    assert (
        "2 duplicate rows of a (split, init) run ignored"
        in (folder / "summary.md").read_text()
    )


# ------------------------------------------------------------ bounded YAML


def _laughs(levels: int = 9) -> str:
    """The "billion laughs" shape: each list holds nine aliases of the last."""
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    names = "abcdefghijklmnopqrstuvwxyz"[:levels]
    for prev, name in zip(names, names[1:], strict=False):
        lines.append(f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]")
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_config_fails_at_once(tmp_path):
    path = tmp_path / "laughs.yaml"
    path.write_text(_laughs())
    assert len(path.read_bytes()) < 500
    result = subprocess.run(  # the unbounded parse took minutes
        [*CLI, "run", str(path)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"diffresnet-pyg: error: {path}: YAML anchors and aliases (&name, *name) "
        "are not allowed (line 1, column 4)"
    ]


@pytest.mark.parametrize(
    "load",
    [read_yaml, load_space, load_fewshot_config],
    ids=["config or sweep", "tune space", "few-shot config"],
)
def test_every_user_yaml_file_refuses_anchors_and_aliases(tmp_path, load):
    path = tmp_path / "file.yaml"
    path.write_text("output: out\nbase: &b {lr: 0.1}\ntrain: *b\n")
    with pytest.raises(ConfigError) as info:
        load(path)
    assert str(info.value) == (
        f"{path}: YAML anchors and aliases (&name, *name) are not allowed "
        "(line 2, column 7)"
    )


def test_an_override_value_refuses_aliases():
    with pytest.raises(ConfigError, match=r"^train\.x: .*anchors and aliases"):
        parse_overrides(["train.x=[&a [1], *a]"])


def test_results_folder_yaml_may_share_a_list_but_not_expand_without_bound(tmp_path):
    shared = tmp_path / "sweep.yaml"  # yaml.safe_dump writes a shared list so
    shared.write_text(yaml.safe_dump({"a": (values := [1, 2]), "b": values}))
    assert "&id001" in shared.read_text()
    assert read_yaml_file(shared, aliases=True) == {"a": [1, 2], "b": [1, 2]}
    bomb = tmp_path / "config.yaml"
    bomb.write_text(_laughs())
    with pytest.raises(ConfigError, match=f"more than {MAX_YAML_NODES} nodes"):
        read_yaml_file(bomb, aliases=True)


def test_a_yaml_file_larger_than_the_cap_is_refused_unread(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text("output: out\n" + "#" * MAX_YAML_BYTES + "\n")
    size = path.stat().st_size
    with pytest.raises(ConfigError) as info:
        read_yaml(path)
    assert str(info.value) == (
        f"{path}: {size} bytes, more than the {MAX_YAML_BYTES} bytes (1 MiB) a "
        "config file may have"
    )


# ------------------------------------------------------------ pool workers


def _workers(parent: int) -> list[int]:
    """PIDs of the ``spawn`` pool workers whose parent is ``parent`` (Linux)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        if ppid == parent and b"spawn_main" in cmdline:
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; whoever adopted it has not reaped it


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_killed_parent_leaves_no_pool_worker_alive(tmp_path):
    cfg = _config(
        tmp_path,
        split={"num_inits": 20},
        executor={"kind": "processes", "workers": 2, "threads": 1},
    )
    proc = _start("run", str(cfg))
    workers: list[int] = []
    try:
        _wait_for_rows(proc, tmp_path / "out" / RUNS_FILE)
        workers = _workers(proc.pid)
        assert len(workers) == 2
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(map(_alive, workers)):
            time.sleep(0.1)
        assert not [pid for pid in workers if _alive(pid)]
    finally:
        proc.kill()
        for pid in workers:  # without the fix they would train for minutes
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
