"""Committed results folders keep their fingerprints as the schema grows.

``fingerprints_before_dataset_files.json`` holds the fingerprint of every
committed graph ``experiments/**/config.yaml`` and shipped ``configs/**``
file, computed by the code before ``dataset.path`` and its companions
existed. A results folder is refused on resume when its fingerprint
changes, so these must never drift.
"""

import json
from pathlib import Path

import pytest
import yaml

from diffresnet_pyg.experiments.schema import config_from_dict, fingerprint

REPO = Path(__file__).resolve().parents[2]
EXPECTED = json.loads(
    (Path(__file__).with_name("fingerprints_before_dataset_files.json")).read_text()
)


def graph_configs(folder: str, pattern: str) -> list[str]:
    paths = []
    for path in sorted((REPO / folder).rglob(pattern)):
        raw = yaml.safe_load(path.read_text())
        if isinstance(raw, dict) and raw.get("task") != "fewshot":
            paths.append(str(path.relative_to(REPO)))
    return paths


def test_every_committed_results_config_is_covered():
    committed = graph_configs("experiments", "config.yaml")
    assert len(committed) >= 41
    assert set(committed) <= set(EXPECTED)


@pytest.mark.parametrize("path", sorted(EXPECTED))
def test_fingerprint_unchanged(path):
    raw = yaml.safe_load((REPO / path).read_text())
    assert fingerprint(config_from_dict(raw)) == EXPECTED[path]


@pytest.mark.parametrize("path", graph_configs("configs", "*.yaml"))
def test_shipped_configs_validate(path):
    config_from_dict(yaml.safe_load((REPO / path).read_text()))
