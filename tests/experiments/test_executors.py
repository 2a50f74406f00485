import dataclasses
import functools
import json
import multiprocessing
import os
import shutil
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch
import yaml

from diffresnet_pyg.experiments import executors
from diffresnet_pyg.experiments.executors import (
    available_cpus,
    check_executor,
    map_chunks,
    num_workers,
    worker_device,
    worker_threads,
)
from diffresnet_pyg.experiments.runner import (
    ResultsFolderError,
    run_chunk,
    run_experiment,
    run_sweep,
)
from diffresnet_pyg.experiments.schema import (
    ConfigError,
    ExecutorConfig,
    config_from_dict,
    config_to_dict,
    fingerprint,
    load_config,
)

# Timing fields differ between runs; everything else in a row must not.
TIMING = ("seconds", "batch_seconds")


def minimal(**sections):
    raw = {
        "output": "out",
        "dataset": {"name": "cora"},
        "model": {"name": "gcn"},
    }
    raw.update(sections)
    return raw


# --------------------------------------------------------------------------
# The config section
# --------------------------------------------------------------------------


def test_default_executor_is_local_and_round_trips():
    cfg = config_from_dict(minimal())
    assert cfg.executor == ExecutorConfig()
    assert config_to_dict(cfg)["executor"] == {
        "kind": "local",
        "workers": None,
        "threads": None,
        "address": None,
        "num_cpus_per_task": 1.0,
        "num_gpus_per_task": 0.0,
        "checkpoint_minutes": 10.0,
    }
    ray = config_from_dict(
        minimal(executor={"kind": "ray", "address": "auto", "num_gpus_per_task": 0.5})
    )
    again = config_from_dict(yaml.safe_load(yaml.safe_dump(config_to_dict(ray))))
    assert again == ray and again.executor.num_gpus_per_task == 0.5


@pytest.mark.parametrize(
    ("executor", "match"),
    [
        ({"kind": "dask"}, r"executor\.kind: expected one of 'local', 'processes'"),
        ({"kind": "processes", "workers": 0}, r"executor\.workers: expected an int >="),
        ({"kind": "processes", "workers": 1.5}, r"executor\.workers: .* got 1\.5"),
        ({"kind": "ray", "threads": 0}, r"executor\.threads: expected an int >= 1"),
        ({"workers": 2}, r"executor\.workers: only used by kinds 'processes' and"),
        ({"kind": "processes", "address": "auto"}, r"executor\.address: only used"),
        ({"num_gpus_per_task": 1}, r"executor\.num_gpus_per_task: only used by kind"),
        ({"kind": "ray", "num_cpus_per_task": 0}, r"num_cpus_per_task: expected a fl"),
        ({"kind": "ray", "num_gpus_per_task": -1}, r"num_gpus_per_task: expected a f"),
        ({"kind": "ray", "address": ""}, r"executor\.address: expected a non-empty"),
        ({"kind": "ray", "nodes": 2}, r"executor\.nodes: unknown key; allowed: kind"),
        ("ray", r"executor: expected a mapping"),
    ],
)
def test_invalid_executor_sections_name_the_key(executor, match):
    with pytest.raises(ConfigError, match=match):
        config_from_dict(minimal(executor=executor))


def test_executor_is_overridable_and_not_fingerprinted(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(minimal()))
    cfg = load_config(path, ["executor.kind=processes", "executor.workers=2"])
    assert (cfg.executor.kind, cfg.executor.workers) == ("processes", 2)
    assert fingerprint(cfg) == fingerprint(load_config(path))
    changed = load_config(path, ["executor.kind=ray", "train.lr=0.5"])
    assert fingerprint(changed) != fingerprint(cfg)


def test_check_executor_refuses_devices_ray_cannot_serve():
    check_executor(ExecutorConfig("ray", num_gpus_per_task=1), "cuda")
    check_executor(ExecutorConfig("processes", workers=2), "cuda:1")
    with pytest.raises(ConfigError, match=r"num_gpus_per_task: must be > 0"):
        check_executor(ExecutorConfig("ray"), "cuda")
    with pytest.raises(ConfigError, match=r"train.device: with executor kind 'ray'"):
        check_executor(ExecutorConfig("ray", num_gpus_per_task=1), "cuda:1")
    with pytest.raises(ConfigError, match=r"reserve no GPUs \(0\), got 1.0"):
        check_executor(ExecutorConfig("ray", num_gpus_per_task=1), "cpu")


def test_workers_and_threads():
    cpus = available_cpus()
    assert num_workers(ExecutorConfig()) == 1
    assert num_workers(ExecutorConfig("processes")) == cpus
    assert num_workers(ExecutorConfig("ray")) is None
    assert worker_threads(ExecutorConfig()) is None
    assert worker_threads(ExecutorConfig(threads=3)) == 3
    assert worker_threads(ExecutorConfig("processes", workers=1)) == cpus
    assert worker_threads(ExecutorConfig("processes", workers=cpus + 1)) == 1
    assert worker_threads(ExecutorConfig("ray", num_cpus_per_task=0.5)) == 1
    assert worker_threads(ExecutorConfig("ray", num_cpus_per_task=2)) == 2


def test_a_pool_process_gets_its_index_threads_and_filters(monkeypatch):
    counter = multiprocessing.get_context("spawn").Value("i", 5)
    threads = torch.get_num_threads()
    monkeypatch.setattr(executors, "_WORKER_INDEX", None)
    filters = [("ignore", None, UserWarning, None, 0)]
    with warnings.catch_warnings():  # restores this process's filters
        executors._init_process(counter, 1, filters)
        try:
            assert executors._WORKER_INDEX == 5 and counter.value == 6
            assert torch.get_num_threads() == 1
            assert warnings.filters == filters
            assert worker_device("cpu") == "cpu"
        finally:
            torch.set_num_threads(threads)


def test_local_map_keeps_order_and_restores_threads():
    threads = torch.get_num_threads()
    seen = []

    def task(chunk):
        seen.append(torch.get_num_threads())
        return sum(chunk)

    out = list(map_chunks(ExecutorConfig(threads=1), task, [[1, 2], [3], [4, 5]]))
    assert out == [([1, 2], 3), ([3], 3), ([4, 5], 9)]
    assert seen == [1, 1, 1] and torch.get_num_threads() == threads
    assert list(map_chunks(ExecutorConfig("ray"), task, [])) == []


def sleep_or_fail(folder: Path, seconds: float) -> None:
    """A chunk task: note this worker's pid; sleep, or (seconds < 0) fail once
    the other worker is asleep; note if it ever wakes."""
    (folder / f"{os.getpid()}.pid").touch()
    if seconds < 0:
        while len(list(folder.glob("*.pid"))) < 2:
            time.sleep(0.05)
        raise ValueError("this chunk fails")
    time.sleep(seconds)
    (folder / f"{os.getpid()}.woke").touch()


def running(pid: int) -> bool:
    psutil = pytest.importorskip("psutil")
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_a_failing_chunk_stops_the_pool(tmp_path):
    # one worker raises at once while the other sleeps: the error reaches the
    # caller and the sleeping worker is stopped, not awaited
    task = functools.partial(sleep_or_fail, tmp_path)
    with pytest.raises(ValueError, match="this chunk fails"):
        list(map_chunks(ExecutorConfig("processes", workers=2), task, [60, -1]))
    pids = [int(path.stem) for path in tmp_path.glob("*.pid")]
    assert len(pids) == 2
    for pid in pids:
        for _ in range(300):  # up to 30 s for the signal to land
            if not running(pid):
                break
            time.sleep(0.1)
        assert not running(pid)
    assert not list(tmp_path.glob("*.woke"))


def test_ray_missing_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # "import ray" raises
    with pytest.raises(ConfigError, match=r"pip install -e '\.\[ray\]'"):
        list(map_chunks(ExecutorConfig("ray"), len, [[1]]))


# --------------------------------------------------------------------------
# Runs on a Cora-shaped graph: every executor gives the rows of the local one
# --------------------------------------------------------------------------


def tiny(root: Path, output: Path, **executor) -> dict:
    return {
        "output": str(output),
        "dataset": {"name": "cora", "root": str(root)},
        "split": {"num_splits": 1, "num_inits": 5},
        "model": {"name": "gcn", "hidden_channels": 8},  # dropout 0.8
        "train": {"max_epochs": 4, "batch_members": 2},
        "executor": executor or {"threads": 1},
    }


def rows(folder: Path) -> list[dict]:
    lines = (folder / "runs.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def by_key(found: list[dict]) -> dict:
    return {
        (r["split"], r["init"]): {k: v for k, v in r.items() if k not in TIMING}
        for r in found
    }


@pytest.fixture(scope="module")
def local_rows(fake_root, tmp_path_factory) -> tuple[Path, list[dict]]:
    """The tiny study run in this process with one torch thread."""
    folder = tmp_path_factory.mktemp("local") / "res"
    run_experiment(config_from_dict(tiny(fake_root, folder)), progress=False)
    return folder, rows(folder)


def test_run_chunk_is_the_row_of_the_runner(local_rows, fake_root, tmp_path):
    folder, reference = local_rows
    raw = tiny(fake_root, tmp_path)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        got = run_chunk(raw, [(0, 4)])
    finally:
        torch.set_num_threads(threads)
    assert by_key(got) == {(0, 4): by_key(reference)[(0, 4)]}
    assert got[0]["batch_members"] == 1  # the last chunk of 5 runs, 2 at a time
    with pytest.raises(ValueError, match=r"unknown \(split, init\): \[\(0, 5\)\]"):
        run_chunk(raw, [(0, 5)])


def test_processes_resume_a_local_folder_with_the_same_rows(local_rows, tmp_path):
    folder, reference = local_rows
    assert [r["batch_members"] for r in reference] == [2, 2, 2, 2, 1]
    out = tmp_path / "res"
    shutil.copytree(folder, out)
    # interrupted after the first chunk, in the middle of a row
    text = "".join(json.dumps(r) + "\n" for r in reference[:2])
    (out / "runs.jsonl").write_text(text + json.dumps(reference[2])[:30])
    (out / "summary.json").unlink()
    saved = yaml.safe_load((folder / "config.yaml").read_text())
    raw = {**saved, "output": str(out)}

    bad = {**raw, "train": {**raw["train"], "lr": 0.5}}
    bad["executor"] = {"kind": "processes", "workers": 2, "threads": 1}
    with pytest.raises(ResultsFolderError, match=r"train\.lr: 0\.01 -> 0\.5"):
        run_experiment(config_from_dict(bad), progress=False)

    raw["executor"] = {"kind": "processes", "workers": 2, "threads": 1}
    summary = run_experiment(config_from_dict(raw), progress=False)
    got = rows(out)
    assert got[:2] == reference[:2]  # finished runs untouched
    assert len(got) == 5 and by_key(got) == by_key(reference)
    assert summary["complete"] is True and summary["n_runs"] == 5
    written = yaml.safe_load((out / "config.yaml").read_text())
    assert written["executor"]["kind"] == "processes"


# --------------------------------------------------------------------------
# Ray (a local instance)
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_instance():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    yield ray
    ray.shutdown()


@pytest.mark.ray
def test_ray_gives_the_rows_of_local(ray_instance, local_rows, fake_root, tmp_path):
    folder, reference = local_rows
    out = tmp_path / "res"
    ray_raw = tiny(fake_root, out, kind="ray", workers=2, threads=1)
    summary = run_experiment(config_from_dict(ray_raw), progress=False)
    assert by_key(rows(out)) == by_key(reference)
    assert summary["complete"] is True
    too_big = dataclasses.replace(
        config_from_dict(ray_raw).executor, num_cpus_per_task=3
    )
    cfg = dataclasses.replace(
        config_from_dict(ray_raw), executor=too_big, output=str(tmp_path / "x")
    )
    with pytest.raises(ConfigError, match=r"cluster has 2 CPUs in all, a task needs 3"):
        run_experiment(cfg, progress=False)
    failing = functools.partial(run_chunk, ray_raw)  # a task's error reaches us
    with pytest.raises(ValueError, match=r"unknown \(split, init\): \[\(0, 9\)\]"):
        list(map_chunks(ExecutorConfig("ray"), failing, [[(0, 1)], [(0, 9)]]))


@pytest.mark.ray
def test_ray_sweep_matches_a_local_sweep(ray_instance, fake_root, tmp_path):
    def sweep(output, executor):
        return config_from_dict(
            {
                "output": str(output),
                "dataset": {"name": "cora", "root": str(fake_root)},
                "split": {"num_splits": 1, "num_inits": 2},
                "model": {"name": "mlp", "hidden_channels": 8},
                "train": {"max_epochs": 3, "batch_members": 1},
                "executor": executor,
                "sweep": {
                    "axis": "depth",
                    "values": [1, 2],
                    "methods": [{"label": "MLP", "key": "model.num_layers"}],
                },
            }
        )

    run_sweep(sweep(tmp_path / "local", {"threads": 1}), progress=False)
    run_sweep(sweep(tmp_path / "ray", {"kind": "ray", "threads": 1}), progress=False)
    for depth in (1, 2):
        point = Path("mlp") / f"depth_{depth}"
        local = by_key(rows(tmp_path / "local" / point))
        assert len(local) == 2 and by_key(rows(tmp_path / "ray" / point)) == local
    assert (tmp_path / "ray" / "sweep.md").exists()


@pytest.mark.parametrize("dataset", ["cora", "citeseer", "pubmed"])
def test_the_authors_diffresnet_configs_train_one_run_per_core(dataset):
    # unbatched runs of a model whose sparse products gain less from a second
    # thread than from a second run (benchmarks/protocol_throughput.py)
    path = Path(__file__).parents[2] / "configs" / dataset / "diffresnet_reference.yaml"
    config = load_config(path)
    assert config.train.batch_members == 1
    assert config.executor == ExecutorConfig("processes")
    assert num_workers(config.executor) == available_cpus()
    assert worker_threads(config.executor) == 1
    # speed only: the results folder's identity is that of the local executor
    local = load_config(path, ["executor.kind=local"])
    assert fingerprint(local) == fingerprint(config)
