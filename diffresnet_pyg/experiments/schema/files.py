"""YAML files and ``KEY=VALUE`` command-line overrides.

Every YAML text the package reads (configs, sweeps, search spaces, few-shot
configs, the YAML files of results folders, override values) goes through
one bounded loader (:func:`read_yaml_file`, :func:`load_yaml_text`): a file
larger than :data:`MAX_YAML_BYTES` is refused unread, and so is any anchor
(``&name``) or alias (``*name``), found on the event stream before a node
is built, so that a small file cannot expand to an exponentially large
object (the "billion laughs" shape). The files a results folder holds,
written by ``yaml.safe_dump`` (which writes an anchor where a list is
shared), may have aliases, but may expand to at most
:data:`MAX_YAML_NODES` nodes. Keys repeated in a mapping are errors.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from diffresnet_pyg.experiments.schema.experiment import (
    TOP_LEVEL_KEYS,
    ExperimentConfig,
    config_from_dict,
)
from diffresnet_pyg.experiments.schema.fields import (
    ConfigError,
    bad_value,
    describe,
    merge,
)

logger = logging.getLogger(__name__)

#: The largest YAML file read, in bytes (1 MiB; configs are a few KiB).
MAX_YAML_BYTES = 1 << 20
#: The most nodes (mappings, lists, scalars) a YAML file of a results folder
#: may expand to through its aliases (a 1 MiB file without any has fewer).
MAX_YAML_NODES = 1_000_000


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """Parse ``KEY=VALUE`` overrides into a nested mapping.

    Keys are dotted (``train.lr``; model parameters are flat:
    ``model.layer_num``). Values are parsed as YAML (``5`` is an int, ``true``
    a bool, ``[2, 4]`` a list, ``null`` or nothing :obj:`None`); float fields
    accept strings such as ``1e-3``. Later items win.

    Args:
        items: The overrides, e.g. from the command line.

    Returns:
        dict[str, Any]: The nested overrides, ready for :func:`merge`.

    Raises:
        ConfigError: For an item without ``=``, an empty key or key segment,
            or a value that is not valid YAML.

    Example:
        >>> parse_overrides(["train.lr=0.005", "model.layer_num=10",
        ...                  "train.lr=5e-4"])
        {'train': {'lr': '5e-4'}, 'model': {'layer_num': 10}}
        >>> parse_overrides(["sweep.values=[2, 4]", "dataset.root=null"])
        {'sweep': {'values': [2, 4]}, 'dataset': {'root': None}}
    """
    result: dict[str, Any] = {}
    for item in items:
        if not isinstance(item, str):
            raise bad_value("override", "a 'KEY=VALUE' string", item)
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep:
            raise ConfigError(
                f"override {item!r}: expected KEY=VALUE (e.g. train.lr=0.005)"
            )
        if not key:
            raise ConfigError(f"override {item!r}: empty key before '='")
        parts = [part.strip() for part in key.split(".")]
        if not all(parts):
            raise ConfigError(f"{key}: empty key segment in override {item!r}")
        try:
            value = yaml.load(text, Loader=_BoundedLoader)
        except _AnchorRefused:
            raise ConfigError(
                f"{key}: cannot parse override value {text!r}: YAML anchors and "
                "aliases (&name, *name) are not allowed"
            ) from None
        except yaml.YAMLError as exc:
            problem = str(exc).splitlines()[0]
            raise ConfigError(
                f"{key}: cannot parse override value {text!r} as YAML ({problem})"
            ) from None
        for part in reversed(parts):
            value = {part: value}
        result = merge(result, value)
    return result


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, but a key repeated in one mapping is an error."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:  # unhashable: the base class reports it
                break
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r}",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


class _AnchorRefused(yaml.composer.ComposerError):
    """An anchor or alias in a YAML text (they are not allowed)."""


class _BoundedLoader(_UniqueKeyLoader):
    """The unique-key loader, refusing anchors and aliases before composing.

    Each node's first event is checked before the node is composed, so an
    alias is refused before anything it points to is built, let alone
    expanded. With ``allow_aliases`` (the files of results folders, which
    ``yaml.safe_dump`` writes with anchors where a list is shared), they are
    allowed, but the document expanded may hold at most
    :data:`MAX_YAML_NODES` nodes: counted on the composed nodes, before
    anything is constructed.
    """

    allow_aliases = False

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        event = self.peek_event()
        anchored = isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None)
        if anchored and not self.allow_aliases:
            raise _AnchorRefused(
                None, None, "anchors and aliases are not allowed", event.start_mark
            )
        return super().compose_node(parent, index)

    def compose_document(self) -> yaml.Node | None:
        node = super().compose_document()
        if node is not None and self.allow_aliases:
            _check_expanded_size(node)
        return node


class _AliasingLoader(_BoundedLoader):
    allow_aliases = True


def _check_expanded_size(root: yaml.Node) -> None:
    """Refuse a document whose aliases expand it past :data:`MAX_YAML_NODES`."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            raise yaml.composer.ComposerError(
                None, None, "a recursive alias", node.start_mark
            )
        open_nodes.add(key)
        if isinstance(node, yaml.MappingNode):
            children = [child for pair in node.value for child in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = node.value
        else:
            children = []
        total = 1
        for child in children:
            total += size(child)
            if total > MAX_YAML_NODES:
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    f"its aliases expand it to more than {MAX_YAML_NODES} nodes",
                    node.start_mark,
                )
        open_nodes.discard(key)
        sizes[key] = total
        return total

    size(root)


def load_yaml_text(text: str, where: str, *, aliases: bool = False) -> Any:
    """Parse one YAML document with the bounded loader (see the module).

    Args:
        text: The YAML text.
        where: What the text is (a file name), for the messages.
        aliases: Allow anchors and aliases, as long as the document they
            expand to has at most :data:`MAX_YAML_NODES` nodes (for the files
            a results folder holds). (default: :obj:`False`)

    Returns:
        Any: The plain data (mappings, lists, scalars).

    Raises:
        ConfigError: If the text holds an anchor or an alias (or, with
            ``aliases``, expands too far), a key repeated in a mapping, nests
            too deeply, or is not valid YAML; the message starts with
            ``where`` and says where in the text.

    Example:
        >>> load_yaml_text("a: [1, 2]", "x.yaml")
        {'a': [1, 2]}
        >>> try:
        ...     load_yaml_text("a: &x [1]", "f")
        ... except ConfigError as exc:
        ...     print(exc)
        f: YAML anchors and aliases (&name, *name) are not allowed (line 1, column 4)
    """
    loader = _AliasingLoader if aliases else _BoundedLoader
    try:
        return yaml.load(text, Loader=loader)
    except _AnchorRefused as exc:
        mark = exc.problem_mark
        raise ConfigError(
            f"{where}: YAML anchors and aliases (&name, *name) are not allowed "
            f"(line {mark.line + 1}, column {mark.column + 1})"
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: invalid YAML{_yaml_problem(exc)}") from None
    except RecursionError:
        raise ConfigError(f"{where}: invalid YAML: nested too deeply") from None


def read_yaml_file(
    path: str | os.PathLike[str], what: str = "YAML file", *, aliases: bool = False
) -> Any:
    """Read one YAML file with the bounded loader (see the module).

    Args:
        path: The file.
        what: What the file is, for the messages. (default: ``"YAML file"``)
        aliases: As in :func:`load_yaml_text`. (default: :obj:`False`)

    Returns:
        Any: The plain data of the file.

    Raises:
        ConfigError: If the file is missing or unreadable, is larger than
            :data:`MAX_YAML_BYTES`, or :func:`load_yaml_text` refuses it; the
            message starts with the file's path.
    """
    path = Path(path)
    try:
        with path.open("rb") as f:
            size = os.fstat(f.fileno()).st_size
            data = f.read(MAX_YAML_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"{path}: {what} not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read {what} ({exc})") from None
    if len(data) > MAX_YAML_BYTES:
        raise ConfigError(
            f"{path}: {max(size, len(data))} bytes, more than the "
            f"{MAX_YAML_BYTES} bytes (1 MiB) a {what} may have"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: cannot read {what} ({exc})") from None
    return load_yaml_text(text, str(path), aliases=aliases)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """Where and what a YAML error is, on one line."""
    mark = getattr(exc, "problem_mark", None)
    where = "" if mark is None else f" (line {mark.line + 1}, column {mark.column + 1})"
    parts = [getattr(exc, "context", None), getattr(exc, "problem", None)]
    what = ", ".join(part for part in parts if part) or str(exc)
    return f"{where}: {what}"


def load_config(
    path: str | os.PathLike[str], overrides: Sequence[str] = ()
) -> ExperimentConfig:
    r"""Read a YAML config, apply ``KEY=VALUE`` overrides and validate it.

    Relative paths inside the config (``output``, ``dataset.root``) stay
    relative to the current working directory, not to the file.

    An override of ``dataset.path`` that does not also set ``dataset.name``
    runs the config on that file in place of its named dataset (the file's
    ``dataset.name`` and ``dataset.root`` are dropped, and the log says so):
    ``diffresnet-pyg run configs/cora/gcn.yaml dataset.path=my.npz``.

    Args:
        path: The YAML file.
        overrides: Overrides for :func:`parse_overrides`; they win over the
            file, including the ``overrides`` of a sweep's methods
            (``train.max_epochs=50`` also sets it for a method whose
            overrides say 100). Overriding a method's swept ``key`` is an
            error.

    Returns:
        ExperimentConfig: The validated config.

    Raises:
        ConfigError: If the file is missing or unreadable, is not valid YAML,
            is not a mapping at the top level, or the config is invalid.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     path = Path(tmp) / "cora.yaml"
        ...     _ = path.write_text("output: out\ndataset: {name: cora}\n"
        ...                         "model: {name: gcn}\n")
        ...     cfg = load_config(path, ["train.lr=5e-3"])
        >>> cfg.train.lr
        0.005
    """
    raw = read_yaml(path)
    changes = parse_overrides(overrides)
    raw = merge(_without_named_dataset(raw, changes), changes)
    raw = _overrides_win_in_sweep_methods(raw, changes)
    if raw.get("task") == "fewshot":
        raise ConfigError(
            f"{path}: a few-shot config (task: fewshot); run it with "
            "`diffresnet-pyg fewshot`"
        )
    return config_from_dict(raw)


def _leaves(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a.b": value}`` for every non-mapping value of a nested mapping."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping) and value:
            out.update(_leaves(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _overrides_win_in_sweep_methods(
    raw: dict[str, Any], changes: Mapping[str, Any]
) -> dict[str, Any]:
    """Apply command-line ``changes`` inside each sweep method's overrides too.

    A method's ``overrides`` are merged after the base config when the sweep
    is expanded, so without this a command-line value would silently lose to
    the method's own.
    """
    sweep = raw.get("sweep")
    if not isinstance(sweep, Mapping) or not isinstance(sweep.get("methods"), list):
        return raw
    given = {k: v for k, v in _leaves(changes).items() if not k.startswith("sweep.")}
    if not given:
        return raw
    methods = []
    for i, method in enumerate(sweep["methods"]):
        if not isinstance(method, Mapping):
            methods.append(method)
            continue
        if method.get("key") in given:
            raise ConfigError(
                f"override '{method['key']}': it is the swept key of "
                f"sweep.methods[{i}] ({method.get('label')!r}); set its values "
                "in the sweep instead"
            )
        own = method.get("overrides")
        if not isinstance(own, Mapping):
            methods.append(method)
            continue
        replaced = {k: v for k, v in given.items() if k in _leaves(own)}
        for key, value in replaced.items():
            logger.info(
                "sweep method %r: %s=%r from the command line replaces its own %r",
                method.get("label"),
                key,
                value,
                _leaves(own)[key],
            )
        update: dict[str, Any] = {}
        for key, value in replaced.items():
            node = update
            *parents, leaf = key.split(".")
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = value
        methods.append({**method, "overrides": merge(dict(own), update)})
    return {**raw, "sweep": {**sweep, "methods": methods}}


def _without_named_dataset(
    raw: dict[str, Any], overrides: Mapping[str, Any]
) -> dict[str, Any]:
    """``raw`` without its named dataset if ``overrides`` point at a file."""
    dataset, changes = raw.get("dataset"), overrides.get("dataset")
    if not isinstance(dataset, Mapping) or not isinstance(changes, Mapping):
        return raw
    if changes.get("path") is None or "name" in changes:
        return raw
    dropped = {key: dataset[key] for key in ("name", "root") if key in dataset}
    if any(value is not None for value in dropped.values()):
        logger.info(
            "dataset.path=%s replaces the config's %s",
            changes["path"],
            ", ".join(f"dataset.{k}={v!r}" for k, v in dropped.items()),
        )
    kept = {k: v for k, v in dataset.items() if k not in dropped}
    return {**raw, "dataset": kept}


def read_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a config file's top-level mapping (:func:`read_yaml_file`).

    Raises:
        ConfigError: If the file is missing, unreadable or too large, is not
            valid YAML, holds an anchor or alias or a repeated key, or is not
            a mapping at the top level.
    """
    path = Path(path)
    raw = read_yaml_file(path, "config file")
    if not isinstance(raw, Mapping):
        raise ConfigError(
            f"{path}: expected a mapping of sections ({', '.join(TOP_LEVEL_KEYS)}) at "
            f"the top level, {describe(raw)}"
        )
    return dict(raw)
