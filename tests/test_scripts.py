"""The example and benchmark scripts run end to end (tiny budgets).

They read the synthetic Cora-shaped file of ``fake_root`` (Cora's class sizes,
so the protocol prints Cora's seeds).
"""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(script: str, *args: str, data_root: Path) -> str:
    env = {**os.environ, "DIFFRESNET_PYG_DATA": str(data_root)}
    result = subprocess.run(
        [sys.executable, str(ROOT / script), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_cora_reference_example(fake_root):
    out = run(
        "examples/cora_reference.py",
        "--splits",
        "1",
        "--inits",
        "2",
        "--max-epochs",
        "3",
        data_root=fake_root,
    )
    assert "split 1 (seed 121958) init 1 (seed 711880)" in out
    assert "init 2 (seed 946634)" in out
    assert "mean test accuracy over 2 runs" in out


def test_epoch_benchmark(fake_root):
    out = run(
        "benchmarks/epoch_time_cora.py",
        "--epochs",
        "1",
        "--rounds",
        "1",
        "--profile",
        data_root=fake_root,
    )
    assert "same initial weights: True" in out
    assert "--- ours: top operators" in out
    assert "speed-up (authors / ours):" in out


def test_batched_training_benchmark(fake_root):
    out = run(
        "benchmarks/batched_training.py",
        "--runs",
        "2",
        "--epochs",
        "1",
        "--models",
        "gcn",
        "--root",
        str(fake_root),
        data_root=fake_root,
    )
    assert "gcn" in out and "projected 100 x 20 protocol" in out


def test_batched_members_benchmark(fake_root):
    out = run(
        "benchmarks/batched_members.py",
        "--members",
        "2",
        "--steps",
        "1",
        "--models",
        "gcn",
        "diffresnet",
        "--root",
        str(fake_root),
        data_root=fake_root,
    )
    assert "own streams" in out and "diffresnet" in out


def test_depth_study_figures(fake_root, tmp_path):
    """A tiny depth sweep with metrics, then the study's figures and tables."""
    import json

    import yaml

    from diffresnet_pyg.cli import main

    config = {
        "output": str(tmp_path / "cora"),
        "dataset": {"name": "cora", "root": str(fake_root)},
        "split": {"num_splits": 1, "num_inits": 2},
        "model": {"name": "diffresnet", "hidden_channels": 8},
        "train": {
            "max_epochs": 3,
            "batch_members": 2,
            "representation_metrics": True,
        },
        "sweep": {
            "axis": "depth",
            "values": [1, 2],
            "methods": [
                {"label": "GCN", "key": "model.num_layers",
                 "overrides": {"model": {"name": "gcn", "hidden_channels": 8}}},
                {"label": "Diff-ResNet", "key": "model.diffusion_steps"},
            ],
        },
    }  # fmt: skip
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["-q", "sweep", str(path)]) == 0
    row = json.loads(
        (tmp_path / "cora" / "gcn" / "depth_2" / "runs.jsonl")
        .read_text()
        .split("\n")[0]
    )
    assert row["metrics"]["dirichlet_energy"] >= 0.0
    out = run(
        "experiments/depth_sweep/figures.py",
        "--folder",
        str(tmp_path),
        data_root=fake_root,
    )
    table = (tmp_path / "table.md").read_text()
    assert "| GCN | " in table and "| Diff-ResNet | " in table
    assert "(2) |" in table  # run counts in the cells
    assert "not measured yet" in table  # depth 32 is not in this sweep
    assert out.startswith("### Cora")
    # the cost lines: the rows' training seconds, summed and projected
    seconds = [
        [json.loads(line)["seconds"] for line in f.read_text().splitlines()]
        for f in sorted((tmp_path / "cora").glob("*/depth_*/runs.jsonl"))
    ]
    spent = sum(map(sum, seconds)) / 3600
    full = sum(2000 * sum(s) / len(s) for s in seconds) / 3600
    assert f"Core-hours spent training these rows: {spent:.1f}. " in table
    assert f"the {len(seconds)} points with rows would take {full:,.0f} " in table
    for name in ("accuracy.png", "energy.png"):
        assert (tmp_path / name).stat().st_size > 0
