import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

import diffresnet_pyg
from diffresnet_pyg.cli import main
from diffresnet_pyg.data import load_dataset, protocol_splits
from diffresnet_pyg.experiments.runner import (
    ResultsFolderError,
    plan_runs,
    run_experiment,
)
from diffresnet_pyg.experiments.schema import config_from_dict, load_config


def write_config(path: Path, root: Path, output: Path, **sections) -> Path:
    raw = {
        "output": str(output),
        "dataset": {"name": "cora", "root": str(root)},
        "split": {"num_splits": 1, "num_inits": 2},
        "model": {"name": "diffresnet_reference", "layer_num": 2},
        "train": {"max_epochs": 3, "batch_members": 2},
    }
    for key, value in sections.items():
        merge = isinstance(value, dict) and key != "model"
        raw[key] = {**raw.get(key, {}), **value} if merge else value
    path.write_text(yaml.safe_dump(raw))
    return path


def rows(folder: Path) -> list[dict]:
    lines = (folder / "runs.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def test_cli_version_and_report_description(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out == f"diffresnet-pyg {diffresnet_pyg.__version__}\n"
    with pytest.raises(SystemExit):
        main(["report", "--help"])
    words = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert "write summaries, tables and plots of results folders: a results" in words


def test_cli_run_end_to_end(tmp_path, fake_root, capsys):
    out = tmp_path / "res"
    cfg = write_config(tmp_path / "c.yaml", fake_root, out)
    assert main(["-q", "run", str(cfg), "model.layer_num=3", "train.lr=0.02"]) == 0
    assert "test accuracy" in capsys.readouterr().out
    got = rows(out)
    assert [(r["split"], r["init"]) for r in got] == [(0, 0), (0, 1)]
    assert [r["init_seed"] for r in got] == [711880, 946634]
    assert {r["split_seed"] for r in got} == {121958}
    for r in got:
        assert r["epochs"] == 3 and 1 <= r["best_epoch"] <= 3
        assert 0.0 <= r["test_acc"] <= 1.0 and r["batch_members"] == 2
    resolved = yaml.safe_load((out / "config.yaml").read_text())
    assert resolved["model"]["layer_num"] == 3 and resolved["train"]["lr"] == 0.02
    summary = json.loads((out / "summary.json").read_text())
    assert summary["complete"] is True and summary["n_runs"] == 2
    mean = 100 * sum(r["test_acc"] for r in got) / 2
    assert summary["test_acc"]["mean"] == pytest.approx(mean)


def test_plan_runs_follows_the_protocol(tmp_path, fake_root):
    cfg = config_from_dict(
        {
            "output": str(tmp_path),
            "dataset": {"name": "cora", "root": str(fake_root)},
            "model": {"name": "mlp"},
            "split": {"num_splits": 2, "num_inits": 3},
        }
    )
    data = load_dataset("cora", fake_root)
    runs = plan_runs(cfg, data)
    splits = list(protocol_splits(data.y, num_splits=2, num_inits=3))
    assert [r.key for r in runs] == [(s, i) for s in range(2) for i in range(3)]
    assert [r.init_seed for r in runs] == [s for sp in splits for s in sp.init_seeds]
    assert all(r.train_idx.numel() == 140 and r.val_idx.numel() == 210 for r in runs)
    assert runs[3].test_idx.equal(splits[1].test_idx)


def test_public_split(tmp_path, fake_root):
    cfg = config_from_dict(
        {
            "output": str(tmp_path / "res"),
            "dataset": {"name": "planetoid/cora", "root": str(fake_root)},
            "model": {"name": "mlp"},
            "split": {"scheme": "public", "num_splits": 1, "num_inits": 2},
            "train": {"max_epochs": 2, "batch_members": 2},
        }
    )
    summary = run_experiment(cfg, progress=False)
    assert summary["n_runs"] == 2
    data = load_dataset("planetoid/cora", fake_root)
    (run, _) = plan_runs(cfg, data)
    assert run.train_idx.equal(data.train_mask.nonzero().flatten())


def test_resume_after_a_truncated_row(tmp_path, fake_root):
    out = tmp_path / "res"
    cfg = load_config(write_config(tmp_path / "c.yaml", fake_root, out))
    run_experiment(cfg, progress=False)
    first = rows(out)
    # an interrupted write: first row intact, second cut in the middle
    text = json.dumps(first[0]) + "\n" + json.dumps(first[1])[:40]
    (out / "runs.jsonl").write_text(text)
    (out / "summary.json").unlink()
    summary = run_experiment(cfg, progress=False)
    again = rows(out)
    assert len(again) == 2 and again[0] == first[0]
    assert summary["complete"] is True


def test_a_different_config_is_refused(tmp_path, fake_root, capsys):
    out = tmp_path / "res"
    cfg = write_config(tmp_path / "c.yaml", fake_root, out)
    assert main(["-q", "run", str(cfg)]) == 0
    assert main(["-q", "run", str(cfg), "train.lr=0.5"]) == 2
    err = capsys.readouterr().err
    assert "holds results of a different config" in err and "train.lr" in err
    with pytest.raises(ResultsFolderError, match="model.layer_num: 2 -> 4"):
        run_experiment(load_config(cfg, ["model.layer_num=4"]), progress=False)
    assert len(rows(out)) == 2


def test_growing_the_protocol_keeps_finished_runs(tmp_path, fake_root):
    out = tmp_path / "res"
    cfg = write_config(tmp_path / "c.yaml", fake_root, out, split={"num_inits": 1})
    run_experiment(load_config(cfg), progress=False)
    first = rows(out)
    summary = run_experiment(load_config(cfg, ["split.num_inits=2"]), progress=False)
    grown = rows(out)
    assert len(grown) == 2 and grown[0] == first[0]
    assert summary["n_runs"] == 2 and summary["complete"] is True


def test_resume_after_kill(tmp_path, fake_root):
    """Kill a run mid-way, rerun: every run once, finished ones untouched."""
    out = tmp_path / "res"
    cfg = write_config(
        tmp_path / "c.yaml",
        fake_root,
        out,
        model={"name": "mlp", "hidden_channels": 16},
        split={"num_inits": 4},
        train={"max_epochs": 40, "patience": 40, "batch_members": 1},
    )
    cmd = [sys.executable, "-m", "diffresnet_pyg.cli", "-q", "run", str(cfg)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    runs_file = out / "runs.jsonl"
    while time.monotonic() < deadline and proc.poll() is None:
        if runs_file.exists() and runs_file.read_text().count("\n") >= 1:
            break
        time.sleep(0.05)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert runs_file.exists(), proc.stderr.read().decode()[-2000:]
    before = rows(out)
    assert 1 <= len(before) < 4, "the kill should land between the first and last run"
    assert not (out / "summary.json").exists()
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    after = rows(out)
    keys = [(r["split"], r["init"]) for r in after]
    assert sorted(keys) == [(0, i) for i in range(4)]
    assert after[: len(before)] == before
    assert json.loads((out / "summary.json").read_text())["complete"] is True


def test_cli_sweep_writes_table_and_plot(tmp_path, fake_root, capsys):
    out = tmp_path / "sweep"
    cfg = write_config(
        tmp_path / "s.yaml",
        fake_root,
        out,
        split={"num_inits": 1},
        train={"max_epochs": 2},
        sweep={
            "axis": "depth",
            "values": [1, 2],
            "methods": [
                {"label": "Diff-ResNet", "key": "model.layer_num"},
                {
                    "label": "GCN",
                    "key": "model.num_layers",
                    "overrides": {"model": {"name": "gcn"}},
                },
            ],
        },
    )
    assert main(["-q", "run", str(cfg)]) == 2
    assert "use 'diffresnet-pyg sweep" in capsys.readouterr().err
    assert main(["-q", "sweep", str(cfg)]) == 0
    table = (out / "sweep.md").read_text()
    assert "Diff-ResNet" in table and "GCN" in table
    assert (out / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    gcn = yaml.safe_load((out / "gcn" / "depth_2" / "config.yaml").read_text())
    assert gcn["model"]["name"] == "gcn" and gcn["model"]["num_layers"] == 2
    assert len(rows(out / "diff-resnet" / "depth_1")) == 1
    assert main(["-q", "report", str(out)]) == 0


def test_cli_errors_are_clear(tmp_path, capsys):
    assert main(["-q", "run", str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("output: o\ndataset: {name: cora}\nmodel: {name: gcn, depth: 3}\n")
    assert main(["-q", "run", str(bad)]) == 2
    assert "model.depth" in capsys.readouterr().err


def test_an_edited_sweep_keeps_the_points_it_did_not_change(tmp_path, fake_root):
    from diffresnet_pyg.experiments.runner import run_sweep
    from diffresnet_pyg.experiments.schema import config_from_dict

    def sweep(gcn_dropout):
        return config_from_dict(
            {
                "output": str(tmp_path / "sweep"),
                "dataset": {"name": "cora", "root": str(fake_root)},
                "split": {"num_splits": 1, "num_inits": 1},
                "model": {"name": "mlp", "hidden_channels": 8},
                "train": {"max_epochs": 2, "batch_members": 1},
                "sweep": {
                    "axis": "depth",
                    "values": [2],
                    "methods": [
                        {"label": "MLP", "key": "model.num_layers"},
                        {
                            "label": "GCN",
                            "key": "model.num_layers",
                            "overrides": {
                                "model": {
                                    "name": "gcn",
                                    "hidden_channels": 8,
                                    "dropout": gcn_dropout,
                                }
                            },
                        },
                    ],
                },
            }
        )

    run_sweep(sweep(0.5), progress=False)
    mlp_rows = (tmp_path / "sweep/mlp/depth_2/runs.jsonl").read_text()
    with pytest.raises(ResultsFolderError, match="model.dropout"):
        run_sweep(sweep(0.3), progress=False)  # the GCN points hold dropout 0.5
    import shutil

    shutil.rmtree(tmp_path / "sweep" / "gcn")
    run_sweep(sweep(0.3), progress=False)
    point = tmp_path / "sweep" / "mlp" / "depth_2"
    assert (point / "runs.jsonl").read_text() == mlp_rows
    gcn_config = (tmp_path / "sweep" / "gcn" / "depth_2" / "config.yaml").read_text()
    assert "dropout: 0.3" in gcn_config


@pytest.mark.parametrize("model", ["gat", "gcn"])
def test_a_last_chunk_of_one_run_gets_dense_features(tmp_path, fake_root, model):
    # 3 runs, 2 at a time: the second chunk holds a single, unbatched model,
    # which takes dense features even when batches take sparse ones.
    from diffresnet_pyg.experiments.runner import run_experiment
    from diffresnet_pyg.experiments.schema import config_from_dict

    cfg = config_from_dict(
        {
            "output": str(tmp_path / model),
            "dataset": {"name": "cora", "root": str(fake_root)},
            "split": {"num_splits": 1, "num_inits": 3},
            "model": {"name": model, "hidden_channels": 8},
            "train": {"max_epochs": 2, "batch_members": 2, "sparse_features": True},
        }
    )
    summary = run_experiment(cfg, progress=False)
    assert summary["n_runs"] == 3


@pytest.mark.parametrize("batch_members", [1, 2])
def test_representation_metrics_are_the_measures_of_the_tested_output(
    tmp_path, fake_root, batch_members
):
    """Each row's metrics are those of its model's output, batched or alone."""
    import torch

    from diffresnet_pyg.experiments.models import build_members
    from diffresnet_pyg.experiments.runner import fit_chunk, input_features
    from diffresnet_pyg.metrics import representation_metrics

    out = tmp_path / "res"
    model = {"name": "gcn", "num_layers": 3, "dropout": 0.0}
    cfg = write_config(
        tmp_path / "c.yaml",
        fake_root,
        out,
        model=model,
        train={"batch_members": batch_members, "representation_metrics": True},
    )
    config = load_config(cfg)
    run_experiment(config, progress=False)
    got = {r["init"]: r["metrics"] for r in rows(out)}
    assert set(got) == {0, 1}
    assert set(got[0]) == {
        "dirichlet_energy",
        "dirichlet_energy_sym",
        "mad",
        "mad_neighbors",
        "distance_diameter_ratio",
    }
    # the same run trained alone, its output measured directly
    data = load_dataset("cora", fake_root)
    run = plan_runs(config, data)[0]
    single = build_members(
        config.model, data.num_features, int(data.y.max()) + 1, [run.init_seed]
    )
    x = input_features(config, data, batched=False)
    seen = {}

    def on_finish(_member, _result):
        single.eval()
        with torch.no_grad():
            seen["out"] = single(x, data.edge_index)[:, 0]

    fit_chunk(
        config,
        single,
        x,
        data.edge_index,
        data.y,
        [run],
        on_epoch=None,
        on_finish=on_finish,
    )
    direct = representation_metrics(seen["out"], data.edge_index, data.y)
    for key, value in direct.items():
        assert got[0][key] == pytest.approx(value, rel=1e-4), key


def test_representation_metrics_do_not_change_the_fingerprint_or_old_configs():
    from diffresnet_pyg.experiments.schema import config_to_dict, fingerprint

    raw = {"output": "o", "dataset": {"name": "cora"}, "model": {"name": "gcn"}}
    plain = config_from_dict(raw)
    measured = config_from_dict({**raw, "train": {"representation_metrics": True}})
    assert fingerprint(plain) == fingerprint(measured)
    assert "representation_metrics" not in config_to_dict(plain)["train"]
    assert config_to_dict(measured)["train"]["representation_metrics"] is True
