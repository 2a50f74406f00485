"""Shared fixtures: synthetic datasets, and the offline copies of the real ones.

Most tests read small synthetic files written in the real on-disk layouts
(:mod:`tests.fake_data`, fixture ``fake_root``). Tests whose point is the
real data (published numbers, the authors' exact splits, the file loaders on
the real files) carry the ``real_data`` marker and read the offline copies in
``../shared/data`` (or ``$DIFFRESNET_PYG_SHARED_DATA``) through the fixtures
``shared_data`` and ``data_cache``; without that folder they are skipped with
a reason saying how to provide it. ``-m "not real_data"`` deselects them.
"""

import os
import shutil
from pathlib import Path

import pytest

from tests.fake_data import write_gnnbench_npz, write_planetoid_raw

SHARED_DATA_ENV_VAR = "DIFFRESNET_PYG_SHARED_DATA"

SHARED_DATA = Path(
    os.environ.get(
        SHARED_DATA_ENV_VAR,
        Path(__file__).resolve().parents[1].parent / "shared" / "data",
    )
)

#: The files the ``real_data`` tests read, relative to :data:`SHARED_DATA`.
#: The folder counts as present only if it holds all of them (a download that
#: failed may leave an empty ``gnnbench/`` folder behind).
REAL_DATA_FILES = (
    "gnnbench/cora.npz",
    "gnnbench/citeseer.npz",
    "planetoid/Cora/raw",
    "planetoid/CiteSeer/raw",
    "graphdata/coauthor_cs.npz",
    "graphdata/amazon_cs.npz",
    "omniglot/images_evaluation.npz",
    "omniglot/all_runs.zip",
)
MISSING_REAL_DATA = [f for f in REAL_DATA_FILES if not (SHARED_DATA / f).exists()]

#: Why ``real_data`` tests are skipped when files are missing.
SHARED_DATA_MISSING = (
    f"real datasets not found at {SHARED_DATA} (missing "
    f"{', '.join(MISSING_REAL_DATA)}; set {SHARED_DATA_ENV_VAR} to the folder "
    "holding gnnbench/, planetoid/, graphdata/, omniglot/)"
)

#: The fixtures that read the real datasets.
REAL_DATA_FIXTURES = ("shared_data", "data_cache")


def pytest_collection_modifyitems(config, items):
    """Skip ``network`` and ``real_data`` tests whose resources are missing.

    A test that requests a real-data fixture without the ``real_data`` marker
    is a usage error, so that ``-m "not real_data"`` always leaves out every
    test that needs the real files.
    """
    unmarked = [
        item.nodeid
        for item in items
        if set(REAL_DATA_FIXTURES) & set(getattr(item, "fixturenames", ()))
        and item.get_closest_marker("real_data") is None
    ]
    if unmarked:
        raise pytest.UsageError(
            f"tests using the fixtures {REAL_DATA_FIXTURES} must be marked "
            f"real_data: {', '.join(unmarked)}"
        )
    skip_network = None
    if os.environ.get("DIFFRESNET_PYG_NETWORK_TESTS") != "1":
        skip_network = pytest.mark.skip(
            reason="needs network (DIFFRESNET_PYG_NETWORK_TESTS=1)"
        )
    skip_real = None
    if MISSING_REAL_DATA:
        skip_real = pytest.mark.skip(reason=SHARED_DATA_MISSING)
    for item in items:
        if skip_network and item.get_closest_marker("network"):
            item.add_marker(skip_network)
        if skip_real and item.get_closest_marker("real_data"):
            item.add_marker(skip_real)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The read-only folder of real datasets (``real_data`` tests only)."""
    if MISSING_REAL_DATA:
        pytest.skip(SHARED_DATA_MISSING)
    return SHARED_DATA


@pytest.fixture(scope="session")
def data_cache(shared_data: Path, tmp_path_factory) -> Path:
    """A writable copy of the real datasets (libraries write next to raw files)."""
    root = tmp_path_factory.mktemp("data_cache")
    for name in ("gnnbench", "graphdata", "planetoid"):
        if (shared_data / name).is_dir():
            shutil.copytree(shared_data / name, root / name)
    for path in root.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return root


@pytest.fixture(scope="session")
def fake_root(tmp_path_factory) -> Path:
    """A dataset root of synthetic files, read without any download.

    ``gnnbench/cora.npz``: a graph of Cora's shape (2708 nodes, a largest
    connected component of 2485 nodes and 5069 edges with Cora's class sizes,
    so the protocol draws Cora's seeds; see :mod:`tests.fake_data`).
    ``planetoid/Cora/raw/``: a 900-node graph in Planetoid's files, with its
    public split.
    """
    root = tmp_path_factory.mktemp("fake_root")
    write_gnnbench_npz(root / "gnnbench" / "cora.npz")
    write_planetoid_raw(root / "planetoid" / "Cora" / "raw")
    return root


@pytest.fixture(
    scope="session",
    params=["synthetic", pytest.param("real", marks=pytest.mark.real_data)],
)
def cora_root(request) -> Path:
    """A root holding ``gnnbench/cora.npz``: the synthetic one, then the real one."""
    fixture = "fake_root" if request.param == "synthetic" else "data_cache"
    return request.getfixturevalue(fixture)
