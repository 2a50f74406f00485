import math

import pytest
import torch

from diffresnet_pyg import profiling
from diffresnet_pyg.profiling import (
    HWM_METHOD,
    MAXRSS_METHOD,
    UNAVAILABLE,
    PeakRSS,
    max_rss,
    peak_rss,
    read_status,
    reset_peak_rss,
)

MB = 10**6
CAN_RESET = reset_peak_rss() and read_status("VmHWM") is not None
needs_proc = pytest.mark.skipif(
    not CAN_RESET, reason="needs a writable /proc/self/clear_refs (Linux)"
)


@needs_proc
def test_a_100_mb_tensor_raises_the_peak():
    # release=True first hands freed heap pages back: without it, pages freed
    # by earlier tests may still be resident and serve the new tensor, which
    # then adds nothing to the resident size.
    with peak_rss(release=True) as memory:
        x = torch.ones(100 * MB // 4)  # 100 MB, every page written
        del x
    assert memory.method == HWM_METHOD
    assert memory.before > 0 and memory.peak >= memory.before
    assert memory.extra_bytes >= 90 * MB
    assert memory.extra_mib == memory.extra_bytes / 2**20


@needs_proc
def test_without_release_the_peak_is_never_below_the_start():
    with peak_rss() as memory:
        x = torch.ones(100 * MB // 4)
        del x
    assert memory.method == HWM_METHOD
    assert memory.peak >= memory.before > 0
    assert memory.extra_bytes >= 0


@needs_proc
def test_the_peak_is_reset_for_each_block():
    with peak_rss():
        x = torch.ones(100 * MB // 4)
        del x
    with peak_rss() as small:
        y = torch.ones(1000)
        del y
    assert small.extra_bytes < 50 * MB


@needs_proc
def test_read_status_fields():
    assert read_status("VmRSS") > 0
    assert read_status("VmHWM") >= read_status("VmRSS") - 2**20
    assert read_status("NoSuchField") is None


def test_peak_is_filled_in_when_the_block_raises():
    with pytest.raises(RuntimeError, match="boom"), peak_rss() as memory:
        raise RuntimeError("boom")
    assert memory.peak is not None or memory.method == UNAVAILABLE


@pytest.fixture
def no_proc(monkeypatch, tmp_path):
    """A system without /proc: status and clear_refs cannot be opened."""
    monkeypatch.setattr(profiling, "_STATUS", str(tmp_path / "missing" / "status"))
    monkeypatch.setattr(profiling, "_CLEAR_REFS", str(tmp_path / "missing" / "clear"))


def test_fallback_without_proc_uses_ru_maxrss(no_proc):
    assert not reset_peak_rss() and read_status("VmRSS") is None
    with peak_rss() as memory:
        pass
    assert memory.method == MAXRSS_METHOD
    assert memory.peak >= memory.before > 0
    assert memory.extra_bytes >= 0


def test_without_proc_and_fallback_nothing_is_measured(no_proc):
    with peak_rss(fallback=False, release=True) as memory:
        pass
    assert memory == PeakRSS(UNAVAILABLE)
    assert math.isnan(memory.extra_bytes) and math.isnan(memory.extra_mib)


def test_max_rss_is_in_bytes():
    assert max_rss() > 10 * MB  # a Python process with torch loaded
