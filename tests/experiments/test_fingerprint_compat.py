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
    """Graph experiment configs (with a ``dataset``; not few-shot, not spaces)."""
    paths = []
    for path in sorted((REPO / folder).rglob(pattern)):
        raw = yaml.safe_load(path.read_text())
        if isinstance(raw, dict) and "dataset" in raw and raw.get("task") != "fewshot":
            paths.append(str(path.relative_to(REPO)))
    return paths


def test_the_committed_results_configs_are_covered():
    # Folders written later get their fingerprint from the current code; the
    # ones committed before the new dataset keys must all be checked here.
    expected = [p for p in EXPECTED if p.startswith("experiments/")]
    assert len(expected) == 41
    assert all((REPO / p).is_file() for p in EXPECTED)


@pytest.mark.parametrize("path", sorted(EXPECTED))
def test_fingerprint_unchanged(path):
    raw = yaml.safe_load((REPO / path).read_text())
    assert fingerprint(config_from_dict(raw)) == EXPECTED[path]


@pytest.mark.parametrize("path", graph_configs("configs", "*.yaml"))
def test_shipped_configs_validate(path):
    config_from_dict(yaml.safe_load((REPO / path).read_text()))
