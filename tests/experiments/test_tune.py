import json
from pathlib import Path

import pytest
import yaml

from diffresnet_pyg.cli import main
from diffresnet_pyg.experiments.runner import run_experiment
from diffresnet_pyg.experiments.schema import (
    ConfigError,
    config_from_dict,
    load_config,
)
from diffresnet_pyg.experiments.schema.search import check_against, space_from_dict

optuna = pytest.importorskip("optuna")

SPACE = {
    "trials": 3,
    "seed": 0,
    "params": {
        "train.lr": {"float": [1.0e-3, 5.0e-2], "log": True},
        "model.dropout": {"choice": [0.0, 0.5]},
        "model.hidden_channels": {"int": [4, 8], "step": 4},
    },
}


def base_raw(root: Path, output: Path) -> dict:
    return {
        "name": "tiny",
        "output": str(output),
        "dataset": {"name": "cora", "root": str(root)},
        "split": {"num_splits": 1, "num_inits": 1},
        "model": {"name": "mlp", "hidden_channels": 8},
        "train": {"max_epochs": 3},
    }


def write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def tune_cli(tmp_path, fake_root, space=SPACE, *extra) -> tuple[int, Path]:
    cfg = write(tmp_path / "c.yaml", base_raw(fake_root, tmp_path / "res"))
    spc = write(tmp_path / "space.yaml", space)
    out = tmp_path / "tune"
    code = main(["-q", "tune", str(cfg), str(spc), *extra, "-o", str(out)])
    return code, out


def records(out: Path) -> list[dict]:
    return [
        json.loads(line) for line in (out / "trials.jsonl").read_text().splitlines()
    ]


@pytest.mark.parametrize(
    "params, message",
    [
        ({"model.dropout": {"beta": [0, 1]}}, "params.model.dropout.beta: unknown key"),
        ({"model.dropout": {"float": [0.5, 0.1]}}, "expected low < high"),
        ({"model.dropout": {"float": [0.1]}}, "two bounds"),
        ({"train.lr": {"float": [0.0, 0.1], "log": True}}, "log scale needs low > 0"),
        ({"model.num_layers": {"int": [1.5, 3]}}, "params.model.num_layers.int[0]"),
        ({"model.dropout": {"choice": []}}, "choice: must not be empty"),
        ({"model.dropout": {"choice": [0.1, 0.1]}}, "duplicate value"),
        ({"model.dropout": {"float": [0, 1], "choice": [1]}}, "exactly one of"),
        ({"train.lr": {"float": [0.1, 1], "log": True, "step": 0.1}}, "not allowed"),
        ({"output": {"choice": ["a", "b"]}}, "params.output: 'output' cannot be"),
        ({"sweep.values": {"choice": [1]}}, "'sweep' cannot be tuned"),
        ({"lr": {"float": [0.1, 1]}}, "params.lr: expected a dotted key"),
        ({}, "params: must not be empty"),
    ],
)
def test_space_validation_errors(params, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        space_from_dict({"params": params})


def test_space_top_level_errors():
    with pytest.raises(ConfigError, match="trial: unknown key"):
        space_from_dict({"trial": 3, "params": SPACE["params"]})
    with pytest.raises(ConfigError, match="sampler: expected one of 'tpe'"):
        space_from_dict({"sampler": "grid", "params": SPACE["params"]})
    with pytest.raises(ConfigError, match="params: required key is missing"):
        space_from_dict({"trials": 3})


def test_space_keys_are_checked_against_the_config(tmp_path, fake_root):
    config = config_from_dict(base_raw(fake_root, tmp_path))
    check_against(space_from_dict(SPACE), config)
    for params, message in [
        ({"model.step_size": {"float": [0.1, 1]}}, r"params.model.step_size: .*"),
        ({"model.dropout": {"float": [0.5, 1.0]}}, r"does not accept 1.0 .*dropout"),
        ({"train.bogus": {"int": [1, 2]}}, r"params.train.bogus: .*unknown key"),
    ]:
        with pytest.raises(ConfigError, match=message):
            check_against(space_from_dict({"params": params}), config)


def test_search_space_round_trips():
    from diffresnet_pyg.experiments.schema.search import space_to_dict

    space = space_from_dict(SPACE)
    assert space_from_dict(space_to_dict(space)) == space


def test_evaluate_test_false_keeps_the_rows_but_test_acc(tmp_path, fake_root):
    config = config_from_dict(base_raw(fake_root, tmp_path / "a"))
    assert run_experiment(config, progress=False) is not None
    blind = config_from_dict(base_raw(fake_root, tmp_path / "b"))
    assert run_experiment(blind, progress=False, evaluate_test=False) is None
    (seen,) = [
        json.loads(x) for x in (tmp_path / "a/runs.jsonl").read_text().splitlines()
    ]
    (row,) = [
        json.loads(x) for x in (tmp_path / "b/runs.jsonl").read_text().splitlines()
    ]
    assert "test_acc" not in row and not (tmp_path / "b/summary.json").exists()
    for key in ("seconds", "batch_seconds", "test_acc"):
        seen.pop(key), row.pop(key, None)
    assert row == seen


def test_tune_end_to_end_and_resume(tmp_path, fake_root, capsys):
    code, out = tune_cli(tmp_path, fake_root, {**SPACE, "trials": 2})
    assert code == 0
    first = records(out)
    assert [r["number"] for r in first] == [0, 1]
    # Asking for 3: the two finished trials are reused, one new trial runs.
    code, _ = tune_cli(tmp_path, fake_root)
    assert code == 0
    stdout = capsys.readouterr().out
    assert "3 trials (1 new)" in stdout
    trials = records(out)
    assert [r["number"] for r in trials] == [0, 1, 2]
    assert trials[:2] == first
    assert all(r["state"] == "complete" and r["n_runs"] == 1 for r in trials)
    assert all((out / r["folder"] / "runs.jsonl").is_file() for r in trials)
    # best.yaml: a runnable config with the best trial's params.
    best = max(trials, key=lambda r: r["value"])
    assert f"best trial {best['number']}" in stdout
    chosen = load_config(out / "best.yaml")
    assert chosen.sweep is None
    assert chosen.output == str(tmp_path / "res") + "-tuned"
    assert chosen.train.lr == best["params"]["train.lr"]
    for key in ("dropout", "hidden_channels"):
        assert chosen.model.params[key] == best["params"][f"model.{key}"]
    assert chosen.train.max_epochs == 3 and chosen.model.name == "mlp"
    # Test accuracy is never evaluated: nothing written or printed holds it.
    for path in out.rglob("*"):
        if path.is_file() and path.suffix != ".db":
            assert "test_acc" not in path.read_text(), path
        assert not path.name.startswith("summary")
    assert "test" not in stdout.replace(str(tmp_path), "").lower()
    study = optuna.load_study(
        study_name="diffresnet-pyg-tune", storage=f"sqlite:///{out / 'study.db'}"
    )
    for t in study.trials:
        assert not any("test" in key for key in t.user_attrs)
    # The same search in one go draws the same parameters.
    (tmp_path / "again").mkdir()
    code, again = tune_cli(tmp_path / "again", fake_root)
    assert code == 0
    assert [r["params"] for r in records(again)] == [r["params"] for r in trials]
    # A third run with enough trials runs nothing new.
    assert tune_cli(tmp_path, fake_root)[0] == 0
    assert "3 trials (0 new)" in capsys.readouterr().out


def test_a_killed_trial_resumes_its_folder(tmp_path, fake_root, capsys):
    code, out = tune_cli(tmp_path, fake_root, {**SPACE, "trials": 1})
    assert code == 0
    study = optuna.load_study(
        study_name="diffresnet-pyg-tune", storage=f"sqlite:///{out / 'study.db'}"
    )
    # A trial left running by a killed process, with its folder half done.
    params = {"train.lr": 0.01, "model.dropout": 0.5, "model.hidden_channels": 8}
    study.enqueue_trial(params)
    trial = study.ask()
    trial.suggest_float("train.lr", 1.0e-3, 5.0e-2, log=True)
    trial.suggest_categorical("model.dropout", [0.0, 0.5])
    trial.suggest_int("model.hidden_channels", 4, 8, step=4)
    trial.set_user_attr("folder", "trials/1")
    raw = base_raw(fake_root, out / "trials/1")
    raw["train"]["lr"] = 0.01
    raw["model"].update(dropout=0.5, hidden_channels=8)
    run_experiment(config_from_dict(raw), progress=False, evaluate_test=False)
    before = (out / "trials/1/runs.jsonl").read_text()
    code, _ = tune_cli(tmp_path, fake_root, {**SPACE, "trials": 2})
    assert code == 0
    trials = records(out)
    assert [r["state"] for r in trials] == ["complete", "fail", "complete"]
    assert trials[2]["folder"] == "trials/1" and trials[2]["rerun_of"] == 1
    assert trials[2]["params"] == params
    assert (out / "trials/1/runs.jsonl").read_text() == before  # nothing rerun
    assert not (out / "trials/2").exists()


def test_a_folder_of_another_space_or_config_is_refused(tmp_path, fake_root, capsys):
    code, out = tune_cli(tmp_path, fake_root, {**SPACE, "trials": 1})
    assert code == 0
    other = {**SPACE, "params": {"train.lr": {"float": [1.0e-3, 1.0e-1]}}}
    assert tune_cli(tmp_path, fake_root, other)[0] == 2
    err = capsys.readouterr().err
    assert err.startswith("diffresnet-pyg: error: ")
    assert "different config or space" in err and "space params" in err
    assert tune_cli(tmp_path, fake_root, SPACE, "train.max_epochs=4")[0] == 2
    assert "train.max_epochs: 3 -> 4" in capsys.readouterr().err
    cfg, spc = tmp_path / "c.yaml", tmp_path / "space.yaml"
    args = ["tune", str(cfg), str(spc), "-o", str(out), "train.lr=0.1"]
    assert main(args) == 2  # overrides after -o count too
    assert "train.lr: " in capsys.readouterr().err


def test_cli_errors(tmp_path, fake_root, capsys):
    bad = {**SPACE, "params": {"model.step_size": {"float": [0.1, 1.0]}}}
    assert tune_cli(tmp_path, fake_root, bad)[0] == 2
    err = capsys.readouterr().err
    assert err.startswith("diffresnet-pyg: error: params.model.step_size: ")
    assert not (tmp_path / "tune").exists()


def test_missing_optuna_is_a_clear_error(tmp_path, fake_root, capsys, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_optuna(name, *args, **kwargs):
        if name == "optuna" or name.startswith("optuna."):
            raise ImportError("No module named 'optuna'", name="optuna")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_optuna)
    assert tune_cli(tmp_path, fake_root)[0] == 2
    assert 'pip install -e ".[tune]"' in capsys.readouterr().err


def test_the_shipped_space_fits_the_diffresnet_config():
    from diffresnet_pyg.experiments.tune import load_space

    repo = Path(__file__).resolve().parents[2]
    space = load_space(repo / "configs" / "tune" / "diffresnet_space.yaml")
    check_against(space, load_config(repo / "configs" / "cora" / "diffresnet.yaml"))


def diffresnet_raw(root: Path, output: Path) -> dict:
    raw = base_raw(root, output)
    raw["model"] = {"name": "diffresnet", "hidden_channels": 8, "diffusion_steps": 2}
    return raw


def test_a_refused_setting_fails_its_trial_and_the_search_goes_on(tmp_path, fake_root):
    # step 5.0 is certainly unstable on the graph (step * max L_ii >= 2)
    space = {
        "trials": 2,
        "sampler": "random",
        "seed": 0,
        "params": {"model.step_size": {"choice": [0.25, 5.0]}},
    }
    cfg = write(tmp_path / "c.yaml", diffresnet_raw(fake_root, tmp_path / "res"))
    spc = write(tmp_path / "space.yaml", space)
    out = tmp_path / "tune"
    assert main(["-q", "tune", str(cfg), str(spc), "-o", str(out)]) == 0
    rows = records(out)
    done = [r for r in rows if r["state"] == "complete"]
    refused = [r for r in rows if r["state"] == "fail"]
    assert len(done) == 2
    assert all(r["params"]["model.step_size"] == 0.25 for r in done)
    assert refused and all(r["params"]["model.step_size"] == 5.0 for r in refused)
    assert all("unstable" in r["error"] for r in refused)


def test_a_search_whose_every_setting_is_refused_stops(tmp_path, fake_root, capsys):
    space = {
        "trials": 2,
        "sampler": "random",
        "params": {"model.step_size": {"choice": [5.0, 6.0]}},
    }
    cfg = write(tmp_path / "c.yaml", diffresnet_raw(fake_root, tmp_path / "res"))
    spc = write(tmp_path / "space.yaml", space)
    out = tmp_path / "tune"
    assert main(["-q", "tune", str(cfg), str(spc), "-o", str(out)]) == 2
    assert "params: 10 trials in a row were refused" in capsys.readouterr().err
    assert len(records(out)) == 10
