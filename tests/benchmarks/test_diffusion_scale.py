"""Smoke test of benchmarks/diffusion_scale.py in --quick mode (tiny SBM graphs)."""

import csv
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "diffusion_scale.py"
RATIO = re.compile(
    r"ratio \[(\w+) F=(\d+) (forward|forward_backward)\] "
    r"ours/sparse_mm ([\d.e+-]+)  ours/appnp_csr ([\d.e+-]+)  "
    r"ours/appnp_edge_index ([\d.e+-]+)  \(<= 1.1x: (yes|no)\)"
)


def load_script():
    spec = importlib.util.spec_from_file_location("diffusion_scale", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["diffusion_scale"] = module
    spec.loader.exec_module(module)
    return module


def test_quick_run(tmp_path):
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--output", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    # 2 graphs x 1 channel count x 2 modes, every baseline timed
    ratios = RATIO.findall(out)
    assert {(g, m) for g, _, m, *_ in ratios} == {
        (g, m)
        for g in ("sbm_1000", "sbm_3000")
        for m in ("forward", "forward_backward")
    }
    for *_, r1, r2, r3, _ in ratios:
        assert all(float(r) > 0 for r in (r1, r2, r3)), out
    assert out.count("outputs agree: True (max rel. diff") == 2
    assert "all outputs agree: True" in out
    assert "log-log slope of s/step vs nnz*F [ours forward]" in out
    assert re.search(r"bandwidth \[sbm_3000 F=8\] ours [\d.]+-[\d.]+ GB/s", out)

    with open(tmp_path / "timing.csv") as f:
        timing = list(csv.DictReader(f))
    assert len(timing) == 2 * 4 * 2  # graphs x methods x modes
    assert all(float(r["median_s_per_step"]) > 0 for r in timing), timing
    with open(tmp_path / "agreement.csv") as f:
        agreement = list(csv.DictReader(f))
    assert len(agreement) == 2 * 3 * 2
    assert all(r["agree"] == "True" for r in agreement), agreement
    with open(tmp_path / "backward_memory.csv") as f:
        backward = list(csv.DictReader(f))
    statuses = {(r["mode"], int(r["steps"])): r["status"] for r in backward}
    assert statuses[("ours, no dropout", 4)] == "measured"
    assert statuses[("naive autograd, dropout 0.25", 4)] == "extrapolated"
    for name in (
        "summary.md",
        "config.json",
        "time_vs_edges.png",
        "memory_vs_edges.png",
        "ratios.png",
        "backward_memory.png",
    ):
        assert (tmp_path / name).stat().st_size > 0

    # the summary is a function of the result rows alone
    summary = (tmp_path / "summary.md").read_text()
    (tmp_path / "summary.md").unlink()
    assert load_script().main(["--from-results", "--output", str(tmp_path)]) == 0
    assert (tmp_path / "summary.md").read_text() == summary


@pytest.mark.parametrize(
    "argv, match",
    [
        (["--channels", "0"], "--channels/--backward-channels must be >= 1"),
        (["--sizes", "50"], "must be >= 10 \\* --blocks"),
        (["--dropout", "1.0"], "--dropout must be in \\[0, 1\\)"),
        (["--device", "tpu"], "--device must be cpu or cuda"),
        (["--no-sweep", "--no-backward"], "nothing to run"),
    ],
)
def test_invalid_arguments(argv, match, capsys):
    module = load_script()
    with pytest.raises(SystemExit) as error:
        module.parse_args(argv)
    assert error.value.code == 2
    assert re.search(match, capsys.readouterr().err)


def test_step_bytes_model():
    module = load_script()
    # 3 nodes, 5 non-zeros, 2 channels: operator 5 * 12 + 4 * 8 bytes
    low, high = module.step_bytes(nnz=5, n=3, f=2)
    assert low == 5 * 12 + 4 * 8 + 3 * 2 * 4 + 3 * 2 * 4
    assert high == 5 * 12 + 4 * 8 + 5 * 2 * 4 + 3 * 2 * 4
