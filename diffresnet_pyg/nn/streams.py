r"""Per-run random streams: each member of a batch draws from its own generators.

A run trained alone (its plain model, after ``torch.manual_seed(seed)``)
draws its initialization and then its dropout masks from the global
generators. A :class:`MemberStream` captures that stream right after the
member is built, so the run can be trained inside a batch and still draw
exactly the random numbers it would draw alone:

* a plain model runs inside :meth:`MemberStream.installed`, which puts the
  member's state into the global generators (the CPU one and, on an
  accelerator, the device's) for the call and takes it back afterwards;
* a stacked model of ``B`` members draws member :math:`b`'s masks from
  member :math:`b`'s generators (:func:`member_dropout`), in the order, shape
  and operation the plain model uses, so member :math:`b`'s masks equal those
  of its plain model.

The device generators follow :func:`torch.manual_seed`: a member built after
``torch.manual_seed(seed)`` on the CPU has drawn nothing on the device, so its
device generator is a fresh one seeded with ``seed``.

On the CPU :func:`torch.nn.functional.dropout` is ``bernoulli_(1 - p)`` on a
tensor of the input's shape, which :func:`member_dropout` repeats bit for bit
(tested). On CUDA it is a fused kernel with its own use of the generator, so
there a stacked member's masks depend only on its own stream but are not the
ones its plain model draws; a plain model in :meth:`MemberStream.installed`
is exact on every device.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

__all__ = ["MemberStream", "member_dropout", "member_generators"]


class MemberStream:
    """The random stream of one run: its CPU generator and its device ones.

    Args:
        seed (int): The seed the member was built after
            (``torch.manual_seed(seed)``); seeds its device generators.
        cpu (torch.Generator, optional): The CPU generator; by default a copy
            of the global CPU generator as it is now (call right after
            building the member).

    Example:
        >>> _ = torch.manual_seed(3)
        >>> stream = MemberStream(3)
        >>> a = torch.rand(2)
        >>> torch.equal(torch.rand(2, generator=stream.generator("cpu")), a)
        True
    """

    def __init__(self, seed: int, cpu: torch.Generator | None = None) -> None:
        self.seed = int(seed)
        if cpu is None:
            cpu = torch.Generator()
            cpu.set_state(torch.get_rng_state())
        self.cpu = cpu
        self._devices: dict[torch.device, torch.Generator] = {}

    def generator(self, device: torch.device | str) -> torch.Generator:
        """The member's generator of ``device`` (the CPU one for the CPU)."""
        device = torch.device(device)
        if device.type == "cpu":
            return self.cpu
        if device.index is None and device.type == "cuda":
            device = torch.device("cuda", torch.cuda.current_device())
        if device not in self._devices:
            generator = torch.Generator(device=device)
            generator.manual_seed(self.seed)
            self._devices[device] = generator
        return self._devices[device]

    @contextlib.contextmanager
    def installed(self, device: torch.device | str = "cpu") -> Iterator[None]:
        """Make the member's generators the global ones for the block.

        The global CPU generator (and, for a CUDA ``device``, that device's
        default generator) holds the member's state inside the block; after
        it, the member's generators hold what the block left, and the global
        generators are back where they were.
        """
        device = torch.device(device)
        saved = torch.get_rng_state()
        torch.set_rng_state(self.cpu.get_state())
        cuda = device.type == "cuda"
        if cuda:
            own = self.generator(device)
            device = own.device  # with its index
            saved_device = torch.cuda.get_rng_state(device)
            torch.cuda.set_rng_state(own.get_state(), device)
        try:
            yield
        finally:
            self.cpu.set_state(torch.get_rng_state())
            torch.set_rng_state(saved)
            if cuda:
                own.set_state(torch.cuda.get_rng_state(device))
                torch.cuda.set_rng_state(saved_device, device)

    def get_state(self) -> dict[str, Any]:
        """The generators' states, for :meth:`set_state` (e.g. in a checkpoint).

        Example:
            >>> stream = MemberStream(0, torch.Generator().manual_seed(0))
            >>> state = stream.get_state()
            >>> a = torch.rand(2, generator=stream.cpu)
            >>> stream.set_state(state)
            >>> torch.equal(torch.rand(2, generator=stream.cpu), a)
            True
        """
        return {
            "seed": self.seed,
            "cpu": self.cpu.get_state(),
            "devices": {str(d): g.get_state() for d, g in self._devices.items()},
        }

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Put the generators back in the states :meth:`get_state` returned."""
        if int(state["seed"]) != self.seed:
            raise ValueError(
                f"the state is of a stream seeded with {state['seed']}, not {self.seed}"
            )
        self.cpu.set_state(state["cpu"])
        for device, generator_state in state["devices"].items():
            self.generator(device).set_state(generator_state)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(seed={self.seed})"


def member_generators(
    streams: Sequence[MemberStream] | None, device: torch.device | str
) -> list[torch.Generator] | None:
    """Each member's generator of ``device`` (:obj:`None` without streams)."""
    if streams is None:
        return None
    return [stream.generator(device) for stream in streams]


def member_dropout(
    x: Tensor,
    p: float,
    training: bool,
    generators: Sequence[torch.Generator] | None,
) -> Tensor:
    r"""Dropout of ``[N, B, ...]`` activations, member ``b``'s from generator ``b``.

    Member :math:`b`'s mask is drawn as :func:`torch.nn.functional.dropout`
    draws the mask of its ``[N, ...]`` slice alone (``bernoulli_(1 - p)`` on
    a tensor of that shape, then the ``1 / (1 - p)`` scaling), so it equals
    the mask the member's plain model draws from a generator in the same
    state. Without ``generators`` it is one
    :func:`~torch.nn.functional.dropout` over all members (one draw from the
    global generator).

    Args:
        x (torch.Tensor): Activations with the members on dimension 1.
        p (float): Drop probability in ``[0, 1)``.
        training (bool): Apply dropout (else return ``x``).
        generators (sequence of torch.Generator, optional): One per member,
            on ``x``'s device.

    Example:
        >>> import torch.nn.functional as F
        >>> x = torch.randn(4, 2, 3)
        >>> g = [torch.Generator().manual_seed(s) for s in (1, 2)]
        >>> out = member_dropout(x, 0.5, True, g)
        >>> _ = torch.manual_seed(2)
        >>> torch.equal(out[:, 1], F.dropout(x[:, 1], 0.5, True))
        True
    """
    if not training or p == 0.0:
        return x
    if generators is None:
        return torch.nn.functional.dropout(x, p, True)
    if len(generators) != x.size(1):
        raise ValueError(
            f"member_dropout: {len(generators)} generators for {x.size(1)} members"
        )
    noise = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    for b, generator in enumerate(generators):
        noise[:, b].bernoulli_(1.0 - p, generator=generator)
    noise.div_(1.0 - p)
    return x * noise
