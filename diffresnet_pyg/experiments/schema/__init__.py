"""The experiment config: a typed, validated schema read from YAML.

A YAML file is the single source of truth of an experiment. It has these
top-level keys (sections), each checked against a frozen dataclass:

.. code-block:: yaml

    name: cora-reference          # optional, free text
    output: results/cora          # required: the results folder
    dataset: {name: cora}         # DatasetConfig
    split: {num_splits: 5, num_inits: 4}         # SplitConfig (optional)
    model: {name: diffresnet_reference, layer_num: 20}  # ModelConfig
    train: {lr: 0.01, weight_decay: 5e-4}        # TrainConfig (optional)
    executor: {kind: processes, workers: 2}      # ExecutorConfig (optional)
    sweep: ...                    # SweepConfig (optional)

Relative paths (``output``, ``dataset.root``) are relative to the current
working directory, *not* to the folder of the config file.

Validation is strict: an unknown key is an error naming the key and the
allowed ones, and a bad value is an error naming the dotted key, the value and
what is allowed. Nothing is coerced silently, with two exceptions for float
fields: an int is accepted (``lr: 1``), and so is a string that parses as a
float, because PyYAML reads ``5e-4`` (no dot) as a string. A YAML section that
is present but empty (``train:``) means all defaults. Duplicate keys in a YAML
mapping are errors too.

Model parameters are written flat next to the model's name
(``model: {name: gcn, hidden_channels: 64}``) and validated against the
model's registration (:mod:`diffresnet_pyg.experiments.models`);
:attr:`ModelConfig.params` holds all of them, defaults filled in.

The modules: :mod:`~.fields` (validators, :class:`ConfigError`, the section
machinery, shared by the few-shot schema), :mod:`~.sections` (``dataset``,
``split``, ``train``, ``executor``), :mod:`~.model`, :mod:`~.sweep`,
:mod:`~.experiment` (the whole config, sweeps expanded, fingerprint) and
:mod:`~.files` (YAML and overrides).

Command-line overrides (:func:`parse_overrides`) are dotted
``KEY=VALUE`` strings merged onto the YAML before validation
(``train.lr=0.005``, ``model.layer_num=10``, ``split.num_splits=1``).

Example:
    >>> cfg = config_from_dict({
    ...     "output": "results/cora",
    ...     "dataset": {"name": "Cora"},
    ...     "model": {"name": "gcn", "dropout": 0.5},
    ...     "train": {"weight_decay": "5e-4"},
    ... })
    >>> cfg.dataset.name, cfg.model.params["hidden_channels"], cfg.train.weight_decay
    ('cora', 64, 0.0005)
    >>> config_from_dict({"output": "out", "dataset": {"name": "cora"},
    ...                   "model": {"name": "gcn", "dropout": 1.5}})
    Traceback (most recent call last):
    ...
    diffresnet_pyg.experiments.schema.ConfigError: model.dropout: expected a float \
>= 0 and < 1, got 1.5 (float)
"""

from diffresnet_pyg.experiments.schema.experiment import (
    TOP_LEVEL_KEYS,
    ExperimentConfig,
    config_from_dict,
    config_to_dict,
    expand_sweep,
    fingerprint,
)
from diffresnet_pyg.experiments.schema.fields import ConfigError, merge
from diffresnet_pyg.experiments.schema.files import (
    load_config,
    load_yaml_text,
    parse_overrides,
    read_yaml,
    read_yaml_file,
)
from diffresnet_pyg.experiments.schema.model import ModelConfig
from diffresnet_pyg.experiments.schema.sections import (
    BATCHING_METHODS,
    EXECUTOR_KINDS,
    OPTIMIZER_NAMES,
    SPLIT_SCHEMES,
    WEIGHT_DECAY_SCOPES,
    BatchingConfig,
    DatasetConfig,
    ExecutorConfig,
    SplitConfig,
    TrainConfig,
)
from diffresnet_pyg.experiments.schema.sweep import SweepConfig, SweepMethod, slug
from diffresnet_pyg.yaml_files import MAX_YAML_BYTES, MAX_YAML_NODES

__all__ = [
    "BATCHING_METHODS",
    "EXECUTOR_KINDS",
    "MAX_YAML_BYTES",
    "MAX_YAML_NODES",
    "OPTIMIZER_NAMES",
    "SPLIT_SCHEMES",
    "TOP_LEVEL_KEYS",
    "WEIGHT_DECAY_SCOPES",
    "BatchingConfig",
    "ConfigError",
    "DatasetConfig",
    "ExecutorConfig",
    "ExperimentConfig",
    "ModelConfig",
    "SplitConfig",
    "SweepConfig",
    "SweepMethod",
    "TrainConfig",
    "config_from_dict",
    "config_to_dict",
    "expand_sweep",
    "fingerprint",
    "load_config",
    "load_yaml_text",
    "merge",
    "parse_overrides",
    "read_yaml",
    "read_yaml_file",
    "slug",
]
