import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from diffresnet_pyg.experiments.models import model_names
from diffresnet_pyg.experiments.schema import (
    ConfigError,
    DatasetConfig,
    ExperimentConfig,
    ModelConfig,
    SplitConfig,
    SweepConfig,
    SweepMethod,
    TrainConfig,
    config_from_dict,
    config_to_dict,
    expand_sweep,
    fingerprint,
    load_config,
    merge,
    parse_overrides,
    slug,
)


def minimal(**extra):
    raw = {
        "output": "results/cora",
        "dataset": {"name": "cora"},
        "model": {"name": "diffresnet_reference"},
    }
    return merge(raw, extra)


def error(raw, match):
    with pytest.raises(ConfigError, match=match) as info:
        config_from_dict(raw)
    return str(info.value)


SWEEP = {
    "axis": "depth",
    "values": [0, 10],
    "methods": [
        {"label": "Diff-ResNet", "key": "model.layer_num"},
        {
            "label": "GCN",
            "key": "model.num_layers",
            "values": [2, 4, 8],
            "overrides": {"model": {"name": "gcn", "dropout": 0.5}},
        },
        {
            "label": "GRAND (rk4)",
            "key": "model.time",
            "values": [1, "5e-1"],
            "overrides": {
                "model": {"name": "grand", "method": "rk4", "step_size": 0.5},
                "train": {"lr": 0.005},
            },
        },
    ],
}


# --------------------------------------------------------------------------
# Valid configs and defaults
# --------------------------------------------------------------------------


def test_minimal_config_fills_defaults():
    cfg = config_from_dict(minimal())
    assert cfg.dataset == DatasetConfig(name="cora")
    assert cfg.dataset.root is None
    assert cfg.dataset.standardize and cfg.dataset.normalize_features
    assert cfg.split == SplitConfig()
    assert (cfg.split.scheme, cfg.split.master_seed) == ("per_class", 42)
    assert (cfg.split.num_splits, cfg.split.num_inits) == (100, 20)
    assert (cfg.split.train_per_class, cfg.split.val_per_class) == (20, 30)
    assert cfg.train == TrainConfig()
    assert cfg.train.optimizer == "adam"
    assert cfg.train.lr == 0.01 and cfg.train.weight_decay == 5e-4
    assert cfg.train.early_stopping == "loss_or_acc"
    assert cfg.train.device == "cpu" and cfg.train.batch_members == 20
    assert cfg.model == ModelConfig(
        "diffresnet_reference", {"step_size": 0.25, "layer_num": 20, "dropout": 0.25}
    )
    assert cfg.output == "results/cora"
    assert cfg.name is None and cfg.sweep is None


@pytest.mark.parametrize(
    ("name", "params"),
    [
        (
            "diffresnet",
            {
                "hidden_channels": 128,
                "num_blocks": 1,
                "diffusion_steps": 16,
                "step_size": 0.25,
                "laplacian": "sym",
                "dropout": 0.5,
                "diffusion_dropout": 0.25,
                "block_layers": 2,
                "input_projection": True,
                "input_dropout": 0.0,
                "diffusion_time": None,
            },
        ),
        (
            "gcn",
            {
                "hidden_channels": 64,
                "num_layers": 2,
                "dropout": 0.8,
                "input_dropout": 0,
            },
        ),
        (
            "sage",
            {
                "hidden_channels": 32,
                "num_layers": 2,
                "dropout": 0.4,
                "input_dropout": 0,
            },
        ),
        (
            "gat",
            {
                "hidden_channels": 64,
                "num_layers": 2,
                "heads": 8,
                "dropout": 0.6,
                "input_dropout": 0.6,
                "attention_dropout": 0.3,
            },
        ),
        (
            "mlp",
            {
                "hidden_channels": 64,
                "num_layers": 2,
                "dropout": 0.8,
                "input_dropout": 0,
            },
        ),
        (
            "grand",
            {
                "hidden_channels": 80,
                "time": 18.29,
                "method": "dopri5",
                "step_size": None,
                "input_dropout": 0.5,
                "dropout": 0.047,
                "heads": 8,
                "attention_channels": 128,
                "nonlinear": False,
                "add_source": True,
            },
        ),
    ],
)
def test_model_defaults(name, params):
    cfg = config_from_dict(minimal(model={"name": name}))
    assert cfg.model.name == name
    assert cfg.model.params == params
    assert list(cfg.model.params) == list(params)


def test_registered_model_names():
    assert set(model_names()) >= {
        "appnp",
        "diffresnet_reference",
        "diffresnet",
        "gcn",
        "sage",
        "gat",
        "mlp",
        "grand",
    }


def test_full_config_values():
    cfg = config_from_dict(
        minimal(
            name="cora sgd",
            dataset={"name": "GNNBench/Cora", "root": "data", "standardize": False},
            split={"num_splits": 5, "num_inits": 4, "master_seed": 7},
            model={"layer_num": 0, "step_size": 1},
            train={
                "optimizer": "sgd",
                "momentum": 0.9,
                "lr": 1,
                "weight_decay": "5e-4",
                "early_stopping": "none",
                "device": "cuda:1",
                "batch_members": 1,
            },
        )
    )
    assert cfg.name == "cora sgd"
    assert cfg.dataset == DatasetConfig("cora", "data", False, True)
    assert cfg.split.num_splits == 5 and cfg.split.master_seed == 7
    assert cfg.model.params["layer_num"] == 0
    step_size = cfg.model.params["step_size"]
    assert step_size == 1.0 and isinstance(step_size, float)
    assert isinstance(cfg.train.lr, float) and cfg.train.lr == 1.0
    assert cfg.train.weight_decay == 5e-4
    assert cfg.train.momentum == 0.9 and cfg.train.device == "cuda:1"


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("cora", "cora"),
        ("CORA", "cora"),
        ("gnnbench/citeseer", "citeseer"),
        ("Planetoid/Cora", "planetoid/cora"),
        ("coauthor/physics", "coauthor/physics"),
        ("graphdata/amazon_cs", "graphdata/amazon_cs"),
        ("ogbn-arxiv", "ogb/ogbn-arxiv"),
        ("ogb/OGBN-products", "ogb/ogbn-products"),
    ],
)
def test_dataset_names_are_canonical(given, stored):
    assert DatasetConfig(given).name == stored


def test_public_split():
    cfg = config_from_dict(
        minimal(
            dataset={"name": "planetoid/Cora"},
            split={"scheme": "public", "num_splits": 1},
        )
    )
    assert cfg.split.scheme == "public" and cfg.split.num_splits == 1


def test_empty_sections_mean_defaults():
    cfg = config_from_dict(minimal() | {"split": None, "train": None})
    assert cfg.split == SplitConfig() and cfg.train == TrainConfig()


def test_grand_fixed_step_and_gat_divisible():
    cfg = config_from_dict(
        minimal(model={"name": "grand", "method": "euler", "step_size": 0.1})
    )
    assert cfg.model.params["step_size"] == 0.1
    cfg = config_from_dict(minimal(model={"name": "gat", "hidden_channels": 16}))
    assert cfg.model.params["hidden_channels"] == 16


def test_direct_construction_validates():
    with pytest.raises(ConfigError, match=r"^train\.lr: "):
        TrainConfig(lr=0)
    with pytest.raises(ConfigError, match=r"^output: "):
        ExperimentConfig(
            dataset=DatasetConfig("cora"), model=ModelConfig("gcn"), output=""
        )
    cfg = ExperimentConfig(
        dataset=DatasetConfig("cora"), model=ModelConfig("gcn"), output="out"
    )
    with pytest.raises(ConfigError, match=r"^train\.patience: "):
        dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, patience=0))


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------


def test_unknown_top_level_key():
    message = error(minimal(epochs=5), r"^epochs: unknown key")
    for key in ("dataset", "model", "split", "train", "output", "name", "sweep"):
        assert key in message


@pytest.mark.parametrize(
    ("section", "allowed"),
    [
        ("dataset", "name, root, standardize, normalize_features"),
        ("split", "scheme, master_seed, num_splits, num_inits"),
        ("train", "optimizer, lr, weight_decay, weight_decay_on, momentum, max_epochs"),
    ],
)
def test_unknown_key_in_section(section, allowed):
    message = error(minimal(**{section: {"bogus": 1}}), rf"^{section}\.bogus: unknown")
    assert allowed in message


@pytest.mark.parametrize(
    ("model", "bad_key", "allowed"),
    [
        ("diffresnet_reference", "hidden_channels", "step_size, layer_num, dropout"),
        ("diffresnet", "layer_num", "num_blocks, diffusion_steps"),
        ("gcn", "heads", "hidden_channels, num_layers, dropout, input_dropout"),
        ("sage", "heads", "hidden_channels, num_layers"),
        ("gat", "method", "heads, dropout, input_dropout, attention_dropout"),
        ("mlp", "layer_num", "hidden_channels, num_layers"),
        ("grand", "num_layers", "time, method, step_size"),
    ],
)
def test_unknown_model_parameter(model, bad_key, allowed):
    message = error(
        minimal(model={"name": model, bad_key: 1}),
        rf"^model\.{bad_key}: not a parameter of model '{model}'",
    )
    assert allowed in message


def test_switching_model_keeps_old_params_as_errors(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(minimal(model={"layer_num": 4})))
    with pytest.raises(
        ConfigError, match=r"^model\.layer_num: not a parameter of model 'gcn'"
    ):
        load_config(path, ["model.name=gcn"])
    # null is still a value: a key the new model does not know stays an error
    with pytest.raises(ConfigError, match=r"^model\.layer_num: not a parameter"):
        load_config(path, ["model.name=gcn", "model.layer_num=null"])
    assert (
        load_config(path, ["model.name=diffresnet_reference"]).model.params["layer_num"]
        == 4
    )


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ({"train": {"lr": "abc"}}, r"^train\.lr: expected a float > 0, got 'abc'"),
        ({"train": {"lr": -0.1}}, r"^train\.lr: expected a float > 0, got -0\.1"),
        ({"train": {"lr": 0}}, r"^train\.lr: .*got 0 \(int\)"),
        ({"train": {"lr": True}}, r"^train\.lr: .*got True \(bool\)"),
        ({"train": {"lr": float("nan")}}, r"^train\.lr: .*got nan"),
        ({"train": {"lr": "inf"}}, r"^train\.lr: .*got 'inf'"),
        ({"train": {"lr": [0.1]}}, r"^train\.lr: .*\(list\)"),
        ({"train": {"weight_decay": -1}}, r"^train\.weight_decay: .*>= 0"),
        ({"train": {"momentum": 1.0}}, r"^train\.momentum: .*< 1"),
        ({"train": {"max_epochs": 0}}, r"^train\.max_epochs: expected an int >= 1"),
        ({"train": {"patience": "10"}}, r"^train\.patience: .*got '10' \(str\)"),
        ({"train": {"batch_members": 0}}, r"^train\.batch_members: "),
        ({"train": {"sparse_features": "yes"}}, r"^train\.sparse_features: .*true"),
        ({"train": {"sparse_features": 1}}, r"^train\.sparse_features: "),
        ({"train": {"device": "gpu"}}, r"^train\.device: .*'cuda:N'.*got 'gpu'"),
        ({"train": {"device": "cuda:x"}}, r"^train\.device: "),
        ({"train": {"optimizer": "rmsprop"}}, r"^train\.optimizer: .*'adamw'"),
        ({"train": {"optimizer": "Adam"}}, r"^train\.optimizer: "),
        ({"train": {"early_stopping": "acc"}}, r"^train\.early_stopping: .*'loss'"),
        ({"train": {"momentum": 0.9}}, r"^train\.momentum: only used by .*'sgd'"),
        ({"split": {"num_splits": 2.5}}, r"^split\.num_splits: .*got 2\.5 \(float\)"),
        ({"split": {"num_splits": 2.0}}, r"^split\.num_splits: .*got 2\.0 \(float\)"),
        ({"split": {"num_splits": True}}, r"^split\.num_splits: .*got True \(bool\)"),
        ({"split": {"num_splits": 0}}, r"^split\.num_splits: expected an int >= 1"),
        ({"split": {"num_inits": 0}}, r"^split\.num_inits: "),
        ({"split": {"train_per_class": 0}}, r"^split\.train_per_class: "),
        ({"split": {"val_per_class": -1}}, r"^split\.val_per_class: "),
        ({"split": {"master_seed": -1}}, r"^split\.master_seed: .*>= 0"),
        ({"split": {"master_seed": 2**32}}, r"^split\.master_seed: "),
        ({"split": {"scheme": "random"}}, r"^split\.scheme: .*'per_class'"),
        ({"split": {"scheme": "public"}}, r"^split\.num_splits: must be 1 .*public"),
        ({"dataset": {"name": "imagenet"}}, r"^dataset\.name: .*cora.*'imagenet'"),
        ({"dataset": {"name": 3}}, r"^dataset\.name: .*got 3 \(int\)"),
        ({"dataset": {"root": ""}}, r"^dataset\.root: "),
        ({"dataset": {"standardize": "no"}}, r"^dataset\.standardize: "),
        ({"dataset": {"normalize_features": None}}, r"^dataset\.normalize_features"),
        ({"model": {"name": "resnet"}}, r"^model\.name: .*'gcn'.*got 'resnet'"),
        ({"model": {"dropout": 1.5}}, r"^model\.dropout: .*< 1, got 1\.5"),
        ({"model": {"dropout": -0.1}}, r"^model\.dropout: "),
        ({"model": {"step_size": 0}}, r"^model\.step_size: expected a float > 0"),
        ({"model": {"layer_num": -1}}, r"^model\.layer_num: expected an int >= 0"),
        ({"model": {"layer_num": 2.5}}, r"^model\.layer_num: "),
        ({"model": {"layer_num": False}}, r"^model\.layer_num: .*\(bool\)"),
        ({"output": 3}, r"^output: .*got 3 \(int\)"),
        ({"output": ""}, r"^output: "),
        ({"name": 5}, r"^name: "),
        ({"dataset": "cora"}, r"^dataset: expected a mapping"),
        ({"train": [1]}, r"^train: expected a mapping"),
        ({"model": "gcn"}, r"^model: expected a mapping"),
    ],
)
def test_bad_values(override, match):
    raw = minimal()
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(raw.get(key), dict):
            raw[key] = {**raw[key], **value}
        else:
            raw[key] = value
    error(raw, match)


@pytest.mark.parametrize(
    ("model", "match"),
    [
        ({"name": "diffresnet", "laplacian": "normalized"}, r"^model\.laplacian: "),
        (
            {"name": "diffresnet", "block_layers": 3},
            r"^model\.block_layers: expected 1 or 2",
        ),
        ({"name": "diffresnet", "diffusion_dropout": 1}, r"^model\.diffusion_drop"),
        ({"name": "diffresnet", "input_projection": 1}, r"^model\.input_projection"),
        ({"name": "diffresnet", "num_blocks": 0}, r"^model\.num_blocks: "),
        ({"name": "gcn", "num_layers": 0}, r"^model\.num_layers: "),
        ({"name": "gcn", "hidden_channels": 64.0}, r"^model\.hidden_channels: "),
        ({"name": "gat", "heads": 0}, r"^model\.heads: "),
        (
            {"name": "gat", "hidden_channels": 60},
            r"^model\.hidden_channels: must be divisible by model\.heads=8, got 60",
        ),
        ({"name": "grand", "method": "rk45"}, r"^model\.method: .*'dopri5'"),
        ({"name": "grand", "time": 0}, r"^model\.time: "),
        (
            {"name": "grand", "attention_channels": 100},
            r"^model\.attention_channels: must be divisible",
        ),
        (
            {"name": "grand", "method": "rk4"},
            r"^model\.step_size: required .*fixed-step method 'rk4'",
        ),
        (
            {"name": "grand", "method": "dopri5", "step_size": 0.1},
            r"^model\.step_size: only used by the fixed-step methods",
        ),
        ({"name": "grand", "step_size": -1, "method": "euler"}, r"^model\.step_size"),
        ({"name": "grand", "nonlinear": "false"}, r"^model\.nonlinear: "),
    ],
)
def test_bad_model_params(model, match):
    error(minimal() | {"model": model}, match)


def test_missing_required_keys():
    raw = minimal()
    del raw["dataset"]
    error(raw, r"^dataset: required key is missing")
    raw = minimal()
    del raw["output"]
    error(raw, r"^output: required key is missing")
    error(minimal() | {"dataset": {"root": "x"}}, r"^dataset\.name: required key")
    error(minimal() | {"model": {"layer_num": 3}}, r"^model\.name: required key")
    raw = minimal()
    del raw["model"]
    error(raw, r"^model: required key is missing")
    error(minimal() | {"model": None}, r"^model: required")


def test_public_split_needs_dataset_with_masks():
    error(
        minimal(split={"scheme": "public", "num_splits": 1}),
        r"^split\.scheme: 'public' needs a dataset with its own split",
    )


def test_top_level_not_a_mapping():
    with pytest.raises(ConfigError, match=r"^config: expected a mapping"):
        config_from_dict([1, 2])


# --------------------------------------------------------------------------
# Overrides
# --------------------------------------------------------------------------


def test_parse_overrides_nested_and_types():
    assert parse_overrides(
        [
            "train.lr=0.005",
            "split.num_splits=5",
            "dataset.standardize=false",
            "model.name=gcn",
            "sweep.values=[2, 4]",
            "dataset.root=null",
            "train.weight_decay=1e-3",
            "name=my run",
            "a.b.c=x=y",
            "output=",
        ]
    ) == {
        "train": {"lr": 0.005, "weight_decay": "1e-3"},
        "split": {"num_splits": 5},
        "dataset": {"standardize": False, "root": None},
        "model": {"name": "gcn"},
        "sweep": {"values": [2, 4]},
        "name": "my run",
        "a": {"b": {"c": "x=y"}},
        "output": None,
    }
    assert parse_overrides([]) == {}
    assert parse_overrides([" train.lr = 0.1"]) == {"train": {"lr": 0.1}}


def test_parse_overrides_later_items_win():
    assert parse_overrides(["train.lr=1", "train.lr=2"]) == {"train": {"lr": 2}}
    assert parse_overrides(["train.lr=1", "train=null"]) == {"train": None}
    assert parse_overrides(["train=null", "train.lr=3"]) == {"train": {"lr": 3}}


@pytest.mark.parametrize(
    ("item", "match"),
    [
        ("train.lr", r"expected KEY=VALUE"),
        ("=5", r"empty key"),
        ("  =5", r"empty key"),
        ("train..lr=5", r"^train\.\.lr: empty key segment"),
        (".lr=5", r"empty key segment"),
        ("train.=5", r"empty key segment"),
        ("train.lr=[1, 2", r"^train\.lr: cannot parse override value"),
    ],
)
def test_parse_overrides_errors(item, match):
    with pytest.raises(ConfigError, match=match):
        parse_overrides([item])


def test_merge_is_deep_and_pure():
    base = {"train": {"lr": 0.1, "patience": 5}, "model": {"name": "gcn"}}
    over = {"train": {"lr": 0.2}, "model": None, "output": "x"}
    merged = merge(base, over)
    assert merged == {"train": {"lr": 0.2, "patience": 5}, "model": None, "output": "x"}
    assert base == {"train": {"lr": 0.1, "patience": 5}, "model": {"name": "gcn"}}
    merged["train"]["lr"] = 9
    assert over["train"]["lr"] == 0.2


def test_override_precedence(tmp_path):
    path = tmp_path / "cora.yaml"
    path.write_text(
        "output: out\n"
        "dataset: {name: cora}\n"
        "model: {name: diffresnet_reference, layer_num: 4}\n"
        "train: {lr: 0.1, patience: 7}\n"
    )
    cfg = load_config(path, ["train.lr=5e-4", "model.layer_num=0", "train.lr=0.02"])
    assert cfg.train.lr == 0.02
    assert cfg.train.patience == 7
    assert cfg.model.params["layer_num"] == 0
    assert cfg.model.params["step_size"] == 0.25


# --------------------------------------------------------------------------
# Round trip and fingerprint
# --------------------------------------------------------------------------


@pytest.mark.parametrize("model", model_names())
def test_round_trip(model):
    params = {"method": "rk4", "step_size": 0.5} if model == "grand" else {}
    cfg = config_from_dict(
        minimal(
            name="trip",
            model={"name": model, **params},
            train={"weight_decay": "5e-4", "lr": 1},
            dataset={"root": "/data"},
        )
    )
    raw = config_to_dict(cfg)
    assert raw["model"]["name"] == model
    text = yaml.safe_dump(raw)
    again = config_from_dict(yaml.safe_load(text))
    assert again == cfg
    assert config_to_dict(again) == raw


def test_round_trip_with_sweep():
    cfg = config_from_dict(minimal(sweep=SWEEP))
    raw = config_to_dict(cfg)
    assert isinstance(raw["sweep"]["values"], list)
    assert raw["sweep"]["methods"][1]["values"] == [2, 4, 8]
    assert raw["sweep"]["methods"][2]["values"] == [1, 0.5]
    again = config_from_dict(yaml.safe_load(yaml.safe_dump(raw)))
    assert again == cfg
    assert fingerprint(again) == fingerprint(cfg)


def test_fingerprint_stable_and_sensitive():
    cfg = config_from_dict(minimal())
    fp = fingerprint(cfg)
    assert re.fullmatch(r"[0-9a-f]{64}", fp)
    assert fingerprint(config_from_dict(minimal())) == fp
    same = [
        dataclasses.replace(cfg, output="elsewhere", name="renamed"),
        dataclasses.replace(
            cfg, train=dataclasses.replace(cfg.train, batch_members=1, device="cuda")
        ),
        dataclasses.replace(cfg, dataset=dataclasses.replace(cfg.dataset, root="/d")),
        config_from_dict(minimal(train={"lr": "1e-2"})),
        config_from_dict(minimal(model={"layer_num": 20})),
    ]
    for other in same:
        assert fingerprint(other) == fp
    different = [
        config_from_dict(minimal(train={"lr": 0.005})),
        config_from_dict(minimal(split={"num_splits": 5})),
        config_from_dict(minimal(model={"layer_num": 10})),
        config_from_dict(minimal(dataset={"name": "citeseer"})),
        config_from_dict(minimal(train={"sparse_features": False})),
        config_from_dict(minimal(sweep=SWEEP)),
    ]
    fingerprints = {fingerprint(other) for other in different}
    assert fp not in fingerprints and len(fingerprints) == len(different)


# --------------------------------------------------------------------------
# Sweeps
# --------------------------------------------------------------------------


def test_expand_sweep_outputs_keys_and_values():
    cfg = config_from_dict(minimal(sweep=SWEEP))
    assert cfg.sweep == SweepConfig(
        axis="depth",
        values=(0, 10),
        methods=(
            SweepMethod("Diff-ResNet", "model.layer_num"),
            SweepMethod(
                "GCN",
                "model.num_layers",
                {"model": {"name": "gcn", "dropout": 0.5}},
                (2, 4, 8),
            ),
            SweepMethod(
                "GRAND (rk4)",
                "model.time",
                {
                    "model": {"name": "grand", "method": "rk4", "step_size": 0.5},
                    "train": {"lr": 0.005},
                },
                (1, 0.5),
            ),
        ),
    )
    points = expand_sweep(cfg)
    assert [(label, value) for label, value, _ in points] == [
        ("Diff-ResNet", 0),
        ("Diff-ResNet", 10),
        ("GCN", 2),
        ("GCN", 4),
        ("GCN", 8),
        ("GRAND (rk4)", 1),
        ("GRAND (rk4)", 0.5),
    ]
    outputs = [point.output for _, _, point in points]
    assert outputs == [
        "results/cora/diff-resnet/depth_0",
        "results/cora/diff-resnet/depth_10",
        "results/cora/gcn/depth_2",
        "results/cora/gcn/depth_4",
        "results/cora/gcn/depth_8",
        "results/cora/grand-rk4/depth_1",
        "results/cora/grand-rk4/depth_0.5",
    ]
    for _, _, point in points:
        assert point.sweep is None
        assert point.dataset == cfg.dataset and point.split == cfg.split
    diff = points[0][2]
    assert diff.model.params == {"step_size": 0.25, "layer_num": 0, "dropout": 0.25}
    assert diff.train == cfg.train
    gcn = points[3][2]
    assert gcn.model.name == "gcn"
    assert gcn.model.params == {
        "hidden_channels": 64,
        "num_layers": 4,
        "dropout": 0.5,
        "input_dropout": 0.0,
    }
    grand = points[6][2]
    assert grand.model.params["time"] == 0.5
    assert grand.model.params["method"] == "rk4"
    assert grand.train.lr == 0.005 and cfg.train.lr == 0.01
    assert len({fingerprint(point) for _, _, point in points}) == len(points)


def test_expand_sweep_same_model_inherits_base_params():
    sweep = {
        "axis": "lr",
        "values": ["1e-3", 0.01],
        "methods": [
            {"label": "a", "key": "train.lr"},
            {"label": "b", "key": "train.lr", "overrides": {"model": {"dropout": 0.5}}},
            {
                "label": "c",
                "key": "train.lr",
                "overrides": {"model": {"name": "diffresnet_reference"}},
            },
        ],
    }
    cfg = config_from_dict(minimal(model={"layer_num": 3}, sweep=sweep))
    points = expand_sweep(cfg)
    assert [p.output for _, _, p in points[:2]] == [
        "results/cora/a/lr_0.001",
        "results/cora/a/lr_0.01",
    ]
    assert points[0][2].train.lr == 0.001
    assert points[2][2].model.params == {
        "step_size": 0.25,
        "layer_num": 3,
        "dropout": 0.5,
    }
    assert points[4][2].model.params["layer_num"] == 3


def test_sweep_without_base_model():
    raw = minimal(sweep=SWEEP)
    raw["model"] = None
    sweep = {**SWEEP, "methods": SWEEP["methods"][1:]}
    cfg = config_from_dict(raw | {"sweep": sweep})
    assert cfg.model is None
    assert [label for label, _, _ in expand_sweep(cfg)] == ["GCN"] * 3 + [
        "GRAND (rk4)"
    ] * 2
    # a method without a model of its own needs the base model
    error(raw, r"^sweep\.methods\[0\] \('Diff-ResNet', model\.layer_num=0\): model")


def test_expand_sweep_needs_a_sweep():
    with pytest.raises(ConfigError, match=r"^sweep: "):
        expand_sweep(config_from_dict(minimal()))


def sweep_with(methods=None, **extra):
    sweep = {**SWEEP, **extra}
    if methods is not None:
        sweep["methods"] = methods
    return minimal(sweep=None) | {"sweep": sweep}


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (
            sweep_with(
                [
                    {
                        "label": "GCN",
                        "key": "model.layer_num",
                        "values": [2],
                        "overrides": {"model": {"name": "gcn"}},
                    }
                ]
            ),
            r"^sweep\.methods\[0\] \('GCN', model\.layer_num=2\): model\.layer_num: "
            r"not a parameter of model 'gcn'",
        ),
        (
            sweep_with([{"label": "x", "key": "train.bogus"}]),
            r"^sweep\.methods\[0\] \('x', train\.bogus=0\): train\.bogus: unknown",
        ),
        (
            sweep_with([{"label": "x", "key": "model.dropout"}], values=[0.5, 2]),
            r"^sweep\.methods\[0\] \('x', model\.dropout=2\): model\.dropout: ",
        ),
        (
            sweep_with([{"label": "x", "key": "lr"}]),
            r"^sweep\.methods\[0\]\.key: expected a dotted key",
        ),
        (
            sweep_with([{"label": "x", "key": "output.x"}]),
            r"^sweep\.methods\[0\]\.key: ",
        ),
        (
            sweep_with([{"label": "x", "key": "model.name"}]),
            r"^sweep\.methods\[0\]\.key: cannot sweep over 'model\.name'",
        ),
        (
            sweep_with(
                [
                    {"label": "A", "key": "model.layer_num"},
                    {"label": "A", "key": "model.layer_num"},
                ]
            ),
            r"^sweep\.methods\[1\]\.label: 'A' is not unique",
        ),
        (
            sweep_with(
                [
                    {"label": "Diff ResNet", "key": "model.layer_num"},
                    {"label": "diff-resnet", "key": "model.layer_num"},
                ]
            ),
            r"^sweep\.methods\[1\]\.label: 'diff-resnet' is not unique",
        ),
        (
            sweep_with([{"label": "", "key": "model.layer_num"}]),
            r"^sweep\.methods\[0\]\.label: expected a non-empty string",
        ),
        (
            sweep_with([{"label": "!!", "key": "model.layer_num"}]),
            r"^sweep\.methods\[0\]\.label: needs a letter or digit",
        ),
        (
            sweep_with([{"label": "x", "key": "model.layer_num"}], values=[]),
            r"^sweep\.values: must not be empty, method 'x' has no values",
        ),
        (
            sweep_with([{"label": "x", "key": "model.layer_num", "values": []}]),
            r"^sweep\.methods\[0\]\.values: must not be empty",
        ),
        (sweep_with([]), r"^sweep\.methods: must not be empty"),
        (sweep_with(values=[1, 1]), r"^sweep\.values\[1\]: duplicate value 1"),
        (sweep_with(values=[1, "x"]), r"^sweep\.values\[1\]: expected a number"),
        (sweep_with(values=[True]), r"^sweep\.values\[0\]: expected a number"),
        (sweep_with(values=5), r"^sweep\.values: expected a list of numbers"),
        (sweep_with(axis="my axis"), r"^sweep\.axis: "),
        (sweep_with(bogus=1), r"^sweep\.bogus: unknown key"),
        (
            sweep_with([{"label": "x", "key": "model.layer_num", "extra": 1}]),
            r"^sweep\.methods\[0\]\.extra: unknown key; allowed: label, key",
        ),
        (
            sweep_with([{"label": "x"}]),
            r"^sweep\.methods\[0\]\.key: required key is missing",
        ),
        (
            sweep_with(
                [{"label": "x", "key": "model.layer_num", "overrides": {"output": "y"}}]
            ),
            r"^sweep\.methods\[0\]\.overrides\.output: unknown section",
        ),
        (
            sweep_with(
                [{"label": "x", "key": "model.layer_num", "overrides": {"model": 3}}]
            ),
            r"^sweep\.methods\[0\]\.overrides\.model: expected a mapping",
        ),
        (
            sweep_with(
                [
                    {
                        "label": "x",
                        "key": "model.layer_num",
                        "overrides": {"train": {"lr": "abc"}},
                    }
                ]
            ),
            r"^sweep\.methods\[0\] \('x', model\.layer_num=0\): train\.lr: ",
        ),
        (sweep_with(methods="x"), r"^sweep\.methods: expected a list"),
        (sweep_with(methods=[3]), r"^sweep\.methods\[0\]: expected a mapping"),
    ],
)
def test_sweep_errors(raw, match):
    error(raw, match)


def test_slug():
    assert slug("Diff-ResNet") == "diff-resnet"
    assert slug("  GRAND (rk4) ") == "grand-rk4"
    assert slug("No-Diff-ResNet, 20 layers") == "no-diff-resnet-20-layers"
    assert slug("!!") == ""


# --------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------


def test_load_config(tmp_path):
    path = tmp_path / "cora.yaml"
    path.write_text(
        "# the authors' Cora setting\n"
        "name: cora\n"
        "output: results/cora\n"
        "dataset:\n  name: cora\n"
        "split:\n  num_splits: 5\n  num_inits: 4\n"
        "model:\n  name: diffresnet_reference\n  layer_num: 20\n"
        "train:\n  weight_decay: 5e-4\n  lr: 1e-2\n"
    )
    cfg = load_config(path)
    assert cfg.name == "cora" and cfg.output == "results/cora"
    assert cfg.split.num_splits == 5 and cfg.split.num_inits == 4
    assert cfg.train.weight_decay == 5e-4 and cfg.train.lr == 0.01
    assert load_config(str(path), ["split.num_splits=1"]).split.num_splits == 1


def test_load_config_missing_file(tmp_path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match=r"nope\.yaml: config file not found"):
        load_config(path)


def test_load_config_yaml_syntax_error(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("output: out\ndataset: {name: cora\nmodel: gcn\n")
    with pytest.raises(
        ConfigError, match=r"bad\.yaml: invalid YAML \(line \d+, column \d+\): "
    ):
        load_config(path)


@pytest.mark.parametrize("text", ["", "- 1\n- 2\n", "just text\n"])
def test_load_config_top_level_not_a_mapping(tmp_path, text):
    path = tmp_path / "list.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"list\.yaml: expected a mapping of sec"):
        load_config(path)


def test_load_config_duplicate_key(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text("output: out\ndataset: {name: cora}\ntrain:\n  lr: 1\n  lr: 2\n")
    with pytest.raises(
        ConfigError, match=r"invalid YAML \(line 5, column 3\): .*duplicate key 'lr'"
    ):
        load_config(path)


def test_load_config_validation_error_and_bad_override(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(minimal()))
    with pytest.raises(ConfigError, match=r"^train\.lr: expected a float > 0"):
        load_config(path, ["train.lr=abc"])
    with pytest.raises(ConfigError, match=r"expected KEY=VALUE"):
        load_config(path, ["train.lr"])
    with pytest.raises(ConfigError, match=r"^split\.bogus: unknown key"):
        load_config(path, ["split.bogus=1"])


def test_config_error_is_value_error():
    assert issubclass(ConfigError, ValueError)


def test_command_line_overrides_win_over_sweep_method_overrides():
    from diffresnet_pyg.experiments.schema.experiment import expand_sweep

    path = Path(__file__).parents[2] / "configs" / "sweeps" / "cora_depth.yaml"
    grand = [p for label, _, p in expand_sweep(load_config(path)) if label == "GRAND"]
    assert {p.train.max_epochs for p in grand} == {100}  # the method's own
    points = expand_sweep(load_config(path, ["train.max_epochs=50"]))
    assert {p.train.max_epochs for _, _, p in points} == {50}
    with pytest.raises(ConfigError, match="swept key of sweep.methods"):
        load_config(path, ["model.diffusion_steps=3"])
