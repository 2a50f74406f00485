"""Smoke test of benchmarks/knn_build.py in --quick mode (2,000 images)."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "knn_build.py"


def load_script():
    spec = importlib.util.spec_from_file_location("knn_build", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def have_fashion_mnist() -> bool:
    """The four IDX files in one of the folders ``load_fashion_mnist`` searches."""
    from diffresnet_pyg.data.root import resolve_root
    from diffresnet_pyg.fewshot.images import FASHION_MNIST_SYSTEM_ROOT

    stems = [
        f"{split}-{kind}-idx{dim}-ubyte"
        for split in ("train", "t10k")
        for kind, dim in (("images", 3), ("labels", 1))
    ]
    for folder in (FASHION_MNIST_SYSTEM_ROOT, resolve_root(None) / "fashion-mnist"):
        if all(
            (folder / stem).is_file() or (folder / f"{stem}.gz").is_file()
            for stem in stems
        ):
            return True
    return False


def have_faiss() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def can_reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
    except OSError:
        return False
    return True


@pytest.mark.skipif(not have_fashion_mnist(), reason="Fashion-MNIST files absent")
@pytest.mark.skipif(not can_reset_peak(), reason="needs /proc/self/clear_refs")
def test_quick_benchmark(tmp_path, capsys):
    backends = ["torch", "faiss"] if have_faiss() else ["torch"]
    out = tmp_path / "knn.json"
    threads = torch.get_num_threads()
    try:
        load_script().main(
            [
                "--quick",
                "--features",
                "pca50",
                "--backends",
                *backends,
                "--threads",
                "1",
                "--sample",
                "100",
                "--isolation",
                "none",
                "--json",
                str(out),
            ]
        )
    finally:
        torch.set_num_threads(threads)
    stdout = capsys.readouterr().out
    assert "Fashion-MNIST: 2000 images" in stdout
    assert "pca50 (50-d)" in stdout
    report = json.loads(out.read_text())
    assert report["num_nodes"] == 2000 and report["k"] == 10
    builds = report["features"]["pca50"]["builds"]
    assert list(builds) == backends
    for name, row in builds.items():
        assert row["seconds"] > 0
        assert row["peak_extra_mib"] >= 0
        # every sampled list is an exact 10-NN list (checked in float64)
        assert row["sample_valid_fraction"] == 1.0, name
        # lists that differ from torch's differ only among equal distances
        assert row.get("differing_both_valid", 0) == row["differing_nodes"], name
    assert builds["torch"]["identical_fraction"] == 1.0


def test_compare_explains_ties_and_flags_misses():
    # 1-D integer points 0, 1, 2, 3, 10: node 1 has two nearest neighbours at
    # distance 1 (0 and 2); k = 1.
    module = load_script()
    points = np.array([[0], [1], [2], [3], [10]], dtype=np.uint8)
    reference = np.array([[1], [0], [1], [2], [3]])
    tie = np.array([[1], [2], [1], [2], [3]])  # node 1 picks 2: a tie
    miss = np.array([[1], [0], [1], [2], [0]])  # node 4 picks 0: a miss
    report = module.compare(
        points, True, {"torch": reference, "tie": tie, "miss": miss}, 1, 5
    )
    assert report["torch"]["identical_fraction"] == 1.0
    assert report["tie"]["differing_nodes"] == 1
    assert report["tie"]["differing_both_valid"] == 1
    assert report["tie"]["sample_valid_fraction"] == 1.0
    assert report["miss"]["differing_nodes"] == 1
    assert report["miss"]["differing_both_valid"] == 0
    assert report["miss"]["differing_valid"] == 0
    assert report["miss"]["differing_reference_valid"] == 1
    assert report["tie"]["differing_valid"] == 1
    assert report["miss"]["sample_valid_fraction"] == 0.8
    # listed distance 10 vs true 7: relative excess 3/7
    assert report["miss"]["sample_max_excess"] == pytest.approx(3 / 7)


def test_pca_projection_matches_svd():
    module = load_script()
    gen = np.random.default_rng(0)
    x = gen.normal(size=(60, 8)).astype(np.float32) * np.arange(1, 9)
    z = module.pca_projection(x, 3)
    centred = x.astype(np.float64) - x.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    expected = centred @ vt[:3].T
    # same axes up to sign
    signs = np.sign((z * expected).sum(axis=0))
    np.testing.assert_allclose(z, expected * signs, rtol=1e-5, atol=1e-5)
    assert z.dtype == np.float32


def test_rejects_unknown_backend(capsys):
    with pytest.raises(SystemExit):
        load_script().main(["--quick", "--backends", "torch", "annoy"])
    err = capsys.readouterr().err
    assert "--backends: unknown ['annoy']" in err
    assert "allowed: torch, torch_cluster, pyg_lib, faiss" in err
