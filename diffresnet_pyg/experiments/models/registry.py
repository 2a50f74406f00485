"""The model registry: every model a config can name, registered once.

A model is a builder ``build(in_channels, out_channels, **params) -> Module``
registered under a name with :func:`register_model`. Everything the config
schema, the runner and the reports need to know about it is derived from
that one registration:

* the config parameters are the builder's keyword parameters (all but
  ``in_channels`` and ``out_channels``, less ``exclude`` and ``fixed``), in
  signature order, with the signature's defaults unless ``defaults`` names
  another one;
* each parameter's validator is ``checks[name]``, else the standard one of
  its name (:data:`STANDARD_CHECKS`; any name ending in ``dropout`` is a
  probability in [0, 1)), else the one of its annotation (``int``,
  ``float``, ``bool``, ``str``, ``X | None``);
* parameters added to a builder after results were written with it are
  named in ``added``: a config writes them (:meth:`ModelSpec.written`, used by
  :func:`~diffresnet_pyg.experiments.schema.config_to_dict`) only when they
  differ from their default, so the ``config.yaml`` and fingerprint of every
  config that does not use them stay what they were;
* the stacked-weight form (``stack``) that trains many seeds as one model,
  whether the plain and stacked forms take sparse features, whether they take
  edge weights (``edge_weights``: called as ``model(x, edge_index,
  edge_weight)``), and the first-layer weights that
  ``train.weight_decay_on: first_layer`` decays.

Adding a model is one new module in :mod:`diffresnet_pyg.experiments.models`
that calls :func:`register_model`; the package imports every module in it.

Example:
    >>> spec = get_model("gcn")
    >>> [p.name for p in spec.params]
    ['hidden_channels', 'num_layers', 'dropout', 'input_dropout']
    >>> spec.validate({"dropout": 0.5})["hidden_channels"]
    64
    >>> spec.validate({"dropout": 1.5})
    Traceback (most recent call last):
    ...
    diffresnet_pyg.experiments.schema.ConfigError: model.dropout: expected a \
float >= 0 and < 1, got 1.5 (float)
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor
from torch.nn import Module

from diffresnet_pyg.experiments.schema.fields import (
    DROPOUT,
    POSITIVE_INT,
    Check,
    ConfigError,
    check_bool,
    check_choice,
    check_float,
    check_int,
    check_optional,
    check_str,
)
from diffresnet_pyg.experiments.training import SingleMember
from diffresnet_pyg.nn.streams import MemberStream

__all__ = [
    "STANDARD_CHECKS",
    "ModelChoice",
    "ModelParam",
    "ModelSpec",
    "build_members",
    "build_model",
    "first_layer_weights",
    "get_model",
    "model_names",
    "register_model",
]

#: Validators of the standard PyG argument names (``BasicGNN``'s), used when
#: a registration gives none of its own.
STANDARD_CHECKS: dict[str, Check] = {
    "hidden_channels": POSITIVE_INT,
    "num_layers": POSITIVE_INT,
    "heads": POSITIVE_INT,
    "dropout": DROPOUT,
}

_MODELS: dict[str, ModelSpec] = {}


@dataclass(frozen=True)
class ModelParam:
    """One config parameter of a registered model.

    Attributes:
        name: The keyword of the builder (and the key under ``model:``).
        default: The value when the config leaves it out.
        check: Its validator, ``check(value, key) -> value``.
        added: Added after results were written: left out of the written
            config while it holds its default.
    """

    name: str
    default: Any
    check: Check
    added: bool = False


@dataclass(frozen=True)
class ModelSpec:
    """A registered model (made by :func:`register_model`).

    Attributes:
        name: The ``model.name`` of configs.
        build: The builder, called as ``build(in_channels=...,
            out_channels=..., **params, **fixed)``.
        params: The config parameters, in signature order.
        fixed: Builder arguments always passed, not configurable.
        first_layer: The first-layer weight matrices of the plain or the
            stacked model.
        stack: Stacks plain models (one per seed) into one batched model;
            :obj:`None` if the model has no batched form.
        sparse_input: The plain model takes sparse CSR features (or a
            predicate of its parameters saying when it does).
        stacked_sparse_input: The stacked model takes sparse CSR features.
        check_together: Checks that involve several parameters; raises
            :class:`ConfigError`.
        edge_weights: The plain and stacked models take edge weights as the
            third argument of their forward (a model that ignores the graph
            may say so too).
        own_decays: Returns a built model's ``(parameters, weight decay)``
            pairs that replace ``train.weight_decay`` for those parameters
            (:obj:`None`: the model has none).
    """

    name: str
    build: Callable[..., Module]
    params: tuple[ModelParam, ...]
    fixed: Mapping[str, Any]
    first_layer: Callable[[Module], list[Tensor]]
    stack: Callable[[Sequence[Module]], Module] | None
    sparse_input: bool | Callable[[Mapping[str, Any]], bool]
    stacked_sparse_input: bool
    check_together: Callable[[Mapping[str, Any]], None] | None
    edge_weights: bool = False
    own_decays: Callable[[Module], list[tuple[list[Tensor], float]]] | None = None

    @property
    def batchable(self) -> bool:
        """Whether several seeds can train as one stacked model."""
        return self.stack is not None

    def takes_sparse(
        self, batched: bool, params: Mapping[str, Any] | None = None
    ) -> bool:
        """Whether the (stacked if ``batched``) model takes sparse features.

        ``params``: the model's parameters, for a ``sparse_input`` that
        depends on them (a callable); :obj:`None` reads it at the defaults.
        """
        if batched and self.stack is not None:
            return self.stacked_sparse_input
        if callable(self.sparse_input):
            return bool(self.sparse_input({**self.defaults(), **(params or {})}))
        return self.sparse_input

    def defaults(self) -> dict[str, Any]:
        """Every parameter at its default."""
        return {p.name: p.default for p in self.params}

    def written(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The parameters as a config writes them (and fingerprints them).

        Every parameter of ``params`` except the ``added`` ones that hold
        their default, in order.

        Example:
            >>> spec = get_model("diffresnet")
            >>> "input_dropout" in spec.written(spec.defaults())
            False
            >>> spec.written({**spec.defaults(), "input_dropout": 0.5})[
            ...     "input_dropout"]
            0.5
        """
        skip = {
            p.name
            for p in self.params
            if p.added and p.name in params and params[p.name] == p.default
        }
        return {k: v for k, v in params.items() if k not in skip}

    def validate(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Validate config parameters and fill in the defaults.

        Args:
            params: Parameters under ``model:`` (without ``name``).

        Returns:
            dict[str, Any]: Every parameter, in signature order, normalized
            by its validator (e.g. an int given for a float becomes a float).

        Raises:
            ConfigError: For an unknown parameter or a bad value, naming the
                dotted key (``model.<name>``).
        """
        if not isinstance(params, Mapping):
            raise ConfigError(
                f"model: expected a mapping of parameters, got {params!r} "
                f"({type(params).__name__})"
            )
        allowed = [p.name for p in self.params]
        for key in params:
            if key not in allowed:
                raise ConfigError(
                    f"model.{key}: not a parameter of model {self.name!r}; "
                    f"allowed: {', '.join(['name', *allowed])}"
                )
        values = {
            p.name: p.check(params.get(p.name, p.default), f"model.{p.name}")
            for p in self.params
        }
        if self.check_together is not None:
            self.check_together(values)
        return values


def _annotation_check(annotation: Any, where: str) -> Check:
    """The validator of a resolved type annotation."""
    args = typing.get_args(annotation)
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            return check_optional(_annotation_check(inner[0], where))
    if origin is typing.Literal and all(isinstance(a, str) for a in args):
        return check_choice(args)
    checks: dict[Any, Check] = {
        bool: check_bool,
        int: check_int(),
        float: check_float(),
        str: check_str(),
    }
    if annotation in checks:
        return checks[annotation]
    raise TypeError(
        f"{where}: no validator for annotation {annotation!r}; pass one in "
        "register_model(checks=...)"
    )


def _params(
    name: str,
    build: Callable[..., Module],
    checks: Mapping[str, Check],
    defaults: Mapping[str, Any],
    exclude: Sequence[str],
    fixed: Mapping[str, Any],
    added: Sequence[str] = (),
) -> tuple[ModelParam, ...]:
    """The config parameters of a builder, derived from its signature."""
    signature = inspect.signature(build)
    hints = typing.get_type_hints(build.__init__ if inspect.isclass(build) else build)
    names = list(signature.parameters)
    if not {"in_channels", "out_channels"} <= set(names):
        raise TypeError(
            f"model {name!r}: the builder must take 'in_channels' and "
            f"'out_channels', got {names}"
        )
    hidden = {"in_channels", "out_channels", *exclude, *fixed}
    for key in [*checks, *defaults, *exclude, *fixed, *added]:
        if key not in names:
            raise TypeError(f"model {name!r}: the builder has no parameter {key!r}")
    for key in added:
        if key in hidden:
            raise TypeError(f"model {name!r}: added parameter {key!r} is hidden")
    params = []
    for key, parameter in signature.parameters.items():
        if key in hidden:
            continue
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            raise TypeError(f"model {name!r}: *args/**kwargs cannot be config keys")
        default = defaults.get(key, parameter.default)
        if default is inspect.Parameter.empty:
            raise TypeError(
                f"model {name!r}: parameter {key!r} needs a default (in the "
                "signature or register_model(defaults=...))"
            )
        check = checks.get(key) or STANDARD_CHECKS.get(key)
        if check is None and key.endswith("dropout"):
            check = DROPOUT
        if check is None:
            check = _annotation_check(hints.get(key), f"model {name!r}, {key!r}")
        check(default, f"model {name!r} default of {key}")  # defaults must pass
        params.append(ModelParam(key, default, check, key in added))
    return tuple(params)


def register_model(
    name: str,
    *,
    first_layer: Callable[[Module], list[Tensor]],
    stack: Callable[[Sequence[Module]], Module] | None = None,
    sparse_input: bool | Callable[[Mapping[str, Any]], bool] = False,
    stacked_sparse_input: bool = True,
    checks: Mapping[str, Check] | None = None,
    defaults: Mapping[str, Any] | None = None,
    exclude: Sequence[str] = (),
    fixed: Mapping[str, Any] | None = None,
    check_together: Callable[[Mapping[str, Any]], None] | None = None,
    added: Sequence[str] = (),
    edge_weights: bool = False,
    own_decays: Callable[[Module], list[tuple[list[Tensor], float]]] | None = None,
) -> Callable[[Callable[..., Module]], Callable[..., Module]]:
    """Register a model builder under ``name`` (a decorator).

    Args:
        name: The ``model.name`` of configs; must be new.
        first_layer: Returns the weight matrices (no biases) of the first
            layer of the plain or the stacked model.
        stack: Stacks plain models into one batched model (:obj:`None`: no
            batched form; such runs train one at a time).
        sparse_input: The plain model takes sparse CSR features (or a
            predicate of its parameters saying when it does).
        stacked_sparse_input: The stacked model takes sparse CSR features.
        checks: Validators by parameter name (see the module docstring for
            the ones used otherwise).
        defaults: Config defaults that differ from the signature's.
        exclude: Builder parameters left at their signature default and not
            configurable.
        fixed: Builder arguments always passed, not configurable (e.g.
            ``cached=True``).
        check_together: Checks involving several parameters (given the
            validated parameters); raises :class:`ConfigError`.
        added: Parameters added to the builder after results were written
            with it: configs write them only when they differ from their
            default (:meth:`ModelSpec.written`), so existing ``config.yaml``
            files and fingerprints stay valid. Never remove a name from it.
        edge_weights: The plain and stacked models take the graph's edge
            weights, as ``model(x, edge_index, edge_weight)``. A graph with
            weights is refused for a model without (unless the config says
            ``dataset.edge_weights: ignore``).
        own_decays: Returns the plain model's ``(parameters, weight decay)``
            pairs that replace ``train.weight_decay`` for those parameters
            (e.g. GCNII's separate decay of its convolutions).

    Returns:
        The decorator; it returns the builder unchanged.

    Raises:
        ValueError: If ``name`` is taken.
        TypeError: If the builder's signature cannot define the parameters.
    """

    def decorator(build: Callable[..., Module]) -> Callable[..., Module]:
        if name in _MODELS:
            raise ValueError(f"model {name!r} is already registered")
        params = _params(
            name, build, checks or {}, defaults or {}, exclude, fixed or {}, added
        )
        _MODELS[name] = ModelSpec(
            name=name,
            build=build,
            params=params,
            fixed=dict(fixed or {}),
            first_layer=first_layer,
            stack=stack,
            sparse_input=sparse_input,
            stacked_sparse_input=stacked_sparse_input,
            check_together=check_together,
            edge_weights=edge_weights,
            own_decays=own_decays,
        )
        return build

    return decorator


def model_names() -> tuple[str, ...]:
    """The registered model names, in registration order."""
    return tuple(_MODELS)


def get_model(name: str) -> ModelSpec:
    """The registration of model ``name``.

    Raises:
        ValueError: For an unknown name, listing the registered ones.
    """
    spec = _MODELS.get(name)
    if spec is None:
        raise ValueError(
            f"unknown model {name!r}; registered: {', '.join(model_names())}"
        )
    return spec


class ModelChoice(Protocol):
    """A model name with its validated parameters (e.g. a ``ModelConfig``)."""

    name: str
    params: Mapping[str, Any]


def build_model(model: ModelChoice, in_channels: int, out_channels: int) -> Module:
    """The plain model of ``model`` (its parameters drawn from the global RNG).

    Args:
        model: A registered name and its validated parameters
            (:class:`~diffresnet_pyg.experiments.schema.ModelConfig`).
        in_channels: Input features.
        out_channels: Classes.
    """
    spec = get_model(model.name)
    return spec.build(
        in_channels=in_channels,
        out_channels=out_channels,
        **model.params,
        **spec.fixed,
    )


def build_members(
    model: ModelChoice,
    in_channels: int,
    out_channels: int,
    seeds: Sequence[int],
    *,
    stacked: bool | None = None,
) -> Module:
    """One member per seed, each built right after ``torch.manual_seed(seed)``.

    Each member gets its own random stream
    (:class:`~diffresnet_pyg.nn.streams.MemberStream`): the global state right
    after it was built, i.e. what its run would draw next if trained alone.
    Not stacked, the plain model is wrapped in
    :class:`~diffresnet_pyg.experiments.training.SingleMember` (exactly an
    unbatched run, its stream installed as the global one around each call);
    stacked, member :math:`b` of the batched model starts from the weights of
    the plain model seeded with ``seeds[b]`` and draws its dropout masks from
    its own stream. The global generators are left as the last member's
    build left them.

    Args:
        model: A registered name and its validated parameters.
        in_channels: Input features.
        out_channels: Classes.
        seeds: One init seed per member.
        stacked: Build the stacked model (even for one seed). (default:
            :obj:`None`: stacked for more than one seed)

    Raises:
        ValueError: Without seeds, or for several seeds (or ``stacked``) of
            a model without a batched form.
    """
    spec = get_model(model.name)
    if not seeds:
        raise ValueError("build_members needs at least one seed")
    if stacked is None:
        stacked = len(seeds) > 1
    if stacked and spec.stack is None:
        raise ValueError(
            f"model {model.name!r} has no batched form; use train.batch_members=1"
        )
    if len(seeds) > 1 and not stacked:
        raise ValueError("several seeds are built as one stacked model")
    members, streams = [], []
    for seed in seeds:
        torch.manual_seed(seed)
        members.append(build_model(model, in_channels, out_channels))
        streams.append(MemberStream(seed))
    if not stacked:
        return SingleMember(members[0], streams[0])
    assert spec.stack is not None
    batched = spec.stack(members)
    batched.streams = streams
    return batched


def own_weight_decays(
    model: ModelChoice, module: Module
) -> list[tuple[list[Tensor], float]]:
    """The ``(parameters, weight decay)`` pairs a built ``model`` sets itself.

    Empty for models without them; works on plain and single-member models.
    """
    spec = get_model(model.name)
    if isinstance(module, SingleMember):
        module = module.module
    return [] if spec.own_decays is None else spec.own_decays(module)


def first_layer_weights(model: ModelChoice, module: Module) -> list[Tensor]:
    """The first-layer weight matrices (no biases) of a built ``model``.

    The parameters ``train.weight_decay_on: first_layer`` decays. Works on
    plain, single-member and stacked models.
    """
    if isinstance(module, SingleMember):
        module = module.module
    return get_model(model.name).first_layer(module)
