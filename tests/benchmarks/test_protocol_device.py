"""benchmarks/protocol_device.py at a tiny size: CPU always, CUDA where available."""

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest
import torch

from diffresnet_pyg.experiments.results import RUNS_FILE, read_rows

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "protocol_device.py"
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("protocol_device", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["protocol_device"] = module
    spec.loader.exec_module(module)
    return module


def tiny(device, output):
    """One split, 2 inits batched, 2 epochs, 2 diffusion layers."""
    return [
        "--device",
        device,
        "--splits",
        "1",
        "--inits",
        "2",
        "--max-epochs",
        "2",
        "--output",
        str(output),
        "--progress",
        "none",
        "--set",
        "model.layer_num=2",
    ]


@pytest.mark.parametrize(
    "device", [pytest.param("cpu"), pytest.param("cuda", marks=CUDA)]
)
def test_tiny_protocol(script, tmp_path, capsys, device):
    out = tmp_path / "results"
    record = script.main(tiny(device, out))
    printed = capsys.readouterr().out
    rows = read_rows(out / RUNS_FILE)
    assert [(r["split"], r["init"]) for r in rows] == [(0, 0), (0, 1)]
    assert all(r["batch_members"] == 2 and r["epochs"] == 2 for r in rows)
    assert record["runs"] == 2 and record["device"] == device
    assert record["max_epochs"] == 2 and not record["protocol_epochs"]
    assert json.loads((out / script.RECORD_FILE).read_text()) == record
    lo, hi = record["test_acc_ci95"]
    # a t interval over 2 runs is wide and may leave [0, 100]
    assert lo <= record["test_acc_mean"] <= hi
    assert 0.0 <= record["test_acc_mean"] <= 100.0
    assert f"device {device} " in printed
    assert re.search(r"wall time: [\d.]+ s \(training [\d.]+ s\)", printed)
    assert re.search(r"runs/s: [\d.]+", printed)
    assert re.search(
        r"projected 100 x 20 protocol: [\d.]+ (s|min|h) \(wall per run x 2000; "
        r"max_epochs=2: not the protocol's epochs\)",
        printed,
    )
    assert re.search(r"test accuracy: [\d.]+ \+- [\d.]+ % \(95% CI", printed)
    assert "Sparse CSR tensor support is in beta state" not in printed


def test_refuses_a_folder_with_rows(script, tmp_path):
    (tmp_path / RUNS_FILE).write_text("{}\n")
    with pytest.raises(SystemExit, match="not empty"):
        script.main(tiny("cpu", tmp_path))


def test_overrides_and_projection(script, tmp_path):
    args = script.parse_args(["--device", "cpu", "--splits", "3"])
    assert args.inits == 20 and args.max_epochs is None
    assert script.overrides(args, tmp_path) == [
        f"output={tmp_path}",
        "train.device=cpu",
        "train.batch_members=20",
        "split.num_splits=3",
        "split.num_inits=20",
        "executor.kind=local",
    ]
    assert script.projected_seconds(30.0, 3, 20) == pytest.approx(1000.0)
    assert script.projected_seconds(30.0, 3, 4) == pytest.approx(5000.0)
    with pytest.raises(SystemExit):
        script.parse_args(["--inits", "0"])
