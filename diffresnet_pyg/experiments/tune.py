"""Hyperparameter search on validation accuracy (``diffresnet-pyg tune``).

A search space (:mod:`~diffresnet_pyg.experiments.schema.search`) names
dotted config keys and the distributions they are drawn from. Each *trial*
is the base config with one draw of them, run by the project's runner
(:func:`~diffresnet_pyg.experiments.runner.run_experiment`: every (split,
init) of the config, on the config's ``executor``) into its own results
folder; its objective is the mean validation accuracy of its runs
(``metric: val_acc``, maximized; ``metric: val_loss`` minimizes the mean
validation loss instead).

The tune folder (``-o``; default ``<config output>-tune``) holds:

* ``tune.yaml``: the base config and the search space, both resolved; a
  rerun with another config (other than its name, output, data location,
  batch size, device or executor) or another space (other than ``trials``)
  is refused;
* ``study.db``: the Optuna study (SQLite);
* ``trials/<n>/``: each trial's results folder (``config.yaml``,
  ``runs.jsonl``);
* ``trials.jsonl`` and ``trials.md``: the search record, one entry per trial
  (number, state, params, mean and std of validation accuracy (%) and loss,
  runs, seconds, folder), rewritten after every trial;
* ``best.yaml``: the best trial's config, complete and runnable
  (``diffresnet-pyg run best.yaml``), its ``output`` the base config's output
  with ``-tuned`` appended, so that its test results land outside the tune
  folder.

**Test accuracy is never seen.** Trials run with ``evaluate_test=False``: the
runner never evaluates a model on its test nodes, so no test accuracy exists
to leak, rather than being computed and then stripped (a stripped value can
still reach a log, a summary or a killed run's leftovers). The trials' rows
have no ``test_acc`` key, no trial writes a summary, and nothing in the tune
folder or the printed summary holds a test accuracy. The test accuracy of the
chosen config is read once, by running ``best.yaml``.

**Resuming.** Rerunning the command continues the study to ``trials``
finished trials in all; finished trials are reused as they are. A trial that
was killed (still "running" in the study when the command starts: one tune
process per folder) is marked failed and its parameters are queued again
*with its results folder*, so the rerun trains only the runs missing from its
``runs.jsonl``. A trial whose setting is refused for the data (a
``ValueError`` while training, e.g. a step size that is unstable on this
graph) is marked failed with the reason (``error`` in the record) and the
search goes on, until :data:`MAX_REFUSED_IN_A_ROW` trials in a row are
refused; any other error stops the search. The sampler is seeded per trial with
``seed + trial number``, so a search interrupted between trials draws the
same parameters as one run in one go.

**Why Optuna, not Ray Tune.** Optuna is pure Python (an ``optuna`` wheel and
SQLAlchemy; no compiler), its TPE sampler is the standard sequential
model-based search for a few dozen trials, and its studies live in a storage
that survives the process, which makes resuming a matter of reopening the
study. Each trial is already parallel where it matters, over its (split,
init) runs, through the config's ``executor`` (Ray included), so a second
scheduler on top (Ray Tune's) would add a heavy dependency and its own
checkpoint layout for nothing. The storage is SQLite through
:class:`optuna.storages.RDBStorage`: every update is a transaction, so a kill
leaves the last committed state, and its locks die with the process, while
the journal file storage's lock file can outlive a killed process.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from tqdm.auto import tqdm

from diffresnet_pyg.experiments.progress import Eta, Progress, progress_mode
from diffresnet_pyg.experiments.report.formatting import format_over_runs
from diffresnet_pyg.experiments.results import (
    LOCK_FILE,
    RUNS_FILE,
    ResultsFolderError,
    folder_lock_scope,
    lock_folder,
    read_rows,
    unique_rows,
    write_atomic,
)
from diffresnet_pyg.experiments.runner import run_experiment
from diffresnet_pyg.experiments.schema import (
    ConfigError,
    ExperimentConfig,
    config_from_dict,
    config_to_dict,
    fingerprint,
    merge,
    read_yaml,
    read_yaml_file,
)
from diffresnet_pyg.experiments.schema.search import (
    SearchSpace,
    check_against,
    nested,
    space_from_dict,
    space_to_dict,
)

__all__ = [
    "BEST_FILE",
    "STUDY_FILE",
    "STUDY_NAME",
    "TRIALS_DIR",
    "TRIALS_JSONL",
    "TRIALS_MD",
    "TUNE_FILE",
    "TuneResult",
    "default_output",
    "load_space",
    "tune",
]

logger = logging.getLogger(__name__)

#: The base config and the space a tune folder was made for.
TUNE_FILE = "tune.yaml"
#: The Optuna study (SQLite).
STUDY_FILE = "study.db"
#: The study's name in :data:`STUDY_FILE`.
STUDY_NAME = "diffresnet-pyg-tune"
#: The folder of the trials' results folders.
TRIALS_DIR = "trials"
#: The search record: one JSON line per trial, and the same as a table.
TRIALS_JSONL = "trials.jsonl"
TRIALS_MD = "trials.md"
#: The best trial's config.
BEST_FILE = "best.yaml"
#: Trials refused in a row (``ValueError``) before the search gives up.
MAX_REFUSED_IN_A_ROW = 10

_INSTALL_HINT = 'pip install -e ".[tune]"'


def _optuna() -> Any:
    """The :mod:`optuna` module, or an :class:`ImportError` saying how to get it."""
    try:
        import optuna
    except ImportError as exc:
        raise ImportError(
            f"diffresnet-pyg tune needs Optuna; install it with {_INSTALL_HINT} "
            "(or pip install optuna)",
            name="optuna",
        ) from exc
    return optuna


@dataclass(frozen=True)
class TuneResult:
    """The outcome of :func:`tune`.

    Attributes:
        folder: The tune folder.
        metric: ``"val_acc"`` or ``"val_loss"``.
        best_number: The best trial's number.
        best_params: Its parameters (dotted key -> value).
        best_value: Its objective (mean validation accuracy in %, or loss).
        best_record: Its entry of ``trials.jsonl``.
        new_trials: Trials finished by this call.
        finished: Finished trials in all.
        best_config: The path of ``best.yaml``.
    """

    folder: Path
    metric: str
    best_number: int
    best_params: dict[str, Any]
    best_value: float
    best_record: dict[str, Any]
    new_trials: int
    finished: int
    best_config: Path


def load_space(path: str | os.PathLike[str]) -> SearchSpace:
    """Read and validate a ``SPACE.yaml`` file.

    Raises:
        ConfigError: If the file is missing, not YAML or not a valid space.
    """
    return space_from_dict(read_yaml(path))


def default_output(config: ExperimentConfig) -> str:
    """The default tune folder: the config's output with ``-tune`` appended."""
    return config.output.rstrip("/\\") + "-tune"


def _tuned_output(config: ExperimentConfig) -> str:
    return config.output.rstrip("/\\") + "-tuned"


def _claim(folder: Path, config: ExperimentConfig, space: SearchSpace) -> None:
    """Create the tune folder, or check it was made for this config and space."""
    path = folder / TUNE_FILE
    if path.exists():
        try:
            old = read_yaml_file(path, aliases=True)
            old_config = config_from_dict(old["config"])
            old_space = space_from_dict(old["space"])
        except Exception as exc:  # noqa: BLE001 - any unreadable record refuses
            raise ResultsFolderError(
                f"{folder} holds a {TUNE_FILE} that cannot be read ({exc}); "
                "choose another output folder or remove it"
            ) from exc
        diff = []
        if fingerprint(old_config) != fingerprint(config):
            old_d, new_d = config_to_dict(old_config), config_to_dict(config)
            diff += [
                f"{section}.{key}: {old_d[section].get(key)!r} -> {value!r}"
                for section in ("dataset", "split", "model", "train")
                for key, value in (new_d[section] or {}).items()
                if (old_d[section] or {}).get(key) != value
            ] or ["the config differs"]
        old_s = {**space_to_dict(old_space), "trials": None}
        new_s = {**space_to_dict(space), "trials": None}
        diff += [
            f"space {key}: {old_s[key]!r} -> {new_s[key]!r}"
            for key in new_s
            if old_s[key] != new_s[key]
        ]
        if diff:
            raise ResultsFolderError(
                f"{folder} holds a search of a different config or space "
                f"({'; '.join(diff)}). Use another output folder (-o), or "
                "delete this one to start over"
            )
    elif folder.is_dir() and any(p.name != LOCK_FILE for p in folder.iterdir()):
        raise ResultsFolderError(
            f"{folder} is not empty and holds no {TUNE_FILE}: not a tune folder; "
            "choose another output folder (-o)"
        )
    lock_folder(folder)
    record = {"config": config_to_dict(config), "space": space_to_dict(space)}
    write_atomic(path, yaml.safe_dump(record, sort_keys=False))


def _sampler(optuna: Any, space: SearchSpace, number: int) -> Any:
    seed = space.seed + number
    if space.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def _suggest(trial: Any, space: SearchSpace) -> dict[str, Any]:
    params = {}
    for key, d in space.params.items():
        if d.kind == "choice":
            params[key] = trial.suggest_categorical(key, list(d.choices))
        elif d.kind == "int":
            params[key] = trial.suggest_int(
                key, d.low, d.high, step=d.step or 1, log=d.log
            )
        else:
            params[key] = trial.suggest_float(
                key, d.low, d.high, step=d.step, log=d.log
            )
    return params


def _trial_config(
    config: ExperimentConfig, params: dict[str, Any], output: str
) -> ExperimentConfig:
    raw = merge(config_to_dict(config), nested(params))
    raw["output"] = output
    return config_from_dict(raw)


def _mean_std(values: Sequence[float], scale: float = 1.0) -> dict[str, float]:
    x = scale * np.asarray(values, dtype=np.float64)
    return {"mean": float(x.mean()), "std": float(x.std(ddof=0))}


def _requeue_killed(optuna: Any, study: Any) -> None:
    """Fail the trials a killed process left running; queue their params again."""
    running = study.get_trials(
        deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)
    )
    for t in running:
        study.tell(t.number, state=optuna.trial.TrialState.FAIL)
        folder = t.user_attrs.get("folder")
        if folder is None:  # killed before its runs started: nothing to resume
            logger.info("trial %d was interrupted before it started", t.number)
            continue
        logger.info("trial %d was interrupted; its %s is resumed", t.number, folder)
        study.enqueue_trial(
            t.params, user_attrs={"folder": folder, "rerun_of": t.number}
        )


def _params(t: Any, space: SearchSpace) -> dict[str, Any]:
    """A trial's parameters in the order of the space (Optuna sorts them)."""
    return {key: t.params[key] for key in space.params if key in t.params}


def _record(t: Any, space: SearchSpace) -> dict[str, Any]:
    attrs = t.user_attrs
    return {
        "number": t.number,
        "state": t.state.name.lower(),
        "params": _params(t, space),
        "value": t.value,
        "val_acc": attrs.get("val_acc"),
        "val_loss": attrs.get("val_loss"),
        "n_runs": attrs.get("n_runs"),
        "seconds": attrs.get("seconds"),
        "folder": attrs.get("folder"),
        "rerun_of": attrs.get("rerun_of"),
        "error": attrs.get("error"),
    }


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _markdown(records: Sequence[dict[str, Any]], space: SearchSpace) -> str:
    keys = list(space.params)
    head = ["trial", "state", *keys, "val acc (%)", "val loss", "runs", "seconds"]
    lines = [
        f"# Search on validation ({space.metric}, {space.sampler}, seed {space.seed})",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for r in records:
        acc, loss = r["val_acc"], r["val_loss"]
        cells = [
            str(r["number"]),
            r["state"],
            *(_format(r["params"].get(k, "")) for k in keys),
            "" if acc is None else f"{acc['mean']:.2f} ± {acc['std']:.2f}",
            "" if loss is None else f"{loss['mean']:.4f}",
            "" if r["n_runs"] is None else str(r["n_runs"]),
            "" if r["seconds"] is None else f"{r['seconds']:.1f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _write_record(
    optuna: Any,
    study: Any,
    folder: Path,
    config: ExperimentConfig,
    space: SearchSpace,
) -> Any:
    """Rewrite ``trials.jsonl``, ``trials.md`` and ``best.yaml``; the best trial."""
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    records = [_record(t, space) for t in trials]
    text = "".join(json.dumps(r) + "\n" for r in records)
    write_atomic(folder / TRIALS_JSONL, text)
    write_atomic(folder / TRIALS_MD, _markdown(records, space))
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        return None
    best = study.best_trial
    params = _params(best, space)
    chosen = _trial_config(config, params, _tuned_output(config))
    name = f"{config.name} (tuned)" if config.name else None
    chosen = dataclasses.replace(chosen, name=name)
    acc = best.user_attrs["val_acc"]
    header = (
        f"# Chosen by `diffresnet-pyg tune` on validation only ({space.metric}):\n"
        f"# trial {best.number} of {folder}, validation accuracy "
        f"{acc['mean']:.2f} +- {acc['std']:.2f} % over "
        f"{best.user_attrs['n_runs']} runs.\n"
        f"# Tuned: {', '.join(f'{k}={v!r}' for k, v in params.items())}.\n"
    )
    body = yaml.safe_dump(config_to_dict(chosen), sort_keys=False)
    write_atomic(folder / BEST_FILE, header + body)
    return best


@folder_lock_scope()
def tune(
    config: ExperimentConfig,
    space: SearchSpace,
    output: str | os.PathLike[str] | None = None,
    *,
    progress: Progress = True,
) -> TuneResult:
    """Search ``space`` around ``config`` on validation; resume a folder's search.

    Args:
        config (ExperimentConfig): The base config (no ``sweep``); every
            trial runs all of its (split, init) runs.
        space (SearchSpace): The search space.
        output (str or os.PathLike, optional): The tune folder.
            (default: :func:`default_output`)
        progress (bool or str, optional): ``True`` or ``"bar"``: a progress
            bar over trials; ``"log"``: the log line of each trial gets the
            time left, and each trial's runs log their own lines (see
            :mod:`~diffresnet_pyg.experiments.progress`); ``False``: no bar
            (the trials are still logged). (default: :obj:`True`)

    Returns:
        TuneResult: The best trial and where everything was written.

    Raises:
        ImportError: If Optuna is not installed.
        ConfigError: If :data:`MAX_REFUSED_IN_A_ROW` trials in a row are
            refused, or the config has a ``sweep`` or rejects a value of the
            space.
        ResultsFolderError: If the folder holds a search of another config or
            space, a trial folder holds runs of another config, or another
            process is writing to the folder (it stays locked until this
            returns).
    """
    optuna = _optuna()
    check_against(space, config)
    folder = Path(default_output(config) if output is None else output)
    _claim(folder, config, space)
    storage = optuna.storages.RDBStorage(f"sqlite:///{folder.resolve() / STUDY_FILE}")
    study = optuna.create_study(
        storage=storage,
        study_name=STUDY_NAME,
        direction=space.direction,
        load_if_exists=True,
    )
    _requeue_killed(optuna, study)
    complete = optuna.trial.TrialState.COMPLETE

    def finished() -> int:
        return len(study.get_trials(deepcopy=False, states=(complete,)))

    start_count = finished()
    logger.info(
        "%s: %d of %d trials finished",
        folder,
        min(start_count, space.trials),
        space.trials,
    )
    mode = progress_mode(progress)
    bar = tqdm(
        total=space.trials,
        initial=min(start_count, space.trials),
        desc=config.name or folder.name,
        unit="trial",
        disable=mode != "bar",
        dynamic_ncols=True,
    )
    eta = Eta(space.trials, min(start_count, space.trials))
    runs_progress = "log" if mode == "log" else False
    refused = 0
    try:
        while finished() < space.trials:
            study.sampler = _sampler(optuna, space, len(study.trials))
            trial = study.ask()
            params = _suggest(trial, space)
            name = trial.user_attrs.get("folder", f"{TRIALS_DIR}/{trial.number}")
            trial_config = _trial_config(config, params, str(folder / name))
            trial.set_user_attr("folder", name)
            started = time.perf_counter()
            try:
                run_experiment(
                    trial_config, progress=runs_progress, evaluate_test=False
                )
            except ValueError as exc:  # a setting refused for this graph
                refused += 1
                trial.set_user_attr("error", str(exc))
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                _write_record(optuna, study, folder, config, space)
                logger.warning("trial %d refused: %s", trial.number, exc)
                if refused >= MAX_REFUSED_IN_A_ROW:
                    raise ConfigError(
                        f"params: {refused} trials in a row were refused (narrow "
                        f"the search space); the last one: {exc}"
                    ) from exc
                continue
            except Exception:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                _write_record(optuna, study, folder, config, space)
                raise
            refused = 0
            rows, _ = unique_rows(
                read_rows(folder / name / RUNS_FILE),
                lambda row: (row["split"], row["init"]),
            )
            acc = _mean_std([r["val_acc"] for r in rows], scale=100.0)
            loss = _mean_std([r["val_loss"] for r in rows])
            trial.set_user_attr("val_acc", acc)
            trial.set_user_attr("val_loss", loss)
            trial.set_user_attr("n_runs", len(rows))
            trial.set_user_attr("seconds", time.perf_counter() - started)
            value = loss["mean"] if space.metric == "val_loss" else acc["mean"]
            if not math.isfinite(value):  # a diverged loss: try other params
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                logger.warning("trial %d: %s is not finite", trial.number, space.metric)
            else:
                study.tell(trial, value)
                bar.update()
                eta.add()
                logger.info(
                    "trial %d (%d/%d): val acc (%%) %s (%s); %s",
                    trial.number,
                    eta.done,
                    eta.total,
                    format_over_runs({**acc, "n": len(rows)}, plus="+-"),
                    ", ".join(f"{k}={v!r}" for k, v in params.items()),
                    eta.text(),
                )
            _write_record(optuna, study, folder, config, space)
    finally:
        bar.close()
    best = _write_record(optuna, study, folder, config, space)
    if best is None:  # unreachable: the loop ends with trials >= 1 finished
        raise RuntimeError(f"{folder}: no trial finished")
    return TuneResult(
        folder=folder,
        metric=space.metric,
        best_number=best.number,
        best_params=_params(best, space),
        best_value=float(best.value),
        best_record=_record(best, space),
        new_trials=finished() - start_count,
        finished=finished(),
        best_config=folder / BEST_FILE,
    )
