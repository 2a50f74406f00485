import json

import numpy as np
import pytest
import torch
import yaml

from diffresnet_pyg.cli import main
from diffresnet_pyg.experiments.fewshot_config import fewshot_config_from_dict
from diffresnet_pyg.experiments.fewshot_runner import (
    EPISODES_FILE,
    run_fewshot,
    summarize_fewshot,
)
from diffresnet_pyg.experiments.runner import ResultsFolderError
from diffresnet_pyg.fewshot.features import ClassFeatures, save_feature_file


def _write_features(path, num_classes, per_class, dim, seed, spread=3.0):
    gen = torch.Generator().manual_seed(seed)
    centers = torch.randn(num_classes, 1, dim, generator=gen) * spread
    x = centers + torch.randn(num_classes, per_class, dim, generator=gen)
    save_feature_file(path, ClassFeatures.from_tensor(x.double()))


@pytest.fixture
def feature_files(tmp_path):
    paths = {k: tmp_path / f"{k}.npz" for k in ("test", "val", "base")}
    _write_features(paths["test"], 8, 12, 6, seed=0)
    _write_features(paths["val"], 6, 12, 6, seed=1)
    _write_features(paths["base"], 10, 12, 6, seed=2)
    return paths


def _raw(paths, output, **episodes):
    return {
        "task": "fewshot",
        "name": "tiny",
        "output": str(output),
        "features": {
            "source": "file",
            "path": str(paths["test"]),
            "val_path": str(paths["val"]),
            "base_path": str(paths["base"]),
        },
        "episodes": {
            "way": 3,
            "shot": 2,
            "query": 4,
            "num_episodes": 7,
            "seed": 5,
            "chunk_size": 3,
            **episodes,
        },
        "methods": [
            {"label": "NP", "name": "nearest_prototype"},
            {"label": "LS", "name": "laplacian_shot"},
            {
                "label": "Diff-ResNet",
                "name": "episode_net",
                "layer_num": 2,
                "epochs": 4,
                "milestones": [2, 3],
                "n_top": 4,
                "sigma": 3,
            },
        ],
    }


def _rows(folder):
    return [
        json.loads(line) for line in (folder / EPISODES_FILE).read_text().splitlines()
    ]


def test_every_method_scores_every_episode(tmp_path, feature_files):
    out = tmp_path / "out"
    summary = run_fewshot(
        fewshot_config_from_dict(_raw(feature_files, out)), progress=False
    )
    rows = _rows(out)
    assert len(rows) == 3 * 7
    for label in ("NP", "LS", "Diff-ResNet"):
        accs = [r["acc"] for r in rows if r["method"] == label]
        assert sorted(r["episode"] for r in rows if r["method"] == label) == list(
            range(7)
        )
        m = next(m for m in summary["methods"] if m["label"] == label)
        assert m["episodes"] == 7
        assert m["acc"] == pytest.approx(np.mean(accs))
        assert m["ci95"] == pytest.approx(1.96 * np.std(accs) / np.sqrt(7))
        # 12 queries per episode: accuracies are multiples of 100 / 12
        assert all(abs(a * 12 / 100 - round(a * 12 / 100)) < 1e-9 for a in accs)
    assert (out / "summary.md").read_text().count("| NP |") == 1


def test_results_do_not_depend_on_chunk_size(tmp_path, feature_files):
    a = run_fewshot(
        fewshot_config_from_dict(_raw(feature_files, tmp_path / "a")), progress=False
    )
    b = run_fewshot(
        fewshot_config_from_dict(_raw(feature_files, tmp_path / "b", chunk_size=7)),
        progress=False,
    )
    key = {(r["method"], r["episode"]): r["acc"] for r in _rows(tmp_path / "a")}
    for r in _rows(tmp_path / "b"):
        assert key[(r["method"], r["episode"])] == pytest.approx(r["acc"])
    assert [m["acc"] for m in a["methods"]] == pytest.approx(
        [m["acc"] for m in b["methods"]]
    )


def test_resume_after_interruption_keeps_rows_and_adds_none_twice(
    tmp_path, feature_files
):
    out = tmp_path / "out"
    cfg = fewshot_config_from_dict(_raw(feature_files, out))
    run_fewshot(cfg, progress=False)
    full = _rows(out)
    # An interrupted run: only the first 8 rows, the last one cut mid-line.
    lines = (out / EPISODES_FILE).read_text().splitlines()
    (out / EPISODES_FILE).write_text("\n".join(lines[:8]) + "\n" + lines[8][:10])
    (out / "summary.json").unlink()
    with pytest.raises(ValueError, match="rerun the config"):
        summarize_fewshot(out)
    run_fewshot(cfg, progress=False)
    again = _rows(out)
    assert len(again) == len(full)
    assert len({(r["method"], r["episode"]) for r in again}) == len(full)
    assert again[:8] == full[:8]
    before = {(r["method"], r["episode"]): r["acc"] for r in full}
    for r in again:
        assert before[(r["method"], r["episode"])] == pytest.approx(r["acc"])


def test_a_folder_of_another_config_is_refused(tmp_path, feature_files):
    out = tmp_path / "out"
    run_fewshot(fewshot_config_from_dict(_raw(feature_files, out)), progress=False)
    with pytest.raises(ResultsFolderError, match="different config"):
        run_fewshot(
            fewshot_config_from_dict(_raw(feature_files, out, shot=1)), progress=False
        )


def test_validation_episodes_and_sweep_plot(tmp_path, feature_files):
    raw = _raw(feature_files, tmp_path / "val", classes="val", num_episodes=4)
    raw["sweep"] = {"method": "Diff-ResNet", "key": "layer_num", "values": [0, 3]}
    summary = run_fewshot(fewshot_config_from_dict(raw), progress=False)
    labels = [m["label"] for m in summary["methods"]]
    assert labels[-2:] == ["Diff-ResNet (layer_num=0)", "Diff-ResNet (layer_num=3)"]
    png = tmp_path / "val" / "sweep.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_fewshot_and_show(tmp_path, feature_files, capsys):
    path = tmp_path / "fs.yaml"
    path.write_text(yaml.safe_dump(_raw(feature_files, tmp_path / "cli")))
    assert main(["-q", "show", str(path), "episodes.num_episodes=2"]) == 0
    assert "num_episodes: 2" in capsys.readouterr().out
    assert main(["-q", "fewshot", str(path), "episodes.num_episodes=2"]) == 0
    out = capsys.readouterr().out
    assert "| Diff-ResNet |" in out and "| 2 |" in out
    assert main(["-q", "fewshot", str(path), "episodes.way=1"]) == 2
    assert "episodes.way" in capsys.readouterr().err
    assert main(["-q", "run", str(path)]) == 2
    assert "diffresnet-pyg fewshot" in capsys.readouterr().err
