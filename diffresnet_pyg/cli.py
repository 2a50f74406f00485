"""The ``diffresnet-pyg`` command line.

Usage::

    diffresnet-pyg run CONFIG [KEY=VALUE ...]      # every (split, init) run
    diffresnet-pyg sweep CONFIG [KEY=VALUE ...]    # every point of a sweep
    diffresnet-pyg run CONFIG --dry-run            # the plan and its wall time
    diffresnet-pyg tune CONFIG SPACE [KEY=VALUE ...] [-o DIR]  # search on val
    diffresnet-pyg fewshot CONFIG [KEY=VALUE ...]  # few-shot methods on episodes
    diffresnet-pyg report RESULTS_DIR              # summaries, tables, plots
    diffresnet-pyg synthetic [--output DIR]        # the synthetic figures
    diffresnet-pyg show CONFIG [KEY=VALUE ...]     # the resolved config

``KEY=VALUE`` overrides use dotted keys (``train.lr=0.005``,
``split.num_splits=1``, ``model.layer_num=10``); values are parsed as YAML.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from diffresnet_pyg import __version__

__all__ = ["main"]

#: Progress mode handed to the runners: bars, log lines, or nothing.
Progress = Literal["bar", "log", False]

# Heavy modules (torch, PyG, the runners) are imported only by the command
# that needs them, so that ``--help`` and ``--version`` answer at once.


def _global_flags(defaults: bool) -> argparse.ArgumentParser:
    """``-q`` and ``--debug``, accepted before and after the subcommand.

    The copy on the subcommands has no defaults (:obj:`argparse.SUPPRESS`),
    so a flag given before the subcommand is not reset by the subparser.
    """
    flags = argparse.ArgumentParser(add_help=False)
    default = {} if defaults else {"default": argparse.SUPPRESS}
    flags.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no progress bars or info logs",
        **default,
    )
    flags.add_argument(
        "--debug",
        action="store_true",
        help="show the full traceback of an error",
        **default,
    )
    return flags


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="diffresnet-pyg",
        description="Config-driven Diff-ResNet benchmarks.",
        parents=[_global_flags(defaults=True)],
    )
    flags = _global_flags(defaults=False)
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("run", "run every (split, init) of a config (resumes)"),
        ("sweep", "run every point of a sweep config, then table and plot"),
        ("fewshot", "score few-shot methods on the same episodes (resumes)"),
        ("show", "print the resolved config and exit"),
    ):
        p = sub.add_parser(name, help=text, description=text, parents=[flags])
        p.add_argument("config", help="YAML config file")
        p.add_argument(
            "overrides", nargs="*", metavar="KEY=VALUE", help="dotted overrides"
        )
        if name in ("run", "sweep"):
            p.add_argument(
                "--dry-run",
                action="store_true",
                help="check everything, time a short probe, print the plan and "
                "the estimated wall time; write nothing",
            )
    text = "search hyperparameters on validation accuracy (Optuna; resumes)"
    p = sub.add_parser(
        "tune",
        parents=[flags],
        help=text,
        description=text + ". Each trial runs every (split, init) of CONFIG "
        "with values drawn from SPACE; test accuracy is never evaluated. "
        "Writes best.yaml (run it for the test accuracy), trials.jsonl and "
        "trials.md.",
    )
    p.add_argument("config", help="YAML config file (no sweep)")
    p.add_argument("space", help="YAML search space (trials, sampler, seed, params)")
    p.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE", help="dotted config overrides"
    )
    p.add_argument(
        "-o",
        "--output",
        default=None,
        help="the tune folder (default: the config's output + '-tune')",
    )
    text = "write summaries, tables and plots of results folders"
    p = sub.add_parser(
        "report",
        parents=[flags],
        help=text,
        description=text + ": a results folder, a sweep folder, or a folder "
        "holding several (each gets summary.json and summary.md; a sweep also "
        "its table and plot).",
    )
    p.add_argument("results_dir", help="a results, sweep, or parent folder")
    text = "regenerate the synthetic figures (XOR collapse, circles, moons, spirals)"
    p = sub.add_parser("synthetic", help=text, description=text, parents=[flags])
    p.add_argument(
        "--output",
        default="experiments/synthetic",
        help="folder for the PNGs and results.json (default: %(default)s)",
    )
    p.add_argument("--seed", type=int, default=0, help="master seed (default: 0)")
    return parser


def _check_yaml(*paths: str | Path) -> None:
    """Refuse an oversized file or one with YAML anchors before torch is loaded.

    The same bounded reading the config loaders do later
    (:mod:`diffresnet_pyg.yaml_files`, which imports only PyYAML), done first
    so that a hostile or broken file fails at once.
    """
    from diffresnet_pyg.yaml_files import read_yaml_file

    for path in paths:
        read_yaml_file(path, "config file")


def _is_fewshot(path: str | Path) -> bool:
    """Whether the config file is a few-shot one (``task: fewshot``)."""
    from diffresnet_pyg.yaml_files import read_yaml_file

    data = read_yaml_file(path, "config file")
    return isinstance(data, dict) and data.get("task") == "fewshot"


def _fewshot(args: argparse.Namespace, progress: Progress) -> int:
    import yaml

    _check_yaml(args.config)

    from diffresnet_pyg.experiments.fewshot_config import (
        fewshot_config_to_dict,
        load_fewshot_config,
    )

    config = load_fewshot_config(args.config, args.overrides)
    if args.command == "show":
        print(yaml.safe_dump(fewshot_config_to_dict(config), sort_keys=False), end="")
        return 0
    from diffresnet_pyg.experiments.fewshot_runner import fewshot_markdown, run_fewshot

    print(fewshot_markdown(run_fewshot(config, progress=progress)), end="")
    return 0


def _tune(args: argparse.Namespace, progress: Progress) -> int:
    _check_yaml(args.config, args.space)
    from diffresnet_pyg.experiments.schema import load_config
    from diffresnet_pyg.experiments.tune import load_space, tune

    config = load_config(args.config, args.overrides)
    space = load_space(args.space)
    try:  # tune logs each trial itself; Optuna's own lines would repeat them
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
    except ImportError:
        pass  # tune() says how to install it
    try:
        result = tune(config, space, args.output, progress=progress)
    except ImportError as exc:
        if exc.name != "optuna":
            raise
        raise _UserError(str(exc)) from None
    from diffresnet_pyg.experiments.report.formatting import format_over_runs

    acc = {**result.best_record["val_acc"], "n": result.best_record["n_runs"]}
    params = ", ".join(f"{k}={v!r}" for k, v in result.best_params.items())
    print(
        f"{result.folder}: {result.finished} trials ({result.new_trials} new); "
        f"best trial {result.best_number}: validation accuracy (%) "
        f"{format_over_runs(acc, plus='+-')} ({params})"
    )
    print(
        f"chosen config: {result.best_config} (diffresnet-pyg run {result.best_config})"
    )
    return 0


def _experiment(args: argparse.Namespace, progress: Progress) -> int:
    """``run``, ``sweep`` and ``show`` of a graph config."""
    _check_yaml(args.config)
    from diffresnet_pyg.experiments.runner import run_experiment, run_sweep
    from diffresnet_pyg.experiments.schema import (
        ConfigError,
        config_to_dict,
        load_config,
    )

    config = load_config(args.config, args.overrides)
    if args.command == "show":
        import yaml

        print(yaml.safe_dump(config_to_dict(config), sort_keys=False), end="")
        return 0
    if args.command == "run":
        if config.sweep is not None:
            raise ConfigError(
                f"{args.config} has a 'sweep' section; use "
                f"'diffresnet-pyg sweep {args.config}'"
            )
        if args.dry_run:
            from diffresnet_pyg.experiments.runner import format_plan, plan_experiment

            print(format_plan(plan_experiment(config)))
            return 0
        from diffresnet_pyg.experiments.report.formatting import format_over_runs

        summary = run_experiment(config, progress=progress)
        acc = {**summary["test_acc"], "n": summary["n_runs"]}
        print(f"{config.output}: test accuracy {format_over_runs(acc, plus='+-')}")
        return 0
    if config.sweep is None:
        raise ConfigError(f"{args.config} has no 'sweep' section")
    if args.dry_run:
        from diffresnet_pyg.experiments.runner import format_plans, plan_sweep

        print(format_plans(plan_sweep(config)))
        return 0
    for path in run_sweep(config, progress=progress):
        print(path)
    return 0


def _command(args: argparse.Namespace, progress: Progress) -> int:
    if args.command == "synthetic":
        from diffresnet_pyg.synthetic import make_figures

        for path in make_figures(
            args.output, seed=args.seed, progress=progress == "bar"
        ):
            print(path)
        return 0
    if args.command == "report":
        from diffresnet_pyg.experiments.report import report_directory

        for path in report_directory(args.results_dir):
            print(path)
        return 0
    if args.command == "tune":
        return _tune(args, progress)
    if args.command == "fewshot" or (
        args.command == "show" and _is_fewshot(args.config)
    ):
        return _fewshot(args, progress)
    return _experiment(args, progress)


class _UserError(Exception):
    """An error the CLI reports as one line (a missing optional package)."""


def _user_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that are the user's to fix: reported as one line.

    Bad configs, results folders, data files and paths, and values the
    library refuses (``ValueError``: an unstable step size, a split larger
    than a class, ...). Anything else is a bug and keeps its traceback.
    Nothing is imported: a :class:`ResultsFolderError` can only have been
    raised once its module was loaded (configs' errors are ``ValueError``).
    """
    errors: tuple[type[BaseException], ...] = (_UserError, ValueError, OSError)
    results = sys.modules.get("diffresnet_pyg.experiments.results")
    if results is not None:
        errors += (results.ResultsFolderError,)
    return errors


def _saved_runs(folder: Path) -> int:
    """Rows in every ``runs.jsonl`` under ``folder`` (a run, sweep or tune)."""
    if not folder.is_dir():
        return 0
    return sum(
        sum(1 for line in path.read_bytes().splitlines() if line.strip())
        for path in folder.rglob("runs.jsonl")
    )


def _output_folder(args: argparse.Namespace) -> Path | None:
    """The results folder the command writes to, if it can be told cheaply."""
    if getattr(args, "output", None) and args.command == "tune":
        return Path(args.output)
    for item in reversed(getattr(args, "overrides", []) or []):
        if item.startswith("output="):
            return Path(item.removeprefix("output="))
    config = getattr(args, "config", None)
    if config is None:
        return None
    try:
        from diffresnet_pyg.experiments.schema import read_yaml

        output = read_yaml(config).get("output")
    except Exception:  # the error that stopped the run was reported already
        return None
    if output is None:
        return None
    return Path(f"{output}-tune") if args.command == "tune" else Path(output)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``diffresnet-pyg``; returns the exit status.

    Exit status 0 on success, 2 for an error of the user's (one line on
    stderr starting ``diffresnet-pyg: error:``; ``--debug`` shows the
    traceback) and 130 when interrupted with Ctrl-C (finished runs are kept;
    rerunning the command resumes).
    """
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if (
        extra
        and args.command in ("tune", "run", "sweep")
        and all("=" in item and not item.startswith("-") for item in extra)
    ):  # overrides after -o DIR or --dry-run, which argparse does not join
        args.overrides = [*args.overrides, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    # A terminal gets bars; anything else (nohup, CI, a pipe) log lines.
    progress: Progress = (
        False if args.quiet else "bar" if sys.stderr.isatty() else "log"
    )
    for message in (  # torch's notices about sparse tensors, not about the run
        "Sparse CSR tensor support is in beta state",
        "Sparse invariant checks are implicitly disabled",
    ):
        warnings.filterwarnings("ignore", message=message)
    try:
        return _command(args, progress)
    except KeyboardInterrupt:
        if args.debug:
            raise
        folder = _output_folder(args)
        saved = (
            f"; {_saved_runs(folder)} finished runs are saved in {folder}"
            if folder is not None
            else ""
        )
        print(
            f"diffresnet-pyg: interrupted{saved}; rerun the same command to resume",
            file=sys.stderr,
        )
        return 130
    except Exception as exc:
        if args.debug or not isinstance(exc, _user_errors()):
            raise
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"diffresnet-pyg: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
