r"""Vectorized sampling of N-way K-shot few-shot episodes.

An episode (task) draws :math:`N` (``way``) distinct classes uniformly at random
from the :math:`C` classes of a :class:`~diffresnet_pyg.fewshot.features.ClassFeatures`
table, then :math:`K + Q` (``shot + query``) distinct rows of each drawn class
uniformly at random; the first :math:`K` rows of class :math:`i` are its labelled
*support* samples, the other :math:`Q` its unlabelled *query* samples, and the
class gets the episode label :math:`i \in \{0, \dots, N - 1\}`. This is the
protocol of the Diff-ResNet authors' ``sample_task`` (``random.sample`` of the
classes, then of each class's rows), drawn for thousands of episodes at once
with random sort keys:

.. math::
    (c_1, \dots, c_N) = \operatorname{argsort}(\mathbf{u})_{1:N},
    \qquad \mathbf{u} \sim \mathcal{U}(0, 1)^C,

and likewise for the rows of each drawn class (keys beyond the class's count
are :math:`+\infty`, so classes of different sizes share one batched sort).

:func:`sample_episodes` returns an :class:`EpisodeIndex` (row indices only);
:meth:`EpisodeIndex.gather` materializes a chunk of it as :class:`Episodes`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from diffresnet_pyg.fewshot.features import ClassFeatures

__all__ = ["EpisodeIndex", "Episodes", "sample_episodes"]

# Upper bound on the number of random keys drawn at once (2**22 floats = 16 MiB).
_BLOCK_ENTRIES = 2**22
_INF = float("inf")


def _check_positive_int(value: object, name: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{where}: '{name}' must be an integer >= 1, got {value!r}")
    return value


def _check_index_tensor(value: object, name: str, shape: tuple[int, ...]) -> None:
    if not isinstance(value, Tensor) or value.dtype != torch.long:
        kind = value.dtype if isinstance(value, Tensor) else type(value).__name__
        raise TypeError(f"EpisodeIndex: '{name}' must be a long tensor, got {kind}")
    if tuple(value.shape) != shape:
        raise ValueError(
            f"EpisodeIndex: '{name}' must have shape {list(shape)}, got "
            f"{list(value.shape)}"
        )


def _class_major_labels(
    num_episodes: int, way: int, per_class: int, device: torch.device
) -> Tensor:
    """Labels ``arange(way).repeat_interleave(per_class)`` for every episode."""
    labels = torch.arange(way, device=device).repeat_interleave(per_class)
    return labels.unsqueeze(0).repeat(num_episodes, 1)


@dataclass(frozen=True)
class Episodes:
    r"""The features of a batch of :math:`B` materialized episodes.

    Both sets are class-major: rows ``i * shot ... (i + 1) * shot - 1`` of the
    support set (``i * query ...`` of the query set) belong to episode class
    :math:`i`, so ``support_labels[b] = arange(way).repeat_interleave(shot)``.

    Args:
        support (torch.Tensor): Shape ``[B, way * shot, d]``.
        query (torch.Tensor): Shape ``[B, way * query_per_class, d]``.
        support_labels (torch.Tensor): Shape ``[B, way * shot]`` (long).
        query_labels (torch.Tensor): Shape ``[B, way * query_per_class]`` (long).
        way (int): Classes per episode :math:`N`.
        shot (int): Support samples per class :math:`K`.
        query_per_class (int): Query samples per class :math:`Q`.

    Raises:
        ValueError: If the shapes disagree with ``way``, ``shot`` and
            ``query_per_class``.
    """

    support: Tensor
    query: Tensor
    support_labels: Tensor
    query_labels: Tensor
    way: int
    shot: int
    query_per_class: int

    def __post_init__(self) -> None:
        way = _check_positive_int(self.way, "way", "Episodes")
        shot = _check_positive_int(self.shot, "shot", "Episodes")
        query = _check_positive_int(self.query_per_class, "query_per_class", "Episodes")
        if self.support.dim() != 3 or self.query.dim() != 3:
            raise ValueError(
                f"Episodes: 'support' and 'query' must be 3-D [B, n, d], got shapes "
                f"{list(self.support.shape)} and {list(self.query.shape)}"
            )
        num, dim = self.support.size(0), self.support.size(2)
        expected = {
            "support": ((num, way * shot, dim), self.support),
            "query": ((num, way * query, dim), self.query),
            "support_labels": ((num, way * shot), self.support_labels),
            "query_labels": ((num, way * query), self.query_labels),
        }
        for name, (shape, value) in expected.items():
            if tuple(value.shape) != shape:
                raise ValueError(
                    f"Episodes: '{name}' must have shape {list(shape)} (way={way}, "
                    f"shot={shot}, query_per_class={query}), got {list(value.shape)}"
                )

    def __len__(self) -> int:
        return self.support.size(0)

    def nodes(self) -> Tensor:
        """All samples of each episode, ``[B, way * (shot + query), d]``.

        Support rows come first, then query rows (the transductive node set).
        """
        return torch.cat([self.support, self.query], dim=1)


@dataclass(frozen=True)
class EpisodeIndex:
    r"""The row indices of :math:`B` sampled episodes (cheap to keep by thousands).

    Indices refer to rows of the
    :class:`~diffresnet_pyg.fewshot.features.ClassFeatures` they were sampled
    from and are class-major like
    :class:`Episodes`: ``support[b, i * shot + k]`` is the :math:`k`-th support
    row of the episode's class :math:`i`, which is class ``classes[b, i]`` of the
    table. Slicing (``index[a:b]``) gives a chunk of episodes.

    Args:
        support (torch.Tensor): Shape ``[B, way * shot]`` (long).
        query (torch.Tensor): Shape ``[B, way * query_per_class]`` (long).
        classes (torch.Tensor): Shape ``[B, way]`` (long).
        way (int): Classes per episode :math:`N`.
        shot (int): Support samples per class :math:`K`.
        query_per_class (int): Query samples per class :math:`Q`.

    Raises:
        TypeError: If an index tensor is not a long tensor.
        ValueError: If the shapes disagree with ``way``, ``shot`` and
            ``query_per_class``.
    """

    support: Tensor
    query: Tensor
    classes: Tensor
    way: int
    shot: int
    query_per_class: int

    def __post_init__(self) -> None:
        way = _check_positive_int(self.way, "way", "EpisodeIndex")
        shot = _check_positive_int(self.shot, "shot", "EpisodeIndex")
        query = _check_positive_int(
            self.query_per_class, "query_per_class", "EpisodeIndex"
        )
        if not isinstance(self.classes, Tensor) or self.classes.dim() != 2:
            raise ValueError(
                f"EpisodeIndex: 'classes' must be a 2-D tensor [B, way], got "
                f"{getattr(self.classes, 'shape', type(self.classes).__name__)}"
            )
        num = self.classes.size(0)
        _check_index_tensor(self.classes, "classes", (num, way))
        _check_index_tensor(self.support, "support", (num, way * shot))
        _check_index_tensor(self.query, "query", (num, way * query))

    def __len__(self) -> int:
        return self.classes.size(0)

    def __getitem__(self, index: slice) -> EpisodeIndex:
        """The episodes selected by a slice, as a new :class:`EpisodeIndex`.

        Raises:
            TypeError: If :obj:`index` is not a slice.
        """
        if not isinstance(index, slice):
            raise TypeError(
                f"EpisodeIndex: index with a slice (index[a:b]), got "
                f"{type(index).__name__}"
            )
        return EpisodeIndex(
            self.support[index],
            self.query[index],
            self.classes[index],
            self.way,
            self.shot,
            self.query_per_class,
        )

    def split(self, chunk_size: int) -> list[EpisodeIndex]:
        """Consecutive chunks of at most :obj:`chunk_size` episodes.

        Raises:
            ValueError: If :obj:`chunk_size` is not a positive integer.
        """
        chunk_size = _check_positive_int(chunk_size, "chunk_size", "EpisodeIndex.split")
        return [self[i : i + chunk_size] for i in range(0, len(self), chunk_size)]

    def gather(self, features: ClassFeatures) -> Episodes:
        r"""Materializes the episodes' features (on the features' device).

        Args:
            features (ClassFeatures): The table the indices were sampled from.

        Returns:
            Episodes: ``support = features.features[self.support]`` and
            ``query = features.features[self.query]`` with class-major labels.

        Raises:
            TypeError: If :obj:`features` is not a :class:`ClassFeatures`.
            ValueError: If the indices do not fit :obj:`features`.

        Example:
            >>> feats = ClassFeatures.from_tensor(torch.randn(4, 5, 3))
            >>> gen = torch.Generator().manual_seed(0)
            >>> index = sample_episodes(feats, way=2, shot=1, query=2,
            ...                         num_episodes=10, generator=gen)
            >>> ep = index[:4].gather(feats)
            >>> ep.support.shape, ep.query.shape, ep.query_labels[0].tolist()
            (torch.Size([4, 2, 3]), torch.Size([4, 4, 3]), [0, 0, 1, 1])
        """
        if not isinstance(features, ClassFeatures):
            raise TypeError(
                f"EpisodeIndex.gather: 'features' must be a ClassFeatures, got "
                f"{type(features).__name__}"
            )
        num_rows = features.features.size(0)
        for name, value, bound in (
            ("support", self.support, num_rows),
            ("query", self.query, num_rows),
            ("classes", self.classes, features.num_classes),
        ):
            if value.numel() > 0 and (
                int(value.min()) < 0 or int(value.max()) >= bound
            ):
                raise ValueError(
                    f"EpisodeIndex.gather: '{name}' indices must lie in [0, {bound}) "
                    f"for these features, got [{int(value.min())}, "
                    f"{int(value.max())}]: were they sampled from another table?"
                )
        x = features.features
        device = x.device
        num = len(self)
        return Episodes(
            support=x[self.support.to(device)],
            query=x[self.query.to(device)],
            support_labels=_class_major_labels(num, self.way, self.shot, device),
            query_labels=_class_major_labels(
                num, self.way, self.query_per_class, device
            ),
            way=self.way,
            shot=self.shot,
            query_per_class=self.query_per_class,
        )


def sample_episodes(
    features: ClassFeatures,
    way: int,
    shot: int,
    query: int,
    num_episodes: int,
    generator: torch.Generator,
) -> EpisodeIndex:
    r"""Samples :obj:`num_episodes` N-way K-shot episodes with Q queries per class.

    Each episode takes ``way`` distinct classes uniformly at random, then
    ``shot + query`` distinct rows of each of them uniformly at random (support
    first, then query), independently of the other episodes. All episodes are
    drawn by batched sorts of uniform random keys, in chunks of bounded memory;
    the result depends only on the arguments and the generator's state.

    Args:
        features (ClassFeatures): The classes to sample from (novel classes).
        way (int): Classes per episode :math:`N`.
        shot (int): Support samples per class :math:`K`.
        query (int): Query samples per class :math:`Q`.
        num_episodes (int): Number of episodes :math:`B`.
        generator (torch.Generator): The source of randomness; the indices are
            created on its device.

    Returns:
        EpisodeIndex: Row indices (``support [B, way * shot]``,
        ``query [B, way * query]``) and classes (``[B, way]``).

    Raises:
        TypeError: If :obj:`features` or :obj:`generator` has the wrong type.
        ValueError: If an integer argument is not positive, there are fewer than
            ``way`` classes, or a class has fewer than ``shot + query`` rows.

    Example:
        >>> feats = ClassFeatures.from_tensor(torch.randn(10, 20, 8))
        >>> gen = torch.Generator().manual_seed(0)
        >>> index = sample_episodes(feats, way=5, shot=1, query=15,
        ...                         num_episodes=1000, generator=gen)
        >>> len(index), index.support.shape, index.query.shape
        (1000, torch.Size([1000, 5]), torch.Size([1000, 75]))
    """
    where = "sample_episodes"
    if not isinstance(features, ClassFeatures):
        raise TypeError(
            f"{where}: 'features' must be a ClassFeatures, got "
            f"{type(features).__name__}"
        )
    way = _check_positive_int(way, "way", where)
    shot = _check_positive_int(shot, "shot", where)
    query = _check_positive_int(query, "query", where)
    num_episodes = _check_positive_int(num_episodes, "num_episodes", where)
    if not isinstance(generator, torch.Generator):
        raise TypeError(
            f"{where}: 'generator' must be a torch.Generator, got "
            f"{type(generator).__name__}"
        )
    num_classes = features.num_classes
    if num_classes < way:
        raise ValueError(
            f"{where}: way={way} needs at least {way} classes, the features have "
            f"{num_classes}"
        )
    per_class = shot + query
    counts_cpu = features.counts.cpu()
    small = (counts_cpu < per_class).nonzero().flatten()
    if small.numel() > 0:
        c = int(small[0])
        raise ValueError(
            f"{where}: shot + query = {shot} + {query} = {per_class} samples per "
            f"class are needed, but class {features.class_names[c]!r} (position "
            f"{c}) has {int(counts_cpu[c])}; {small.numel()} class(es) are too small"
        )

    device = generator.device
    ptr = features.ptr.to(device)
    counts = ptr[1:] - ptr[:-1]
    max_count = int(counts_cpu.max())
    columns = torch.arange(max_count, device=device)
    # Episodes per chunk so that neither key block exceeds _BLOCK_ENTRIES.
    chunk = max(1, _BLOCK_ENTRIES // max(num_classes, way * max_count))

    supports, queries, classes = [], [], []
    for start in range(0, num_episodes, chunk):
        size = min(chunk, num_episodes - start)
        class_keys = torch.rand(size, num_classes, generator=generator, device=device)
        chosen = class_keys.topk(way, dim=1, largest=False, sorted=True).indices
        # One row of keys per (episode, class); +inf beyond the class's count.
        flat = chosen.reshape(-1)
        row_keys = torch.rand(size * way, max_count, generator=generator, device=device)
        row_keys.masked_fill_(columns.unsqueeze(0) >= counts[flat].unsqueeze(1), _INF)
        offsets = row_keys.topk(per_class, dim=1, largest=False, sorted=True).indices
        rows = (ptr[flat].unsqueeze(1) + offsets).view(size, way, per_class)
        supports.append(rows[:, :, :shot].reshape(size, way * shot))
        queries.append(rows[:, :, shot:].reshape(size, way * query))
        classes.append(chosen)
    return EpisodeIndex(
        support=torch.cat(supports),
        query=torch.cat(queries),
        classes=torch.cat(classes),
        way=way,
        shot=shot,
        query_per_class=query,
    )
