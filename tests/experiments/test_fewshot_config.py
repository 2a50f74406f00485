import pytest
import yaml

from diffresnet_pyg.experiments.fewshot_config import (
    EPISODE_NET_DEFAULTS,
    expand_methods,
    fewshot_config_from_dict,
    fewshot_config_to_dict,
    load_fewshot_config,
)
from diffresnet_pyg.experiments.schema import ConfigError, load_config


def _raw(**extra):
    raw = {
        "task": "fewshot",
        "output": "out",
        "features": {"source": "omniglot_conv4"},
        "methods": [
            {"label": "NP", "name": "nearest_prototype"},
            {"label": "Diff-ResNet", "name": "episode_net", "layer_num": 6},
        ],
    }
    raw.update(extra)
    return raw


def test_defaults_are_the_authors():
    cfg = fewshot_config_from_dict(_raw())
    assert (cfg.episodes.way, cfg.episodes.shot, cfg.episodes.query) == (5, 1, 15)
    assert cfg.episodes.num_episodes == 10000
    net = cfg.methods[1].params
    assert net["lr"] == 0.1 and net["momentum"] == 0.9
    assert net["weight_decay"] == 1e-4 and net["epochs"] == 100
    assert net["milestones"] == (50, 75) and net["gamma"] == 0.1
    assert (net["n_top"], net["sigma"], net["step_size"]) == (8, 4, 0.5)
    assert EPISODE_NET_DEFAULTS["mu"] == 0.0
    assert cfg.preprocess.center and cfg.preprocess.normalize and cfg.preprocess.shift


def test_round_trip_through_yaml():
    cfg = fewshot_config_from_dict(
        _raw(sweep={"method": "Diff-ResNet", "key": "n_top", "values": [4, 8]})
    )
    text = yaml.safe_dump(fewshot_config_to_dict(cfg))
    assert fewshot_config_from_dict(yaml.safe_load(text)) == cfg


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"task": "graph"}, "task: expected 'fewshot'"),
        ({"epochs": 3}, "epochs: unknown key"),
        ({"features": {"source": "imagenet"}}, "features.source: expected one of"),
        ({"features": {"source": "file"}}, "features.path: required"),
        (
            {"features": {"source": "omniglot_conv4", "path": "x.npz"}},
            "features.path: only for source 'file'",
        ),
        ({"episodes": {"way": 1}}, "episodes.way: expected an int >= 2"),
        ({"episodes": {"shots": 1}}, "episodes.shots: unknown key"),
        ({"episodes": {"source": "omniglot_runs"}}, "episodes.source: 'omniglot_runs'"),
        (
            {"preprocess": {"center": "yes"}},
            "preprocess.center: expected true or false",
        ),
        ({"methods": []}, "methods: expected at least one method"),
        ({"methods": [{"label": "x", "name": "svm"}]}, "name: expected one of"),
        (
            {"methods": [{"label": "x", "name": "nearest_prototype", "k": 3}]},
            "k: unknown parameter of nearest_prototype",
        ),
        (
            {
                "methods": [
                    {"label": "x", "name": "episode_net", "milestones": [75, 50]}
                ]
            },
            "milestones: expected a list of increasing ints",
        ),
        (
            {"methods": [{"label": "x", "name": "episode_net", "step_size": 0}]},
            "step_size: expected a float > 0",
        ),
        (
            {
                "methods": [
                    {"label": "a b", "name": "nearest_prototype"},
                    {"label": "a-b", "name": "nearest_prototype"},
                ]
            },
            "repeat",
        ),
        ({"sweep": {"method": "nope", "key": "n_top", "values": [4]}}, "sweep.method"),
        (
            {"sweep": {"method": "Diff-ResNet", "key": "knn", "values": [4]}},
            "'knn' is not a parameter of episode_net",
        ),
        (
            {
                "sweep": {
                    "method": "Diff-ResNet",
                    "key": "step_size",
                    "values": [0.4],
                    "scale_with": "layer_num",
                    "total": 3,
                }
            },
            "is not an int",
        ),
    ],
)
def test_errors_name_the_key(change, message):
    with pytest.raises(
        ConfigError, match=message.replace("(", r"\(").replace("[", r"\[")
    ):
        fewshot_config_from_dict(_raw(**change))


def test_file_source_needs_base_features_to_center():
    with pytest.raises(ConfigError, match="features.base_path: required"):
        fewshot_config_from_dict(_raw(features={"source": "file", "path": "f.npz"}))
    cfg = fewshot_config_from_dict(
        _raw(features={"source": "file", "path": "f.npz"}, preprocess={"center": False})
    )
    assert cfg.features.path == "f.npz"


def test_sweep_scales_a_second_parameter():
    cfg = fewshot_config_from_dict(
        _raw(
            sweep={
                "method": "Diff-ResNet",
                "key": "step_size",
                "values": [0.5, 1.0],
                "scale_with": "layer_num",
                "total": 3,
            }
        )
    )
    methods = expand_methods(cfg)
    assert [m.label for m in methods[2:]] == [
        "Diff-ResNet (step_size=0.5)",
        "Diff-ResNet (step_size=1)",
    ]
    assert [(m.params["step_size"], m.params["layer_num"]) for m in methods[2:]] == [
        (0.5, 6),
        (1.0, 3),
    ]


def test_loading_from_yaml_with_overrides(tmp_path):
    path = tmp_path / "fs.yaml"
    path.write_text(yaml.safe_dump(_raw()))
    cfg = load_fewshot_config(path, ["episodes.num_episodes=7", "episodes.shot=5"])
    assert (cfg.episodes.num_episodes, cfg.episodes.shot) == (7, 5)
    with pytest.raises(ConfigError, match="few-shot config"):
        load_config(path)


def test_shipped_fewshot_configs_are_valid():
    from pathlib import Path

    folder = Path(__file__).resolve().parents[2] / "configs" / "fewshot"
    paths = sorted(folder.glob("*.yaml"))
    assert paths, "configs/fewshot holds no configs"
    for path in paths:
        cfg = load_fewshot_config(path)
        assert expand_methods(cfg)


def test_feature_cache_never_goes_to_the_data_root(tmp_path, monkeypatch):
    from diffresnet_pyg.experiments.fewshot_config import FeaturesConfig
    from diffresnet_pyg.experiments.fewshot_features import _cache_dir

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    root = tmp_path / "data"
    default = _cache_dir(FeaturesConfig(source="omniglot_conv4", root=str(root)))
    assert default == tmp_path / "xdg" / "diffresnet_pyg" / "cache" / "fewshot"
    chosen = FeaturesConfig(
        source="omniglot_conv4", root=str(root), cache=str(tmp_path)
    )
    assert _cache_dir(chosen) == tmp_path / "fewshot"
