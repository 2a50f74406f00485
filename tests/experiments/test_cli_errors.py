"""Every user error reaches the command line as one ``diffresnet-pyg: error:``
line with exit status 2, before any results folder is claimed.

``CASES`` is the table of bad inputs: each builds its files under a temporary
folder and gives the command line and a part of the expected message.
"""

import json
import os
import pickle
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from diffresnet_pyg.cli import main
from diffresnet_pyg.fewshot.features import ClassFeatures, save_feature_file
from tests.fake_data import small_graph, write_graph_file


@dataclass(frozen=True)
class Case:
    """A bad input: ``build(tmp)`` writes its files and returns the argv."""

    name: str
    build: Callable[[Path], list[str]]
    message: str
    #: Whether the run's output folder must not exist afterwards.
    no_folder: bool = True


def _config(tmp: Path, *, output: str = "out", **sections) -> Path:
    raw = {
        "output": str(tmp / output),
        "dataset": {"path": str(tmp / "graph.npz")},
        "split": {"scheme": "given", "num_splits": 2, "num_inits": 1},
        "model": {"name": "mlp", "hidden_channels": 4},
        "train": {"max_epochs": 2, "batch_members": 1},
    }
    for key, value in sections.items():
        merge = isinstance(value, dict) and key != "model"
        raw[key] = {**raw.get(key, {}), **value} if merge else value
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _graph(tmp: Path, change: Callable[[dict], None] | None = None) -> Path:
    graph = small_graph()
    if change is not None:
        change(graph)
    return write_graph_file(tmp / "graph.npz", "csr", graph)


def _run(tmp: Path, *overrides: str, change=None, **sections) -> list[str]:
    _graph(tmp, change)
    return ["run", str(_config(tmp, **sections)), *overrides]


def _set(key: str, index, value) -> Callable[[dict], None]:
    def change(graph: dict) -> None:
        array = graph[key].astype(np.float32 if key == "x" else graph[key].dtype)
        array[index] = value
        graph[key] = array

    return change


def _write_csr(tmp: Path, **arrays) -> list[str]:
    graph = small_graph()
    n = graph["y"].size
    base = dict(
        indptr=np.arange(n + 1),
        indices=np.roll(np.arange(n), 1),
        x=graph["x"],
        y=graph["y"],
        train_mask=graph["train_masks"].T,
        val_mask=graph["val_masks"].T,
        test_mask=graph["test_masks"].T,
    )
    base.update(arrays)
    np.savez(tmp / "graph.npz", **{k: v for k, v in base.items() if v is not None})
    return ["run", str(_config(tmp))]


class _Payload:
    """Unpickling this runs ``touch <marker>``: must never happen."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _malicious_graphdata(tmp: Path) -> list[str]:
    box = np.empty((), dtype=object)
    box[()] = _Payload(tmp / "pwned")
    np.savez(tmp / "graph.npz", adj_matrix=box, node_label=np.zeros(3, np.int64))
    return ["run", str(_config(tmp, dataset={"format": "graphdata"}))]


def _fewshot(tmp: Path, features: Path | None = None, **episodes) -> list[str]:
    if features is None:
        features = tmp / "features.npz"
        x = torch.randn(4, 6, 3, generator=torch.Generator().manual_seed(0))
        save_feature_file(features, ClassFeatures.from_tensor(x))
    raw = {
        "task": "fewshot",
        "output": str(tmp / "out"),
        "features": {"source": "file", "path": str(features)},
        "episodes": {"way": 3, "shot": 1, "query": 2, "num_episodes": 2, **episodes},
        "preprocess": {"center": False},
        "methods": [{"label": "NP", "name": "nearest_prototype"}],
    }
    path = tmp / "fewshot.yaml"
    path.write_text(yaml.safe_dump(raw))
    return ["fewshot", str(path)]


def _malicious_plk(tmp: Path) -> list[str]:
    path = tmp / "features.plk"
    path.write_bytes(pickle.dumps({0: _Payload(tmp / "pwned")}))
    return _fewshot(tmp, path)


def _results_folder(tmp: Path, rows: str) -> list[str]:
    argv = _run(tmp)
    assert main(["-q", *argv]) == 0
    (tmp / "out" / "runs.jsonl").write_text(rows)
    return argv


def _middle_line_corrupt(tmp: Path) -> list[str]:
    argv = _run(tmp, "split.num_inits=3")
    assert main(["-q", *argv]) == 0
    lines = (tmp / "out" / "runs.jsonl").read_text().splitlines()
    lines[1] = lines[1][: len(lines[1]) // 2]
    (tmp / "out" / "runs.jsonl").write_text("\n".join(lines) + "\n")
    return argv


def _other_config(tmp: Path) -> list[str]:
    argv = _run(tmp)
    assert main(["-q", *argv]) == 0
    return [*argv, "train.lr=0.5"]


def _file_as_output(tmp: Path) -> list[str]:
    (tmp / "out").write_text("not a folder")
    return _run(tmp)


def _yaml(tmp: Path, text: str) -> list[str]:
    (tmp / "config.yaml").write_text(text)
    return ["run", str(tmp / "config.yaml")]


def _tune(tmp: Path, space: str) -> list[str]:
    argv = _run(tmp)
    (tmp / "space.yaml").write_text(space)
    return ["tune", argv[1], str(tmp / "space.yaml"), "-o", str(tmp / "out")]


def _sweep(tmp: Path, sweep: dict) -> list[str]:
    _graph(tmp)
    return ["sweep", str(_config(tmp, sweep=sweep))]


CASES = [
    # config files and overrides
    Case("missing config", lambda t: ["run", str(t / "nope.yaml")], "nope.yaml"),
    Case("YAML syntax", lambda t: _yaml(t, "output: [a\n"), "config.yaml"),
    Case("config not a mapping", lambda t: _yaml(t, "- 1\n- 2\n"), "mapping"),
    Case("unknown key", lambda t: _run(t, "model.depth=3"), "model.depth"),
    Case("unknown section", lambda t: _run(t, "trian.lr=0.1"), "trian"),
    Case("override without =", lambda t: _run(t, "train.lr"), "train.lr"),
    Case("lr not a number", lambda t: _run(t, "train.lr=abc"), "train.lr"),
    Case("negative lr", lambda t: _run(t, "train.lr=-1"), "train.lr"),
    Case("unknown model", lambda t: _run(t, "model.name=resnet9"), "resnet9"),
    Case(
        "unknown dataset",
        lambda t: _yaml(t, "output: o\ndataset: {name: kora}\nmodel: {name: gcn}\n"),
        "kora",
    ),
    Case("unknown format", lambda t: _run(t, "dataset.format=xlsx"), "dataset.format"),
    Case("unknown executor", lambda t: _run(t, "executor.kind=mpi"), "executor.kind"),
    Case(
        "run with a sweep",
        lambda t: [
            "run",
            *_sweep(
                t,
                {
                    "axis": "depth",
                    "values": [1],
                    "methods": [{"label": "MLP", "key": "model.num_layers"}],
                },
            )[1:],
        ],
        "use 'diffresnet-pyg sweep",
    ),
    Case(
        "sweep without sweep section",
        lambda t: ["sweep", _run(t)[1]],
        "no 'sweep' section",
    ),
    # devices and impossible runs
    Case("cuda without CUDA", lambda t: _run(t, "train.device=cuda"), "CUDA"),
    Case("cuda:7", lambda t: _run(t, "train.device=cuda:7"), "cuda:7"),
    Case(
        "train_per_class too large",
        lambda t: _run(t, "split.scheme=per_class", "split.train_per_class=50"),
        "train_per_class",
    ),
    Case(
        "unstable step size",
        lambda t: _run(
            t, model={"name": "diffresnet_reference", "step_size": 5.0, "layer_num": 2}
        ),
        "step_size",
    ),
    # results folders
    Case("output is a file", _file_as_output, "out", no_folder=False),
    Case("folder of another config", _other_config, "train.lr", no_folder=False),
    Case(
        "corrupt middle row",
        _middle_line_corrupt,
        "runs.jsonl",
        no_folder=False,
    ),
    Case(
        "unreadable config.yaml",
        lambda t: (
            _results_folder(t, "")
            and (t / "out" / "config.yaml").write_text("{{")
            and _run(t)
        ),
        "config.yaml",
        no_folder=False,
    ),
    Case("report of a missing folder", lambda t: ["report", str(t / "x")], "x"),
    # data files
    Case("missing data file", lambda t: ["run", str(_config(t))], "graph.npz"),
    Case(
        "not an npz",
        lambda t: (t / "graph.npz").write_text("hello") and ["run", str(_config(t))],
        "not an npz",
    ),
    Case(
        "truncated npz",
        lambda t: (
            _graph(t).write_bytes(_graph(t).read_bytes()[:300])
            and ["run", str(_config(t))]
        ),
        "graph.npz",
    ),
    Case(
        "edge past the node count",
        lambda t: _write_csr(t, indices=np.full(30, 99)),
        "graph.npz",
    ),
    Case(
        "labels shorter than nodes",
        lambda t: _write_csr(t, y=small_graph()["y"][:-3]),
        "label",
    ),
    Case("NaN feature", lambda t: _run(t, change=_set("x", (3, 1), np.nan)), "finite"),
    Case("inf feature", lambda t: _run(t, change=_set("x", (5, 0), np.inf)), "finite"),
    Case("label 99", lambda t: _run(t, change=_set("y", 4, 99)), "label"),
    Case("label -1", lambda t: _run(t, change=_set("y", 4, -1)), "label"),
    Case(
        "negative edge weight",
        lambda t: _write_csr(t, data=-np.ones(30, np.float32)),
        "weight",
    ),
    Case(
        "NaN edge weight",
        lambda t: _write_csr(t, data=np.full(30, np.nan, np.float32)),
        "weight",
    ),
    Case(
        "too-small classes",
        lambda t: _run(
            t,
            "split.scheme=per_class",
            "split.train_per_class=5",
            "split.val_per_class=5",
        ),
        "class",
    ),
    Case("malicious GraphData npz", _malicious_graphdata, "pickle"),
    # tune
    Case(
        "missing search space",
        lambda t: ["tune", _run(t)[1], str(t / "space.yaml")],
        "space.yaml",
    ),
    Case(
        "bad search parameter",
        lambda t: _tune(t, "trials: 1\nparams: {train.lr: {kind: banana}}\n"),
        "params.train.lr.kind",
    ),
    # sweeps
    Case(
        "sweep method with an unknown key",
        lambda t: _sweep(
            t,
            {
                "axis": "depth",
                "values": [1],
                "methods": [{"label": "A", "key": "model.nope"}],
            },
        ),
        "model.nope",
    ),
    # few-shot
    Case("few-shot way > classes", lambda t: _fewshot(t, way=9), "way"),
    Case("few-shot query > samples", lambda t: _fewshot(t, query=20), "query"),
    Case(
        "few-shot missing feature file",
        lambda t: _fewshot(t, t / "missing.npz"),
        "missing.npz",
    ),
    Case("malicious few-shot pickle", _malicious_plk, "pickle"),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input_is_one_error_line(case, tmp_path, capsys):
    argv = case.build(tmp_path)
    capsys.readouterr()
    assert main(["-q", *argv]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("diffresnet-pyg: error: "), err
    assert case.message.lower() in lines[0].lower(), lines[0]
    print(f"| {case.name} | `{lines[0].removeprefix('diffresnet-pyg: error: ')}` |")
    assert not (tmp_path / "pwned").exists()
    if case.no_folder:
        assert not (tmp_path / "out").exists(), f"{case.name} claimed its folder"


def _cli(*argv: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "diffresnet_pyg.cli", *argv],
        capture_output=True,
        text=True,
        timeout=300,
        **kwargs,
    )


def test_entry_point_reports_a_library_error_in_one_line(tmp_path):
    argv = _run(tmp_path, "split.scheme=per_class", "split.train_per_class=50")
    result = _cli(*argv, "-q")  # a global flag after the subcommand
    assert result.returncode == 2
    assert result.stderr.startswith("diffresnet-pyg: error: ")
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "out").exists()
    debug = _cli("--debug", *argv)
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_help_imports_neither_torch_nor_the_runners():
    code = (
        "import sys\n"
        "from diffresnet_pyg.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'torch_geometric', 'numpy') "
        "if m in sys.modules]\n"
        "print('heavy:', heavy)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert "heavy: []" in result.stdout, result.stdout + result.stderr
    for command in ("run", "sweep", "fewshot", "show", "tune", "report", "synthetic"):
        text = _cli(command, "--help").stdout
        assert "-q, --quiet" in text and "--debug" in text


@pytest.mark.parametrize("executor", ["local", "processes"])
def test_ctrl_c_says_what_is_saved_and_how_to_resume(tmp_path, executor):
    _graph(tmp_path)
    cfg = _config(
        tmp_path,
        split={"scheme": "given", "num_splits": 2, "num_inits": 20},
        train={"max_epochs": 300, "patience": 300},
        executor={"kind": executor}
        | ({"workers": 2} if executor == "processes" else {}),
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "diffresnet_pyg.cli", "-q", "run", str(cfg)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        # A shell's background jobs start with SIGINT ignored, and children
        # inherit that: give the command the default a terminal gives it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    runs = tmp_path / "out" / "runs.jsonl"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if runs.exists() and runs.read_text().count("\n") >= 1:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    saved = len(runs.read_text().splitlines())
    assert err.strip().splitlines() == [
        f"diffresnet-pyg: interrupted; {saved} finished runs are saved in "
        f"{tmp_path / 'out'}; rerun the same command to resume"
    ]
    assert all(json.loads(line) for line in runs.read_text().splitlines())


def test_without_a_terminal_each_finished_run_is_a_log_line(tmp_path):
    argv = _run(tmp_path, "split.num_inits=2")
    result = _cli(*argv)  # stderr is a pipe, as under nohup or CI
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if " run " in line]
    assert len(lines) == 4, result.stderr  # 2 splits x 2 inits
    assert re.search(r"run 1/4 \(split \d, init \d\): test acc [\d.]+ %", lines[0])
    assert "ETA" in lines[0] and "done in" in lines[-1]
    quiet = _cli(*argv, "-q")  # resumes: nothing left to run, no info lines
    assert quiet.returncode == 0 and "INFO" not in quiet.stderr
    assert "4 of 4 runs stopped at max_epochs=2" in quiet.stderr  # a warning
