r"""Per-episode feature preprocessing of the Diff-ResNet few-shot protocol.

The Diff-ResNet authors (``fewshot/train.py``, after SimpleShot and
LaplacianShot) transform the backbone features of an episode in three steps,
in this order:

.. math::
    \mathbf{x} &\leftarrow \mathbf{x} - \bar{\mathbf{x}}_{\text{base}}
    && \text{(centering, every row)} \\
    \mathbf{x} &\leftarrow \mathbf{x} / \lVert \mathbf{x} \rVert_2
    && \text{(L2 normalization, every row)} \\
    \mathbf{q}_j &\leftarrow \mathbf{q}_j + \Big(\frac{1}{|S|}
    \sum_{i \in S} \mathbf{s}_i - \frac{1}{|Q|} \sum_{k \in Q}
    \mathbf{q}_k\Big)
    && \text{(cross-domain shift, queries only)}

where :math:`\bar{\mathbf{x}}_{\text{base}}` is the mean feature of the base
(training) classes, :math:`\mathbf{s}_i` the support and :math:`\mathbf{q}_j`
the query features of one episode.
"""

from __future__ import annotations

from torch import Tensor

__all__ = ["preprocess_episodes"]


def preprocess_episodes(
    support: Tensor,
    query: Tensor,
    *,
    base_mean: Tensor | None = None,
    center: bool = True,
    normalize: bool = True,
    shift: bool = True,
) -> tuple[Tensor, Tensor]:
    r"""Centers, L2-normalizes and shifts the features of a batch of episodes.

    Applies, in this order and each only when its flag is set,

    .. math::
        \mathbf{x} \leftarrow \mathbf{x} - \bar{\mathbf{x}}_{\text{base}},
        \qquad
        \mathbf{x} \leftarrow \frac{\mathbf{x}}{\lVert \mathbf{x} \rVert_2},
        \qquad
        \mathbf{q}_j \leftarrow \mathbf{q}_j + \operatorname{mean}_i
        \mathbf{s}_i - \operatorname{mean}_k \mathbf{q}_k,

    exactly as the Diff-ResNet authors' ``train.py``: the first two steps act
    on every support and query row, the shift on the queries of each episode
    (so that their mean equals the support mean). Rows that are zero after
    centering give non-finite values under normalization, as in the original.
    The inputs are not modified.

    Args:
        support (torch.Tensor): Support features ``[B, S, d]`` (or ``[S, d]``).
        query (torch.Tensor): Query features ``[B, Q, d]`` (or ``[Q, d]``).
        base_mean (torch.Tensor, optional): The base-class mean ``[d]``
            (:meth:`ClassFeatures.mean` of the base classes), cast to the dtype
            and device of :obj:`support`; required when :obj:`center` is set.
            (default: :obj:`None`)
        center (bool, optional): Subtract :obj:`base_mean`. (default: :obj:`True`)
        normalize (bool, optional): Divide each row by its L2 norm.
            (default: :obj:`True`)
        shift (bool, optional): Shift the queries by the support mean minus the
            query mean. (default: :obj:`True`)

    Returns:
        (torch.Tensor, torch.Tensor): The preprocessed support and query
        features, shaped like the inputs.

    Raises:
        TypeError: If :obj:`support` or :obj:`query` is not a floating-point
            tensor, or :obj:`base_mean` is not a tensor.
        ValueError: If the shapes disagree, or :obj:`center` is set without
            :obj:`base_mean`.

    Example:
        >>> import torch
        >>> support = torch.tensor([[[3.0, 4.0], [0.0, 2.0]]])
        >>> query = torch.tensor([[[1.0, 0.0]]])
        >>> s, q = preprocess_episodes(support, query, center=False)
        >>> s
        tensor([[[0.6000, 0.8000],
                 [0.0000, 1.0000]]])
        >>> q
        tensor([[[0.3000, 0.9000]]])
    """
    where = "preprocess_episodes"
    for name, value in (("support", support), ("query", query)):
        if not isinstance(value, Tensor) or not value.is_floating_point():
            kind = value.dtype if isinstance(value, Tensor) else type(value).__name__
            raise TypeError(
                f"{where}: '{name}' must be a floating-point tensor, got {kind}"
            )
    if support.dim() not in (2, 3) or support.dim() != query.dim():
        raise ValueError(
            f"{where}: 'support' and 'query' must both be 3-D [B, n, d] or both "
            f"2-D [n, d], got shapes {list(support.shape)} and {list(query.shape)}"
        )
    if support.shape[:-2] != query.shape[:-2] or support.size(-1) != query.size(-1):
        raise ValueError(
            f"{where}: 'support' {list(support.shape)} and 'query' "
            f"{list(query.shape)} must have the same number of episodes and the "
            f"same feature dimension"
        )
    if center:
        if base_mean is None:
            raise ValueError(
                f"{where}: center=True needs 'base_mean' (the mean feature of the "
                f"base classes); pass it or set center=False"
            )
        if not isinstance(base_mean, Tensor):
            raise TypeError(
                f"{where}: 'base_mean' must be a torch.Tensor, got "
                f"{type(base_mean).__name__}"
            )
        if base_mean.shape != support.shape[-1:]:
            raise ValueError(
                f"{where}: 'base_mean' must have shape [{support.size(-1)}] (the "
                f"feature dimension), got {list(base_mean.shape)}"
            )
        base_mean = base_mean.to(dtype=support.dtype, device=support.device)
        support = support - base_mean
        query = query - base_mean
    if normalize:
        support = support / support.norm(dim=-1, keepdim=True)
        query = query / query.norm(dim=-1, keepdim=True)
    if shift:
        eta = support.mean(dim=-2, keepdim=True) - query.mean(dim=-2, keepdim=True)
        query = query + eta
    return support, query
