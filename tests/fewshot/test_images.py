import gzip
import io
import shutil
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from diffresnet_pyg.fewshot.images import (
    FASHION_MNIST_SYSTEM_ROOT,
    OMNIGLOT_URL,
    OmniglotRun,
    load_fashion_mnist,
    load_omniglot,
    load_omniglot_runs,
    read_idx,
)

# run01/training/class01.png of all_runs.zip is drawing 4 of character 46 of
# images_evaluation.npz (found by exact comparison of the bits).
RUN01_CLASS01 = (46, 4)


def _copy(src: Path, dst_dir: Path) -> Path:
    if not src.is_file():
        pytest.skip(f"{src} not found")
    dst = dst_dir / src.name
    shutil.copyfile(src, dst)
    return dst


@pytest.fixture(scope="module")
def omniglot_eval_raw(shared_data):
    path = shared_data / "omniglot" / "images_evaluation.npz"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    with np.load(path) as npz:
        return npz["images"], npz["labels"]


@pytest.fixture(scope="module")
def runs_zip(shared_data, tmp_path_factory):
    folder = tmp_path_factory.mktemp("omniglot_runs")
    return _copy(shared_data / "omniglot" / "all_runs.zip", folder)


@pytest.fixture(scope="module")
def runs28(runs_zip):
    return load_omniglot_runs(runs_zip, size=28)


def _write_omniglot(root: Path, images: np.ndarray, labels: np.ndarray) -> None:
    np.savez(root / "images_evaluation.npz", images=images, labels=labels)


# --------------------------------------------------------------- Omniglot


@pytest.mark.real_data
def test_load_omniglot_real(shared_data, tmp_path):
    _copy(shared_data / "omniglot" / "images_evaluation.npz", tmp_path)
    images, labels = load_omniglot(tmp_path, background=False, size=28)
    assert images.shape == (659 * 20, 1, 28, 28)
    assert images.dtype == torch.float32 and labels.dtype == torch.long
    assert float(images.min()) == 0.0 and float(images.max()) == 1.0
    # Strokes are 1 and the minority of the pixels.
    assert 0.02 < float(images.mean()) < 0.2
    assert torch.equal(labels, torch.arange(659).repeat_interleave(20))


def test_load_omniglot_polarity_and_area_resize(tmp_path):
    # three characters of random drawings in the stored polarity (True = paper)
    rng = np.random.default_rng(0)
    subset = rng.random((3, 20, 105, 105)) > 0.1
    sub_labels = np.repeat(np.array([[40], [41], [42]]), 20, axis=1)
    _write_omniglot(tmp_path, subset, sub_labels)
    full, labels = load_omniglot(tmp_path, background=False, size=105)
    strokes = ~subset.reshape(-1, 105, 105)
    assert torch.equal(full[:, 0], torch.from_numpy(strokes.astype(np.float32)))
    assert torch.equal(labels, torch.arange(3).repeat_interleave(20))
    # 105 = 3 * 35: area interpolation is the mean of 3x3 blocks.
    small, _ = load_omniglot(tmp_path, background=False, size=35)
    blocks = strokes.reshape(-1, 35, 3, 35, 3).mean(axis=(2, 4))
    torch.testing.assert_close(small[:, 0], torch.from_numpy(blocks).float())
    # A non-integer factor (105 / 28): the mean over overlapping windows.
    tiny, _ = load_omniglot(tmp_path, background=False, size=28)
    torch.testing.assert_close(tiny[:3, 0], _area_loop(strokes[:3], 28))


def _area_loop(images: np.ndarray, size: int) -> torch.Tensor:
    """Adaptive average pooling, one output pixel at a time."""
    height = images.shape[-1]
    out = np.zeros((images.shape[0], size, size))
    for u in range(size):
        r0, r1 = u * height // size, -(-(u + 1) * height // size)
        for v in range(size):
            c0, c1 = v * height // size, -(-(v + 1) * height // size)
            out[:, u, v] = images[:, r0:r1, c0:c1].mean(axis=(1, 2))
    return torch.from_numpy(out).float()


def test_load_omniglot_label_renumbering(tmp_path):
    images = np.ones((2, 20, 105, 105), dtype=bool)
    labels = np.repeat(np.array([[7], [3]]), 20, axis=1)
    _write_omniglot(tmp_path, images, labels)
    _, out = load_omniglot(tmp_path, background=False, size=4)
    assert out.tolist() == [1] * 20 + [0] * 20


def test_load_omniglot_errors(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match=OMNIGLOT_URL):
        load_omniglot(tmp_path, background=True)
    monkeypatch.setenv("DIFFRESNET_PYG_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="omniglot"):
        load_omniglot()
    _write_omniglot(tmp_path, np.zeros((1, 20, 105, 105), np.uint8), np.zeros((1, 20)))
    with pytest.raises(ValueError, match="bool"):
        load_omniglot(tmp_path, background=False)
    for size in (0, 106):
        with pytest.raises(ValueError, match="size"):
            load_omniglot(tmp_path, background=False, size=size)
    with pytest.raises(TypeError, match="size"):
        load_omniglot(tmp_path, background=False, size=28.0)


def test_load_omniglot_default_root(tmp_path, monkeypatch):
    (tmp_path / "omniglot").mkdir()
    images = np.ones((1, 20, 105, 105), dtype=bool)
    np.savez(
        tmp_path / "omniglot" / "images_background.npz",
        images=images,
        labels=np.zeros((1, 20), dtype=np.int64),
    )
    monkeypatch.setenv("DIFFRESNET_PYG_DATA", str(tmp_path))
    out, labels = load_omniglot(size=7)
    assert out.shape == (20, 1, 7, 7) and float(out.abs().sum()) == 0.0


# ---------------------------------------------------------- official runs


@pytest.mark.real_data
def test_load_omniglot_runs(runs28):
    runs = runs28
    assert [r.name for r in runs] == [f"run{i:02d}" for i in range(1, 21)]
    for run in runs:
        assert isinstance(run, OmniglotRun)
        assert run.support.shape == run.query.shape == (20, 1, 28, 28)
        assert run.support.dtype == torch.float32
        assert 0.0 <= float(run.support.min()) and float(run.support.max()) <= 1.0
        assert 0.02 < float(run.query.mean()) < 0.2  # strokes are the minority
        # Each class has exactly one query: the labels are a permutation.
        assert run.query_labels.dtype == torch.long
        assert sorted(run.query_labels.tolist()) == list(range(20))
        assert run.way == 20 and torch.equal(run.support_labels, torch.arange(20))
    # run01/class_labels.txt: item01 -> class08, item02 -> class09, item03 -> class02
    assert runs[0].query_labels[:3].tolist() == [7, 8, 1]


@pytest.mark.real_data
def test_load_omniglot_runs_pixels(runs_zip, runs28):
    from PIL import Image

    [run] = load_omniglot_runs(runs_zip, size=105)[:1]
    with zipfile.ZipFile(runs_zip) as archive:
        data = archive.read("run01/test/item05.png")
        labels = archive.read("run01/class_labels.txt").decode().split()
    png = np.array(Image.open(io.BytesIO(data)))  # mode "1": True = white
    assert png.dtype == np.bool_
    assert torch.equal(run.query[4, 0], torch.from_numpy((~png).astype(np.float32)))
    target = labels[labels.index("run01/test/item05.png") + 1]
    assert run.query_labels[4] == int(target[-6:-4]) - 1
    # Downsampled runs are the area means of the full-size images.
    strokes = run.support[:, 0].numpy()
    torch.testing.assert_close(runs28[0].support[:, 0], _area_loop(strokes, 28))


@pytest.mark.real_data
def test_runs_match_load_omniglot(runs28, omniglot_eval_raw, tmp_path):
    raw, raw_labels = omniglot_eval_raw
    char, drawer = RUN01_CLASS01
    _write_omniglot(tmp_path, raw[char : char + 1], raw_labels[char : char + 1])
    images, _ = load_omniglot(tmp_path, background=False, size=28)
    assert torch.equal(runs28[0].support[0], images[drawer])


def _png(color: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (105, 105), color).save(buffer, format="PNG")
    return buffer.getvalue()


def test_load_omniglot_runs_errors(tmp_path):
    pytest.importorskip("PIL")
    with pytest.raises(FileNotFoundError, match=OMNIGLOT_URL):
        load_omniglot_runs(tmp_path / "missing.zip")
    path = tmp_path / "runs.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("all_runs/run01/training/class01.png", _png(255))
        archive.writestr("all_runs/run01/test/item01.png", _png(0))
        archive.writestr(
            "all_runs/run01/class_labels.txt",
            "run01/test/item01.png run01/training/class02.png\n",
        )
    with pytest.raises(ValueError, match="not in the zip"):
        load_omniglot_runs(path)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "nothing")
    with pytest.raises(ValueError, match="no 'runXX"):
        load_omniglot_runs(path)


def test_load_omniglot_runs_prefixed_folder(tmp_path):
    pytest.importorskip("PIL")
    path = tmp_path / "runs.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for j, color in enumerate((255, 0, 128), start=1):
            archive.writestr(f"all_runs/run02/training/class0{j}.png", _png(color))
            archive.writestr(f"all_runs/run02/test/item0{j}.png", _png(color))
        archive.writestr(
            "all_runs/run02/class_labels.txt",
            "run02/test/item02.png run02/training/class02.png\n"
            "run02/test/item01.png run02/training/class03.png\n"
            "run02/test/item03.png run02/training/class01.png\n",
        )
    [run] = load_omniglot_runs(path, size=5)
    assert run.name == "run02"
    assert run.query_labels.tolist() == [2, 1, 0]
    # Black (0) is a stroke, white (255) and light gray (128 >= 128) background.
    assert run.support[:, 0, 0, 0].tolist() == [0.0, 1.0, 0.0]


# ---------------------------------------------------------- IDX / Fashion


def _idx(magic: int, shape: tuple[int, ...], data: bytes) -> bytes:
    return struct.pack(f">I{len(shape)}I", magic, *shape) + data


def test_read_idx_types(tmp_path):
    values = np.arange(-3, 3, dtype=">i4").reshape(2, 3)
    path = tmp_path / "int32.idx"
    path.write_bytes(_idx(0x0C02, (2, 3), values.tobytes()))
    out = read_idx(path)
    assert out.dtype == np.int32 and out.dtype.isnative
    assert out.tolist() == [[-3, -2, -1], [0, 1, 2]]
    floats = np.array([0.5, -1.25], dtype=">f8")
    path.write_bytes(gzip.compress(_idx(0x0E01, (2,), floats.tobytes())))
    assert read_idx(path).tolist() == [0.5, -1.25]


def test_read_idx_errors(tmp_path):
    path = tmp_path / "bad"
    path.write_bytes(_idx(0x0801, (3,), bytes([1, 2, 3])))
    with pytest.raises(
        ValueError, match="magic number 0x00000801, expected 0x00000803"
    ):
        read_idx(path, magic=0x803)
    path.write_bytes(_idx(0x0801, (4,), bytes([1, 2, 3])))
    with pytest.raises(ValueError, match="needs 4"):
        read_idx(path)
    path.write_bytes(_idx(0x0A0801, (1,), bytes([1])))
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(path)
    path.write_bytes(_idx(0x0701, (1,), bytes([1])))
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(path)
    path.write_bytes(b"\x00\x00")
    with pytest.raises(ValueError, match="too short"):
        read_idx(path)


def _write_fashion(root: Path, split: str, images: np.ndarray, labels: np.ndarray):
    num = images.shape[0]
    (root / f"{split}-images-idx3-ubyte.gz").write_bytes(
        gzip.compress(_idx(0x803, (num, 28, 28), images.astype(np.uint8).tobytes()))
    )
    (root / f"{split}-labels-idx1-ubyte.gz").write_bytes(
        gzip.compress(_idx(0x801, (num,), labels.astype(np.uint8).tobytes()))
    )


def test_load_fashion_mnist_tiny(tmp_path):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(3, 28, 28))
    _write_fashion(tmp_path, "train", pixels, np.array([4, 0, 9]))
    images, labels = load_fashion_mnist(tmp_path, train=True)
    assert images.shape == (3, 1, 28, 28) and images.dtype == torch.float32
    assert torch.equal(images[:, 0], torch.from_numpy(pixels / 255.0).float())
    assert labels.dtype == torch.long and labels.tolist() == [4, 0, 9]


def test_load_fashion_mnist_errors(tmp_path):
    with pytest.raises(
        FileNotFoundError, match="apt-get install dataset-fashion-mnist"
    ):
        load_fashion_mnist(tmp_path, train=False)
    # Images and labels swapped: the magic numbers catch it.
    pixels = np.zeros((2, 28, 28))
    _write_fashion(tmp_path, "t10k", pixels, np.array([1, 2]))
    images_file = tmp_path / "t10k-images-idx3-ubyte.gz"
    labels_file = tmp_path / "t10k-labels-idx1-ubyte.gz"
    data = images_file.read_bytes()
    images_file.write_bytes(labels_file.read_bytes())
    labels_file.write_bytes(data)
    with pytest.raises(ValueError, match="expected 0x00000803"):
        load_fashion_mnist(tmp_path, train=False)
    _write_fashion(tmp_path, "t10k", pixels, np.array([1, 2]))
    labels_file.write_bytes(gzip.compress(_idx(0x801, (3,), bytes([1, 2, 3]))))
    with pytest.raises(ValueError, match="2 images but"):
        load_fashion_mnist(tmp_path, train=False)


def test_load_fashion_mnist_data_root_fallback(tmp_path, monkeypatch):
    import diffresnet_pyg.fewshot.images as images_module

    monkeypatch.setattr(
        images_module, "FASHION_MNIST_SYSTEM_ROOT", tmp_path / "nowhere"
    )
    monkeypatch.setenv("DIFFRESNET_PYG_DATA", str(tmp_path))
    (tmp_path / "fashion-mnist").mkdir()
    _write_fashion(tmp_path / "fashion-mnist", "t10k", np.ones((1, 28, 28)), np.ones(1))
    images, labels = load_fashion_mnist(train=False)
    assert images.shape == (1, 1, 28, 28) and labels.tolist() == [1]


@pytest.mark.skipif(
    not (FASHION_MNIST_SYSTEM_ROOT / "t10k-images-idx3-ubyte.gz").is_file(),
    reason="Debian package dataset-fashion-mnist not installed",
)
def test_load_fashion_mnist_real():
    images, labels = load_fashion_mnist(train=False)
    assert images.shape == (10_000, 1, 28, 28)
    assert float(images.min()) == 0.0 and float(images.max()) == 1.0
    assert torch.equal(labels.bincount(), torch.full((10,), 1000))
