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


def _quickstart() -> list[str]:
    section = README.read_text().split("## Quickstart", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, flags=re.S).group(1)
    return block.strip().splitlines()


def test_quickstart_needs_nothing_beside_the_clone():
    first, second = _quickstart()
    assert first.startswith("pip install -e . && diffresnet-pyg run ")
    assert second == 'pip install -e ".[test]" && pytest'
    assert "shared" not in first and "DIFFRESNET_PYG_DATA" not in first
    cpu = "pip install torch --index-url https://download.pytorch.org/whl/cpu"
    assert cpu in README.read_text()  # PyTorch's documented CPU install


def test_quickstart_runs_offline_on_the_shipped_cora(tmp_path, monkeypatch, capsys):
    """The README's run command, shortened, with an empty dataset root and
    every download refused: the shipped Cora file is all it needs."""
    import torch_geometric.data

    from diffresnet_pyg.cli import main

    def refuse(*args, **kwargs):
        raise AssertionError(f"download attempted: {args}")

    monkeypatch.setattr(torch_geometric.data, "download_url", refuse)
    monkeypatch.setenv("DIFFRESNET_PYG_DATA", str(tmp_path / "empty_root"))
    monkeypatch.chdir(tmp_path)
    argv = _quickstart()[0].split("diffresnet-pyg ", 1)[1].split()
    argv[1] = str(README.parent / argv[1])  # the config, from the clone
    shorter = ["model.layer_num=2", "train.max_epochs=2", "split.num_inits=1"]
    assert main(["-q", *argv, *shorter]) == 0
    assert "results/quickstart: test accuracy" in capsys.readouterr().out
    assert (tmp_path / "results" / "quickstart" / "summary.md").is_file()
    assert not (tmp_path / "empty_root").exists()
