"""The Python examples in README.md run as written."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
#: The examples that load a dataset (read from the dataset root).
DATA_BLOCKS = [i for i, block in enumerate(BLOCKS) if "load_dataset" in block]


def run_block(index: int) -> None:
    exec(compile(BLOCKS[index], f"README.md[python block {index}]", "exec"), {})


def test_readme_has_examples():
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index, fake_root, monkeypatch):
    monkeypatch.setenv("DIFFRESNET_PYG_DATA", str(fake_root))
    run_block(index)


@pytest.mark.real_data
@pytest.mark.parametrize("index", DATA_BLOCKS)
def test_readme_example_runs_on_real_data(index, data_cache, monkeypatch):
    monkeypatch.setenv("DIFFRESNET_PYG_DATA", str(data_cache))
    run_block(index)
