"""Episode features for a few-shot config: backbones, caching, pools.

:func:`prepare_features` turns a :class:`~diffresnet_pyg.experiments.
fewshot_config.FeaturesConfig` into the class-indexed features that episodes
are drawn from, plus the base-class mean used for centring:

- ``omniglot_conv4``: a Conv-4 is trained with cross-entropy on Omniglot's
  background classes except the last ``val_classes`` (held out as validation
  classes); the 659 evaluation classes are the test classes. The base mean is
  the mean feature of the training classes.
- ``fashion_mnist_efficientnet``: the frozen ImageNet EfficientNet-Lite0 on
  Fashion-MNIST (cross-domain). The test pool is the test split, the
  validation pool the training split (same ten classes, other images: the
  only way to have validation episodes with ten classes); the base mean is
  the training split's mean feature, with no test image in it.
- ``file``: precomputed feature files (:func:`~diffresnet_pyg.fewshot.
  features.load_feature_file`); the base mean is the mean of ``base_path``.

Backbone checkpoints and extracted features are cached under
``<features.cache>/fewshot`` (default ``~/.cache/diffresnet_pyg/cache``, see
:func:`~diffresnet_pyg.data.resolve_cache`; never the data root, which may be
read-only), keyed by every setting that changes them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from diffresnet_pyg.data import resolve_cache, resolve_root
from diffresnet_pyg.experiments.fewshot_config import FeaturesConfig
from diffresnet_pyg.fewshot.backbones import (
    Conv4,
    EfficientNetLite0Features,
    extract_features,
    load_backbone,
    save_backbone,
    train_backbone,
)
from diffresnet_pyg.fewshot.features import ClassFeatures, load_feature_file
from diffresnet_pyg.fewshot.images import (
    load_fashion_mnist,
    load_omniglot,
    load_omniglot_runs,
)

__all__ = ["FeaturePools", "official_run_features", "prepare_features"]

logger = logging.getLogger(__name__)

#: Conv-4 training recipe on Omniglot (fixed; the epochs and seed are config).
_CONV4_BATCH = 128


@dataclass(frozen=True)
class FeaturePools:
    """Class-indexed features of the test and validation classes.

    Attributes:
        test: The test (novel) classes.
        val: The validation classes (:obj:`None` if the source has none).
        base: Base-class feature rows ``[M, d]`` (:obj:`None` if unknown).
        projection: ``(mean, components)`` of a PCA fitted on the base
            features (``features.pca_dim``), already applied to the pools;
            :obj:`None` without PCA.
    """

    test: ClassFeatures
    val: ClassFeatures | None
    base: Tensor | None
    projection: tuple[Tensor, Tensor] | None = None

    @property
    def base_mean(self) -> Tensor | None:
        """The base-class mean feature (centring), :obj:`None` if unknown."""
        return None if self.base is None else self.base.mean(dim=0)

    def transform(self, x: Tensor) -> Tensor:
        r"""Apply the PCA projection :math:`(x - \mu) V_k` (identity without)."""
        if self.projection is None:
            return x
        mean, components = self.projection
        return (x - mean) @ components


def _with_pca(pools: FeaturePools, dim: int | None) -> FeaturePools:
    """Project every pool onto the top ``dim`` principal axes of the base."""
    if dim is None:
        return pools
    if pools.base is None:
        raise ValueError("features.pca_dim: needs base-class features to fit on")
    if dim > pools.test.dim:
        raise ValueError(
            f"features.pca_dim: {dim} is more than the {pools.test.dim} feature dims"
        )
    base = pools.base.double()
    mean = base.mean(dim=0)
    _, _, vh = torch.linalg.svd(base - mean, full_matrices=False)
    dtype = pools.test.features.dtype
    projection = (mean.to(dtype), vh[:dim].T.contiguous().to(dtype))
    partial = FeaturePools(pools.test, pools.val, pools.base, projection)

    def project(cf: ClassFeatures | None) -> ClassFeatures | None:
        if cf is None:
            return None
        return ClassFeatures(partial.transform(cf.features), cf.ptr, cf.class_names)

    return FeaturePools(
        project(pools.test),
        project(pools.val),
        partial.transform(pools.base),
        projection,
    )


def _cache_dir(config: FeaturesConfig) -> Path:
    return resolve_cache(config.cache) / "fewshot"


def _conv4(config: FeaturesConfig, progress: bool) -> tuple[Conv4, str]:
    """The trained (or cached) Conv-4 and its cache key."""
    key = (
        f"omniglot_conv4_v{config.val_classes}_e{config.backbone_epochs}"
        f"_lr{config.backbone_lr:g}_s{config.backbone_seed}"
    )
    path = _cache_dir(config) / f"{key}.pt"
    if path.is_file():
        logger.info("loading the Conv-4 checkpoint %s", path)
        return load_backbone(path)[0], key
    images, labels = load_omniglot(_omniglot_root(config), background=True)
    num_train = int(labels.max()) + 1 - config.val_classes
    keep = labels < num_train
    logger.info(
        "training a Conv-4 on %d Omniglot background classes (%d images, %d epochs)",
        num_train,
        int(keep.sum()),
        config.backbone_epochs,
    )
    generator = torch.Generator().manual_seed(config.backbone_seed)

    model = train_backbone(
        Conv4(generator=generator),
        images[keep],
        labels[keep],
        epochs=config.backbone_epochs,
        batch_size=_CONV4_BATCH,
        lr=config.backbone_lr,
        generator=generator,
        progress=progress,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    save_backbone(path, model, {"source": key, "classes": num_train})
    logger.info("saved the Conv-4 checkpoint %s", path)
    return model, key


def _omniglot_root(config: FeaturesConfig) -> Path:
    return resolve_root(config.root) / "omniglot"


def _cached(path: Path, compute: callable) -> dict[str, Tensor]:
    if path.is_file():
        return torch.load(path, weights_only=True)
    value = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(value, tmp)
    tmp.replace(path)
    return value


def _omniglot_pools(config: FeaturesConfig, progress: bool) -> FeaturePools:
    model, key = _conv4(config, progress)

    def compute() -> dict[str, Tensor]:
        root = _omniglot_root(config)
        bg_images, bg_labels = load_omniglot(root, background=True)
        ev_images, ev_labels = load_omniglot(root, background=False)
        return {
            "bg": extract_features(model, bg_images, progress=progress),
            "bg_labels": bg_labels,
            "ev": extract_features(model, ev_images, progress=progress),
            "ev_labels": ev_labels,
        }

    data = _cached(_cache_dir(config) / f"{key}_features.pt", compute)
    num_train = int(data["bg_labels"].max()) + 1 - config.val_classes
    train = data["bg_labels"] < num_train
    val = ClassFeatures.from_labels(
        data["bg"][~train], data["bg_labels"][~train] - num_train
    )
    test = ClassFeatures.from_labels(data["ev"], data["ev_labels"])
    return FeaturePools(test=test, val=val, base=data["bg"][train])


def _efficientnet(config: FeaturesConfig) -> EfficientNetLite0Features:
    return EfficientNetLite0Features(image_size=config.image_size)


def _fashion_pools(config: FeaturesConfig, progress: bool) -> FeaturePools:
    limit = config.image_limit
    key = f"fashion_mnist_effnet_lite0_{config.image_size}_n{limit or 'all'}"

    def compute() -> dict[str, Tensor]:
        model = _efficientnet(config)
        out = {}
        for split, train in (("train", True), ("test", False)):
            images, labels = load_fashion_mnist(train=train)
            if limit is not None:
                images, labels = images[:limit], labels[:limit]
            logger.info(
                "EfficientNet-Lite0 features of %d %s images", len(images), split
            )
            out[split] = extract_features(model, images, progress=progress)
            out[f"{split}_labels"] = labels
        return out

    data = _cached(_cache_dir(config) / f"{key}.pt", compute)
    test = ClassFeatures.from_labels(data["test"], data["test_labels"])
    val = ClassFeatures.from_labels(data["train"], data["train_labels"])
    return FeaturePools(test=test, val=val, base=data["train"])


def _file_pools(config: FeaturesConfig) -> FeaturePools:
    test = load_feature_file(config.path)
    val = None if config.val_path is None else load_feature_file(config.val_path)
    base = None
    if config.base_path is not None:
        base = load_feature_file(config.base_path).features
    for name, dim in (
        ("val_path", None if val is None else val.dim),
        ("base_path", None if base is None else base.size(1)),
    ):
        if dim is not None and dim != test.dim:
            raise ValueError(
                f"features.{name}: {dim}-d features, but features.path has {test.dim}-d"
            )
    return FeaturePools(test=test, val=val, base=base)


def prepare_features(config: FeaturesConfig, *, progress: bool = True) -> FeaturePools:
    """The feature pools of ``config`` (training/extracting and caching).

    Args:
        config: The ``features`` section.
        progress: Show progress bars while training or extracting.

    Returns:
        FeaturePools: Test and validation pools and the base-class mean.
    """
    if config.source == "omniglot_conv4":
        pools = _omniglot_pools(config, progress)
    elif config.source == "fashion_mnist_efficientnet":
        pools = _fashion_pools(config, progress)
    else:
        pools = _file_pools(config)
    return _with_pca(pools, config.pca_dim)


def official_run_features(
    config: FeaturesConfig, pools: FeaturePools, *, progress: bool = True
) -> list[tuple[Tensor, Tensor, Tensor]]:
    """Features of Lake et al.'s 20 official Omniglot 20-way 1-shot runs.

    Args:
        config: The ``features`` section (an image source).
        pools: The source's pools (their PCA projection is applied).
        progress: Show progress bars.

    Returns:
        list: Per run ``(support [20, d], query [20, d], query_labels [20])``;
        support image ``i`` has label ``i``.
    """
    if config.source == "omniglot_conv4":
        model, _ = _conv4(config, progress)
    elif config.source == "fashion_mnist_efficientnet":
        model = _efficientnet(config)
    else:
        raise ValueError("official Omniglot runs need an image feature source")
    zip_path = _omniglot_root(config) / "all_runs.zip"
    out = []
    for run in load_omniglot_runs(zip_path):
        support = extract_features(model, run.support, progress=False)
        query = extract_features(model, run.query, progress=False)
        out.append((pools.transform(support), pools.transform(query), run.query_labels))
    return out
