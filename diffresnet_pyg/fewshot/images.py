r"""Image datasets for few-shot experiments: Omniglot and Fashion-MNIST.

All loaders return float32 images :math:`[N, 1, s, s]` with values in
:math:`[0, 1]` and class indices :math:`[N]` (``torch.long``), read from the
files their upstreams publish, without downloading anything:

* :func:`load_omniglot`: the Omniglot background (964 characters) or
  evaluation (659 characters) set, 20 drawings each, from the ``.npz`` files of
  github ``bitsandscraps/omniglot`` (pixel-identical to Lake et al.'s PNGs).
  Strokes are 1, background 0: the files store ``True`` for the white
  background, as Lake et al.'s PNGs do (black strokes on white), so the loader
  inverts them.
* :func:`load_omniglot_runs`: the 20 official 20-way 1-shot runs of
  `Lake et al., Science 2015 <https://github.com/brendenlake/omniglot>`_, read
  from ``all_runs.zip`` without extracting it, with the same polarity.
* :func:`load_fashion_mnist`: the standard Fashion-MNIST IDX files
  (:func:`read_idx` parses the IDX format).

Downsampling from :math:`105 \times 105` uses area interpolation
(:func:`torch.nn.functional.interpolate` with ``mode="area"``, i.e. adaptive
average pooling: each output pixel is the mean of the input pixels its window
covers).
"""

from __future__ import annotations

import gzip
import io
import logging
import math
import re
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from diffresnet_pyg.data.root import resolve_root
from diffresnet_pyg.typing import PathLike

__all__ = [
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_SYSTEM_ROOT",
    "FASHION_MNIST_URL",
    "OMNIGLOT_SIZE",
    "OMNIGLOT_URL",
    "OmniglotRun",
    "load_fashion_mnist",
    "load_omniglot",
    "load_omniglot_runs",
    "read_idx",
]

logger = logging.getLogger(__name__)


#: Upstream of Omniglot (the background/evaluation sets and ``all_runs.zip``).
OMNIGLOT_URL = "https://github.com/brendenlake/omniglot"

#: Side length of the original Omniglot images.
OMNIGLOT_SIZE = 105

#: Upstream of Fashion-MNIST.
FASHION_MNIST_URL = "https://github.com/zalandoresearch/fashion-mnist"

#: Where the Debian package ``dataset-fashion-mnist`` installs the IDX files.
FASHION_MNIST_SYSTEM_ROOT = Path("/usr/share/datasets/fashion-mnist")

#: Fashion-MNIST class names, by label.
FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

# IDX type codes (third byte of the magic number) -> big-endian numpy dtype.
_IDX_DTYPES: dict[int, str] = {
    0x08: "u1",
    0x09: "i1",
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}

# Magic numbers of the (Fashion-)MNIST files: unsigned bytes, 3-D / 1-D.
_IDX_IMAGES_MAGIC = 0x00000803
_IDX_LABELS_MAGIC = 0x00000801

# Images converted to float per chunk (bounds the peak memory of the resize).
_CHUNK = 1024


def _check_size(size: int) -> int:
    if isinstance(size, bool) or not isinstance(size, int):
        raise TypeError(f"'size' must be an int, got {type(size).__name__}")
    if not 1 <= size <= OMNIGLOT_SIZE:
        raise ValueError(
            f"'size' must be in [1, {OMNIGLOT_SIZE}] (images are only "
            f"downsampled), got {size}"
        )
    return size


def _strokes(background: np.ndarray, size: int) -> Tensor:
    """Boolean images ``[N, H, W]`` (True = background) -> strokes ``[N, 1, s, s]``.

    Converted and resized in chunks so that the float copy at full size never
    exists for all images at once.
    """
    num = background.shape[0]
    out = torch.empty(num, 1, size, size, dtype=torch.float32)
    for start in range(0, num, _CHUNK):
        chunk = torch.from_numpy(~background[start : start + _CHUNK])
        chunk = chunk.unsqueeze(1).to(torch.float32)
        if chunk.shape[-2:] != (size, size):
            chunk = F.interpolate(chunk, size=(size, size), mode="area")
        out[start : start + chunk.size(0)] = chunk
    return out


def load_omniglot(
    root: PathLike | None = None, background: bool = True, size: int = 28
) -> tuple[Tensor, Tensor]:
    r"""Load the Omniglot background or evaluation set.

    Reads ``images_background.npz`` (964 characters) or
    ``images_evaluation.npz`` (659 characters): ``images`` (bool,
    :math:`[C, 20, 105, 105]`, ``True`` on the white background) and
    ``labels`` (int, :math:`[C, 20]`). Images are inverted (strokes become 1)
    and downsampled with area interpolation (adaptive average pooling): with
    :math:`b` the stored image and :math:`s` the output size,

    .. math::
        y_{uv} = \frac{1}{|R_u| |R_v|} \sum_{i \in R_u} \sum_{j \in R_v}
        (1 - b_{ij}), \qquad
        R_u = \left\{\left\lfloor \tfrac{105 u}{s} \right\rfloor, \dots,
        \left\lceil \tfrac{105 (u + 1)}{s} \right\rceil - 1\right\},

    so values lie in :math:`[0, 1]` (neighbouring windows share a row or
    column when :math:`105 / s` is not an integer).

    Args:
        root (str or os.PathLike, optional): The folder that holds the ``.npz``
            files. :obj:`None` means ``<data root>/omniglot`` with the data root
            from :func:`~diffresnet_pyg.data.resolve_root`.
            (default: :obj:`None`)
        background (bool, optional): The background set if :obj:`True`, else
            the evaluation set. (default: :obj:`True`)
        size (int, optional): Output side length, at most 105.
            (default: :obj:`28`)

    Returns:
        (torch.Tensor, torch.Tensor): ``images`` :math:`[20 C, 1, s, s]` float32
        in :math:`[0, 1]` (stroke = 1) and ``labels`` :math:`[20 C]` long in
        :math:`[0, C)`, grouped by character (the file's labels renumbered
        :math:`0, \dots, C - 1` in sorted order).

    Raises:
        FileNotFoundError: If the ``.npz`` file is missing.
        ValueError: If the file does not have the layout above or :obj:`size`
            is out of range.

    Example:
        >>> import tempfile, pathlib, numpy as np
        >>> from diffresnet_pyg.fewshot.images import load_omniglot
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> blank = np.ones((2, 20, 105, 105), dtype=bool)  # all background
        >>> blank[:, :, 50:55, :] = False  # a horizontal stroke
        >>> labels = np.repeat(np.arange(2)[:, None], 20, axis=1)
        >>> np.savez(root / "images_evaluation.npz", images=blank, labels=labels)
        >>> images, labels = load_omniglot(root, background=False, size=21)
        >>> images.shape, labels.shape
        (torch.Size([40, 1, 21, 21]), torch.Size([40]))
        >>> images[0, 0, 10].tolist() == [1.0] * 21  # stroke pixels are 1
        True
    """
    size = _check_size(size)
    folder = (
        resolve_root(None) / "omniglot" if root is None else Path(root).expanduser()
    )
    name = "images_background.npz" if background else "images_evaluation.npz"
    path = folder / name
    if not path.is_file():
        raise FileNotFoundError(
            f"Omniglot file {path} not found. Get {name} from the npz release of "
            f"{OMNIGLOT_URL} (e.g. github bitsandscraps/omniglot) and put it in "
            f"{folder}, or pass 'root' (the folder holding the .npz files)."
        )
    with np.load(path, allow_pickle=False) as npz:
        missing = {"images", "labels"} - set(npz.files)
        if missing:
            raise ValueError(
                f"{path}: missing keys {sorted(missing)} (found {sorted(npz.files)})"
            )
        images = npz["images"]
        labels = npz["labels"]
    if images.dtype != np.bool_ or images.ndim != 4:
        raise ValueError(
            f"{path}: 'images' must be a bool array [C, drawers, H, W], got "
            f"{images.dtype} {images.shape}"
        )
    if images.shape[-2:] != (OMNIGLOT_SIZE, OMNIGLOT_SIZE):
        raise ValueError(
            f"{path}: images must be {OMNIGLOT_SIZE}x{OMNIGLOT_SIZE}, got "
            f"{images.shape[-2]}x{images.shape[-1]}"
        )
    if labels.shape != images.shape[:2] or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"{path}: 'labels' must be integers of shape {images.shape[:2]}, got "
            f"{labels.dtype} {labels.shape}"
        )
    _, inverse = np.unique(labels.reshape(-1), return_inverse=True)
    out = _strokes(images.reshape(-1, OMNIGLOT_SIZE, OMNIGLOT_SIZE), size)
    logger.debug("loaded %s: %d images at %dx%d", path, out.size(0), size, size)
    return out, torch.from_numpy(inverse.reshape(-1).astype(np.int64))


@dataclass(frozen=True)
class OmniglotRun:
    r"""One official Omniglot one-shot run of Lake et al.

    Support image :math:`j` is the single example of class :math:`j`; query
    :math:`i` shows the class of support image :obj:`query_labels[i]`.

    Args:
        name (str): The run's folder name, e.g. ``"run01"``.
        support (torch.Tensor): The ``training/classXX.png`` images in file
            order, :math:`[N_s, 1, s, s]` float32, stroke = 1.
        query (torch.Tensor): The ``test/itemXX.png`` images in file order,
            :math:`[N_q, 1, s, s]`.
        query_labels (torch.Tensor): :math:`[N_q]` long, the index of the
            support image of the same class (from ``class_labels.txt``).
    """

    name: str
    support: Tensor
    query: Tensor
    query_labels: Tensor

    @property
    def way(self) -> int:
        """Number of classes (one support image each)."""
        return self.support.size(0)

    @property
    def support_labels(self) -> Tensor:
        """Support labels :math:`[N_s]`: image :math:`j` is class :math:`j`."""
        return torch.arange(self.way)


_RUN_FILE = re.compile(r"^(?P<prefix>(?:.*/)?)(?P<run>run\d+)/class_labels\.txt$")


def _decode_strokes(data: bytes, name: str) -> np.ndarray:
    """A PNG (black strokes on white) -> bool array, ``True`` on background."""
    try:
        from PIL import Image
    except ImportError as error:  # pragma: no cover - Pillow ships with matplotlib
        raise ImportError(
            "load_omniglot_runs needs Pillow to decode PNGs: pip install pillow"
        ) from error
    with Image.open(io.BytesIO(data)) as image:
        pixels = np.asarray(image.convert("L"))
    if pixels.shape != (OMNIGLOT_SIZE, OMNIGLOT_SIZE):
        raise ValueError(
            f"{name}: expected a {OMNIGLOT_SIZE}x{OMNIGLOT_SIZE} image, got "
            f"{pixels.shape[1]}x{pixels.shape[0]}"
        )
    return pixels >= 128


def load_omniglot_runs(
    zip_path: PathLike | None = None, size: int = 28
) -> list[OmniglotRun]:
    r"""Load the 20 official 20-way 1-shot Omniglot runs from ``all_runs.zip``.

    The zip (``python/one-shot-classification/all_runs.zip`` of Lake et al.'s
    repository) holds ``runXX/training/classYY.png`` (one image per class),
    ``runXX/test/itemYY.png`` and ``runXX/class_labels.txt`` whose lines read
    ``runXX/test/itemYY.png runXX/training/classZZ.png``. It is read in place.
    In the official runs every class has exactly one query, so
    :obj:`query_labels` is a permutation of :math:`0, \dots, 19`. Images get
    the polarity and resizing of :func:`load_omniglot` (stroke = 1, area
    interpolation); they are drawings of the evaluation set's characters.

    Args:
        zip_path (str or os.PathLike, optional): The zip file. :obj:`None`
            means ``<data root>/omniglot/all_runs.zip`` with the data root from
            :func:`~diffresnet_pyg.data.resolve_root`. (default: :obj:`None`)
        size (int, optional): Output side length, at most 105.
            (default: :obj:`28`)

    Returns:
        list[OmniglotRun]: The runs sorted by name.

    Raises:
        FileNotFoundError: If the zip file is missing.
        ValueError: If the zip has no run, or a run's ``class_labels.txt`` does
            not map each test image to an existing training image exactly once.
        ImportError: If Pillow (PNG decoding) is not installed.

    Example:
        >>> import io, pathlib, tempfile, zipfile
        >>> from PIL import Image
        >>> from diffresnet_pyg.fewshot.images import load_omniglot_runs
        >>> def png(color):
        ...     buffer = io.BytesIO()
        ...     Image.new("L", (105, 105), color).save(buffer, format="PNG")
        ...     return buffer.getvalue()
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "all_runs.zip"
        >>> with zipfile.ZipFile(path, "w") as archive:
        ...     archive.writestr("run01/training/class01.png", png(255))
        ...     archive.writestr("run01/training/class02.png", png(0))
        ...     archive.writestr("run01/test/item01.png", png(0))
        ...     archive.writestr("run01/test/item02.png", png(255))
        ...     archive.writestr("run01/class_labels.txt",
        ...         "run01/test/item01.png run01/training/class02.png\n"
        ...         "run01/test/item02.png run01/training/class01.png\n")
        >>> [run] = load_omniglot_runs(path, size=7)
        >>> run.name, run.support.shape, run.query_labels.tolist()
        ('run01', torch.Size([2, 1, 7, 7]), [1, 0])
        >>> run.support[:, 0, 0, 0].tolist()  # white = 0, black (stroke) = 1
        [0.0, 1.0]
    """
    size = _check_size(size)
    path = (
        resolve_root(None) / "omniglot" / "all_runs.zip"
        if zip_path is None
        else Path(zip_path).expanduser()
    )
    if not path.is_file():
        raise FileNotFoundError(
            f"Omniglot runs file {path} not found. Get all_runs.zip from "
            f"{OMNIGLOT_URL} (python/one-shot-classification/all_runs.zip) or "
            "pass 'zip_path'."
        )
    runs = []
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        for match in sorted(
            filter(None, map(_RUN_FILE.match, names)), key=lambda m: m["run"]
        ):
            folder = f"{match['prefix']}{match['run']}/"
            support_names = sorted(
                n
                for n in names
                if n.startswith(f"{folder}training/") and n.endswith(".png")
            )
            query_names = sorted(
                n
                for n in names
                if n.startswith(f"{folder}test/") and n.endswith(".png")
            )
            text = archive.read(match.group(0)).decode("utf-8")
            labels = _parse_class_labels(
                text, match["prefix"], support_names, query_names, match.group(0)
            )
            support = np.stack(
                [_decode_strokes(archive.read(n), n) for n in support_names]
            )
            query = np.stack([_decode_strokes(archive.read(n), n) for n in query_names])
            runs.append(
                OmniglotRun(
                    name=match["run"],
                    support=_strokes(support, size),
                    query=_strokes(query, size),
                    query_labels=torch.tensor(labels, dtype=torch.long),
                )
            )
    if not runs:
        raise ValueError(f"{path}: no 'runXX/class_labels.txt' found in the zip")
    logger.debug("loaded %d Omniglot runs from %s", len(runs), path)
    return runs


def _parse_class_labels(
    text: str,
    prefix: str,
    support_names: list[str],
    query_names: list[str],
    where: str,
) -> list[int]:
    """Index of the matching support image for each query image, in file order."""
    pairs = {}
    for line in text.splitlines():
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2:
            raise ValueError(
                f"{where}: expected 'test_image training_image', got {line!r}"
            )
        query, support = (prefix + field for field in fields)
        if query in pairs:
            raise ValueError(f"{where}: {fields[0]} is listed twice")
        pairs[query] = support
    if sorted(pairs) != query_names:
        raise ValueError(
            f"{where}: the listed test images {sorted(pairs)} differ from the "
            f"test images in the zip {query_names}"
        )
    position = {name: j for j, name in enumerate(support_names)}
    unknown = sorted(set(pairs.values()) - set(position))
    if unknown:
        raise ValueError(f"{where}: training images {unknown} are not in the zip")
    return [position[pairs[name]] for name in query_names]


def read_idx(path: PathLike, *, magic: int | None = None) -> np.ndarray:
    r"""Read an IDX file (the MNIST format), gzip-compressed or not.

    The header is a big-endian 32-bit magic number ``0x0000TTDD`` (``TT`` the
    element type: ``0x08`` uint8, ``0x09`` int8, ``0x0B`` int16, ``0x0C``
    int32, ``0x0D`` float32, ``0x0E`` float64; ``DD`` the number of
    dimensions), then one big-endian 32-bit size per dimension, then the data
    in C order.

    Args:
        path (str or os.PathLike): The file (``.gz`` detected by content).
        magic (int, optional): If given, the magic number the file must have,
            e.g. ``0x00000803`` for uint8 images :math:`[N, H, W]`.
            (default: :obj:`None`)

    Returns:
        numpy.ndarray: The array, in native byte order.

    Raises:
        ValueError: If the header is not a valid IDX header, the magic number
            differs from :obj:`magic`, or the data size does not match it.

    Example:
        >>> import pathlib, struct, tempfile
        >>> from diffresnet_pyg.fewshot.images import read_idx
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "labels-idx1-ubyte"
        >>> _ = path.write_bytes(struct.pack(">IIBBB", 0x801, 3, 7, 0, 9))
        >>> read_idx(path, magic=0x801).tolist()
        [7, 0, 9]
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4:
        raise ValueError(f"{path}: too short for an IDX header ({len(raw)} bytes)")
    found = int.from_bytes(raw[:4], "big")
    if magic is not None and found != magic:
        raise ValueError(
            f"{path}: IDX magic number {found:#010x}, expected {magic:#010x}"
        )
    type_code, ndim = raw[2], raw[3]
    if raw[:2] != b"\x00\x00" or type_code not in _IDX_DTYPES:
        raise ValueError(
            f"{path}: not an IDX file (magic number {found:#010x}; expected "
            "0x0000TTDD with type TT in 08, 09, 0b, 0c, 0d, 0e)"
        )
    offset = 4 + 4 * ndim
    if len(raw) < offset:
        raise ValueError(f"{path}: IDX header truncated ({ndim} dimensions)")
    shape = struct.unpack(f">{ndim}I", raw[4:offset])
    dtype = np.dtype(_IDX_DTYPES[type_code])
    expected = math.prod(shape) * dtype.itemsize
    if len(raw) - offset != expected:
        raise ValueError(
            f"{path}: IDX data has {len(raw) - offset} bytes, the header "
            f"{shape} of {dtype} needs {expected}"
        )
    array = np.frombuffer(raw, dtype=dtype, offset=offset).reshape(shape)
    return array.astype(dtype.newbyteorder("="))


def _idx_file(folder: Path, stem: str) -> Path | None:
    for name in (f"{stem}.gz", stem):
        if (folder / name).is_file():
            return folder / name
    return None


def load_fashion_mnist(
    root: PathLike | None = None, train: bool = True
) -> tuple[Tensor, Tensor]:
    r"""Load Fashion-MNIST from its standard IDX files.

    Reads ``{train,t10k}-images-idx3-ubyte[.gz]`` (magic ``0x00000803``) and
    ``{train,t10k}-labels-idx1-ubyte[.gz]`` (magic ``0x00000801``); pixels are
    scaled as :math:`x / 255` (Fashion-MNIST stores objects bright on black).

    Args:
        root (str or os.PathLike, optional): The folder that holds the files.
            :obj:`None` means the first of
            ``/usr/share/datasets/fashion-mnist`` (Debian package
            ``dataset-fashion-mnist``) and ``<data root>/fashion-mnist`` (see
            :func:`~diffresnet_pyg.data.resolve_root`) that holds them.
            (default: :obj:`None`)
        train (bool, optional): The 60,000 training images if :obj:`True`,
            else the 10,000 test images. (default: :obj:`True`)

    Returns:
        (torch.Tensor, torch.Tensor): ``images`` :math:`[N, 1, 28, 28]`
        float32 in :math:`[0, 1]` and ``labels`` :math:`[N]` long in
        :math:`[0, 10)` (names in :obj:`FASHION_MNIST_CLASSES`).

    Raises:
        FileNotFoundError: If the files are missing.
        ValueError: If a file is not the expected IDX file or the image and
            label counts differ.

    Example:
        >>> import gzip, pathlib, struct, tempfile
        >>> from diffresnet_pyg.fewshot.images import load_fashion_mnist
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> pixels = bytes(range(0, 255, 5))[:28] * 28 * 2  # two images
        >>> _ = (root / "t10k-images-idx3-ubyte.gz").write_bytes(
        ...     gzip.compress(struct.pack(">IIII", 0x803, 2, 28, 28) + pixels))
        >>> _ = (root / "t10k-labels-idx1-ubyte.gz").write_bytes(
        ...     gzip.compress(struct.pack(">IIBB", 0x801, 2, 9, 0)))
        >>> images, labels = load_fashion_mnist(root, train=False)
        >>> images.shape, labels.tolist(), round(float(images[0, 0, 0, 1]) * 255)
        (torch.Size([2, 1, 28, 28]), [9, 0], 5)
    """
    split = "train" if train else "t10k"
    stems = (f"{split}-images-idx3-ubyte", f"{split}-labels-idx1-ubyte")
    folders = (
        [Path(root).expanduser()]
        if root is not None
        else [FASHION_MNIST_SYSTEM_ROOT, resolve_root(None) / "fashion-mnist"]
    )
    for folder in folders:
        files = [_idx_file(folder, stem) for stem in stems]
        if files[0] is not None and files[1] is not None:
            break
    else:
        searched = ", ".join(str(f) for f in folders)
        raise FileNotFoundError(
            f"Fashion-MNIST files {stems[0]}.gz and {stems[1]}.gz not found in "
            f"{searched}. Install them with 'apt-get install dataset-fashion-mnist' "
            f"(Debian/Ubuntu) or download them from {FASHION_MNIST_URL}, or pass "
            "'root' (the folder holding the files)."
        )
    images = read_idx(files[0], magic=_IDX_IMAGES_MAGIC)
    labels = read_idx(files[1], magic=_IDX_LABELS_MAGIC)
    if images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"{files[0]} has {images.shape[0]} images but {files[1]} has "
            f"{labels.shape[0]} labels"
        )
    logger.debug("loaded %s: %d images", files[0], images.shape[0])
    out = torch.from_numpy(images).unsqueeze(1).to(torch.float32).div_(255.0)
    return out, torch.from_numpy(labels.astype(np.int64))
