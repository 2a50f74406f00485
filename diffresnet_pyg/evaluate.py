r"""The one place metrics are computed: an :class:`Evaluator`, dict in, dict out.

Modelled on OGB's ``Evaluator``: name the metrics once, then pass the labels
and the predictions of every evaluation as a dictionary; the inputs are
checked (shapes, dtypes, emptiness) with messages that say what was expected.

Example:
    >>> import torch
    >>> evaluator = Evaluator()
    >>> y_true = torch.tensor([0, 1, 2, 1])
    >>> evaluator.eval({"y_true": y_true, "y_pred": torch.tensor([0, 1, 1, 1])})
    {'acc': 0.75}
    >>> scores = torch.tensor([[[0.9, 0.1], [0.2, 0.8]], [[0.3, 0.7], [0.6, 0.4]]])
    >>> evaluator.eval_batch({"y_true": torch.tensor([[0, 1], [0, 1]]),
    ...                       "y_pred": scores})
    {'acc': tensor([1., 0.], dtype=torch.float64)}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

__all__ = ["METRICS", "Evaluator"]

#: The metrics an :class:`Evaluator` computes: name and meaning.
METRICS = {
    "acc": "accuracy: the fraction of predictions equal to the label "
    "(float64 correct / total)",
    "num_correct": "the number of predictions equal to the label (int64)",
}


def _is_integer(dtype: torch.dtype) -> bool:
    return not (dtype.is_floating_point or dtype.is_complex or dtype == torch.bool)


class Evaluator:
    r"""Computes classification metrics from labels and predictions.

    Inputs are a dictionary with

    * ``"y_true"``: integer class labels;
    * ``"y_pred"``: either the predicted labels (an integer tensor of
      ``y_true``'s shape) or scores / logits with one more, last dimension
      over the classes (a floating tensor; the prediction is their
      :obj:`argmax`, the first maximum on ties).

    :meth:`eval` takes one set of predictions (``y_true`` of shape ``[N]``)
    and returns Python numbers; :meth:`eval_batch` takes ``B`` independent
    sets at once (``y_true`` of shape ``[B, N]``: the members of a batched
    model, the episodes of a few-shot batch) and returns one value per set,
    as tensors on the inputs' device (no synchronization with the host).

    ``"acc"`` is ``(pred == y_true)`` as float64, averaged: the number of
    correct predictions over their total, exactly (sums of zeros and ones
    are exact in float64), whatever the summation order.

    Args:
        metrics (str or sequence of str, optional): The metrics to compute,
            from :data:`METRICS`. (default: :obj:`"acc"`)

    Shapes:
        - **eval input:** ``y_true`` :math:`(N)`, ``y_pred`` :math:`(N)` or
          :math:`(N, C)`
        - **eval_batch input:** ``y_true`` :math:`(B, N)`, ``y_pred``
          :math:`(B, N)` or :math:`(B, N, C)`
        - **eval_batch output:** one :math:`(B)` tensor per metric

    Example:
        >>> import torch
        >>> evaluator = Evaluator(["acc", "num_correct"])
        >>> logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0]])
        >>> evaluator.eval({"y_true": torch.tensor([0, 1, 1]), "y_pred": logits})
        {'acc': 0.6666666666666666, 'num_correct': 2}
    """

    def __init__(self, metrics: str | Sequence[str] = "acc") -> None:
        names = (metrics,) if isinstance(metrics, str) else tuple(metrics)
        unknown = [m for m in names if m not in METRICS]
        if not names or unknown:
            raise ValueError(
                f"metrics must be names from {sorted(METRICS)}; "
                + (f"unknown: {unknown}" if unknown else "got none")
            )
        if len(set(names)) != len(names):
            raise ValueError(f"metrics are named more than once: {list(names)}")
        self.metrics = names

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(metrics={list(self.metrics)})"

    @property
    def expected_input_format(self) -> str:
        """What :meth:`eval` and :meth:`eval_batch` take, in words."""
        return (
            "{'y_true': y_true, 'y_pred': y_pred}\n"
            "- y_true: integer torch.Tensor of labels, [N] (eval) or [B, N] "
            "(eval_batch)\n"
            "- y_pred: integer predicted labels of y_true's shape, or floating "
            "scores of shape y_true.shape + [num_classes] (argmax is taken)\n"
        )

    @property
    def expected_output_format(self) -> str:
        """What :meth:`eval` and :meth:`eval_batch` return, in words."""
        lines = [f"- {name}: {METRICS[name]}" for name in self.metrics]
        return (
            "{"
            + ", ".join(f"'{name}': {name}" for name in self.metrics)
            + "}\n"
            + "\n".join(lines)
            + "\n(numbers from eval; [B] tensors from eval_batch)\n"
        )

    def _parse(self, input_dict: Mapping[str, Any], batch_dims: int) -> Tensor:
        """Check the inputs; the boolean tensor of correct predictions."""
        if not isinstance(input_dict, Mapping):
            raise TypeError(
                "Evaluator input must be a dict with keys 'y_true' and 'y_pred', "
                f"got {type(input_dict).__name__}"
            )
        missing = [key for key in ("y_true", "y_pred") if key not in input_dict]
        if missing:
            raise ValueError(
                f"Evaluator input misses {missing}; expected\n"
                + self.expected_input_format
            )
        y_true, y_pred = input_dict["y_true"], input_dict["y_pred"]
        for key, value in (("y_true", y_true), ("y_pred", y_pred)):
            if not isinstance(value, Tensor):
                raise TypeError(
                    f"{key} must be a torch.Tensor, got {type(value).__name__}"
                )
        ndim = batch_dims + 1
        shape = "[N]" if batch_dims == 0 else "[B, N]"
        if y_true.dim() != ndim:
            raise ValueError(
                f"y_true must have shape {shape}, got {list(y_true.shape)}"
            )
        if not _is_integer(y_true.dtype):
            raise ValueError(f"y_true must hold integer labels, got {y_true.dtype}")
        if y_true.numel() == 0 or y_true.size(-1) == 0:
            raise ValueError(
                f"y_true is empty (shape {list(y_true.shape)}): accuracy needs "
                "at least one label per set"
            )
        if y_pred.device != y_true.device:
            raise ValueError(
                f"y_true and y_pred must be on one device, got {y_true.device} "
                f"and {y_pred.device}"
            )
        if y_pred.shape == y_true.shape:
            if not _is_integer(y_pred.dtype):
                raise ValueError(
                    f"y_pred of y_true's shape {list(y_true.shape)} must hold "
                    f"integer labels, got {y_pred.dtype}; pass scores with a "
                    "last dimension over the classes"
                )
            pred = y_pred
        elif y_pred.dim() == ndim + 1 and y_pred.shape[:-1] == y_true.shape:
            if not y_pred.dtype.is_floating_point:
                raise ValueError(
                    f"y_pred scores of shape {list(y_pred.shape)} must be "
                    f"floating point, got {y_pred.dtype}"
                )
            if y_pred.size(-1) == 0:
                raise ValueError("y_pred scores have no classes (last dimension 0)")
            pred = y_pred.argmax(-1)
        else:
            raise ValueError(
                f"y_pred must have y_true's shape {list(y_true.shape)} (labels) "
                f"or {list(y_true.shape) + ['C']} (scores), "
                f"got {list(y_pred.shape)}"
            )
        return pred == y_true

    def _compute(self, correct: Tensor) -> dict[str, Tensor]:
        out: dict[str, Tensor] = {}
        for name in self.metrics:
            if name == "acc":
                out[name] = correct.double().mean(-1)
            elif name == "num_correct":
                out[name] = correct.sum(-1)
        return out

    def eval(self, input_dict: Mapping[str, Any]) -> dict[str, float | int]:
        """The metrics of one set of predictions, as Python numbers.

        Args:
            input_dict (dict): ``y_true`` :math:`(N)` and ``y_pred``
                :math:`(N)` or :math:`(N, C)` (see the class).

        Returns:
            dict: One entry per metric (``float`` for ``"acc"``, ``int`` for
            ``"num_correct"``).

        Raises:
            ValueError: If a key is missing, the shapes do not match, a dtype
                is wrong or there are no labels.
            TypeError: If the input is not a dict of tensors.
        """
        values = self._compute(self._parse(input_dict, 0))
        return {
            name: int(value) if name == "num_correct" else float(value)
            for name, value in values.items()
        }

    def eval_batch(self, input_dict: Mapping[str, Any]) -> dict[str, Tensor]:
        """The metrics of ``B`` sets of predictions at once, one value per set.

        Args:
            input_dict (dict): ``y_true`` :math:`(B, N)` and ``y_pred``
                :math:`(B, N)` or :math:`(B, N, C)` (see the class).

        Returns:
            dict: One :math:`(B)` tensor per metric, on the inputs' device
            (float64 for ``"acc"``, int64 for ``"num_correct"``).

        Raises:
            ValueError: As :meth:`eval`.
            TypeError: As :meth:`eval`.
        """
        return self._compute(self._parse(input_dict, 1))
