r"""Few-shot learning: episodes, feature graphs and methods.

Every episode is a small graph: its support and query features are the nodes
and the authors' truncated Gaussian kernel
(:func:`~diffresnet_pyg.nn.gaussian_weight_matrix`) the edges. The pieces:

- :mod:`~diffresnet_pyg.fewshot.features`: class-indexed features
  (:class:`ClassFeatures`) and the common feature-file formats
  (miniImageNet / tieredImageNet / CUB pickles, ``.npz``).
- :mod:`~diffresnet_pyg.fewshot.episodes`: N-way K-shot episodes sampled with
  an explicit generator (:func:`sample_episodes`), as indices, gathered in
  chunks.
- :mod:`~diffresnet_pyg.fewshot.preprocess`: base-mean centring, L2
  normalization and query shift (:func:`preprocess_episodes`).
- :mod:`~diffresnet_pyg.fewshot.methods`: nearest prototype, LaplacianShot and
  the per-episode residual network (convection, external and internal
  convection-diffusion = Diff-ResNet), all batched over episodes.
- :mod:`~diffresnet_pyg.fewshot.images` and
  :mod:`~diffresnet_pyg.fewshot.backbones`: Omniglot, Fashion-MNIST, a Conv-4
  trained here and the frozen ImageNet EfficientNet-Lite0.

Example:
    >>> import torch
    >>> from diffresnet_pyg.fewshot import (ClassFeatures, nearest_prototype,
    ...     preprocess_episodes, sample_episodes)
    >>> g = torch.Generator().manual_seed(0)
    >>> centers = 4 * torch.randn(10, 1, 16, generator=g)
    >>> pool = ClassFeatures.from_tensor(centers + torch.randn(10, 30, 16, generator=g))
    >>> index = sample_episodes(pool, way=5, shot=1, query=15, num_episodes=50,
    ...                         generator=g)
    >>> ep = index.gather(pool)
    >>> support, query = preprocess_episodes(ep.support, ep.query,
    ...                                      base_mean=pool.mean())
    >>> scores = nearest_prototype(support, ep.support_labels, query, way=5)
    >>> scores.shape
    torch.Size([50, 75, 5])
    >>> bool((scores.argmax(-1) == ep.query_labels).float().mean() > 0.9)
    True
"""

from diffresnet_pyg.fewshot.backbones import (
    Conv4,
    EfficientNetLite0Features,
    extract_features,
    load_backbone,
    save_backbone,
    train_backbone,
)
from diffresnet_pyg.fewshot.episodes import EpisodeIndex, Episodes, sample_episodes
from diffresnet_pyg.fewshot.features import (
    ClassFeatures,
    load_feature_file,
    save_feature_file,
)
from diffresnet_pyg.fewshot.images import (
    OmniglotRun,
    load_fashion_mnist,
    load_omniglot,
    load_omniglot_runs,
)
from diffresnet_pyg.fewshot.methods import (
    EpisodeNetConfig,
    diffusion_operator,
    init_episode_nets,
    laplacian_shot,
    nearest_prototype,
    train_episode_nets,
)
from diffresnet_pyg.fewshot.preprocess import preprocess_episodes

__all__ = [
    "ClassFeatures",
    "Conv4",
    "EfficientNetLite0Features",
    "EpisodeIndex",
    "EpisodeNetConfig",
    "Episodes",
    "OmniglotRun",
    "diffusion_operator",
    "extract_features",
    "init_episode_nets",
    "laplacian_shot",
    "load_backbone",
    "load_fashion_mnist",
    "load_feature_file",
    "load_omniglot",
    "load_omniglot_runs",
    "nearest_prototype",
    "preprocess_episodes",
    "sample_episodes",
    "save_backbone",
    "save_feature_file",
    "train_backbone",
    "train_episode_nets",
]
