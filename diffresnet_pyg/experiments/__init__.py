"""Config-driven experiments: schema, runner, sweeps and reports.

* :mod:`~diffresnet_pyg.experiments.schema`: the typed, validated YAML schema
  and dotted command-line overrides;
* :mod:`~diffresnet_pyg.experiments.training`: full-batch training of many
  runs at once, each with its own early stopping;
* :mod:`~diffresnet_pyg.experiments.models`: the models a config names;
* :mod:`~diffresnet_pyg.experiments.runner`: every (split, init) run of a
  config or sweep, one row per run, resumable;
* :mod:`~diffresnet_pyg.experiments.executors`: where the chunks of runs
  train (this process, a pool of local processes, or a Ray cluster);
* :mod:`~diffresnet_pyg.experiments.results`: the files of a results folder
  (claimed per config, written atomically, rows appended durably);
* :mod:`~diffresnet_pyg.experiments.report`: summaries, Markdown tables and
  plots computed from the rows.

The ``diffresnet-pyg`` command (:mod:`diffresnet_pyg.cli`) drives them.
"""

from diffresnet_pyg.experiments.report import report_directory, write_summary
from diffresnet_pyg.experiments.runner import (
    ResultsFolderError,
    run_experiment,
    run_sweep,
)
from diffresnet_pyg.experiments.schema import (
    ConfigError,
    ExperimentConfig,
    config_from_dict,
    load_config,
)
from diffresnet_pyg.experiments.training import EarlyStopping, train_members

__all__ = [
    "ConfigError",
    "EarlyStopping",
    "ExperimentConfig",
    "ResultsFolderError",
    "config_from_dict",
    "load_config",
    "report_directory",
    "run_experiment",
    "run_sweep",
    "train_members",
    "write_summary",
]
