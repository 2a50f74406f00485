"""Shared fixtures: offline copies of the real datasets in ``../shared/data``."""

import os
import shutil
from pathlib import Path

import pytest

SHARED_DATA = Path(
    os.environ.get(
        "DIFFRESNET_PYG_SHARED_DATA",
        Path(__file__).resolve().parents[1].parent / "shared" / "data",
    )
)


def pytest_collection_modifyitems(config, items):
    """Skip tests marked ``network`` unless network tests are enabled."""
    if os.environ.get("DIFFRESNET_PYG_NETWORK_TESTS") == "1":
        return
    skip = pytest.mark.skip(reason="needs network (DIFFRESNET_PYG_NETWORK_TESTS=1)")
    for item in items:
        if "network" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The read-only offline dataset folder."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"offline datasets not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def data_cache(shared_data: Path, tmp_path_factory) -> Path:
    """A writable copy of the offline datasets (libraries write next to raw files)."""
    root = tmp_path_factory.mktemp("data_cache")
    for name in ("gnnbench", "graphdata", "planetoid"):
        if (shared_data / name).is_dir():
            shutil.copytree(shared_data / name, root / name)
    for path in root.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return root
