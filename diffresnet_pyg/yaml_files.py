"""Bounded reading of YAML files, without importing torch.

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

The module imports only PyYAML, so the command line can refuse a bad file
before it loads torch.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "MAX_YAML_BYTES",
    "MAX_YAML_NODES",
    "YAMLFileError",
    "load_yaml_text",
    "read_yaml_file",
]


class YAMLFileError(ValueError):
    """A YAML text or file the bounded loader refuses; says where and why."""


#: The largest YAML file read, in bytes (1 MiB; configs are a few KiB).
MAX_YAML_BYTES = 1 << 20
#: The most nodes (mappings, lists, scalars) a YAML file of a results folder
#: may expand to through its aliases (a 1 MiB file without any has fewer).
MAX_YAML_NODES = 1_000_000


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
        YAMLFileError: If the text holds an anchor or an alias (or, with
            ``aliases``, expands too far), a key repeated in a mapping, nests
            too deeply, or is not valid YAML; the message starts with
            ``where`` and says where in the text.

    Example:
        >>> load_yaml_text("a: [1, 2]", "x.yaml")
        {'a': [1, 2]}
        >>> try:
        ...     load_yaml_text("a: &x [1]", "f")
        ... except YAMLFileError as exc:
        ...     print(exc)
        f: YAML anchors and aliases (&name, *name) are not allowed (line 1, column 4)
    """
    loader = _AliasingLoader if aliases else _BoundedLoader
    try:
        return yaml.load(text, Loader=loader)
    except _AnchorRefused as exc:
        mark = exc.problem_mark
        raise YAMLFileError(
            f"{where}: YAML anchors and aliases (&name, *name) are not allowed "
            f"(line {mark.line + 1}, column {mark.column + 1})"
        ) from None
    except yaml.YAMLError as exc:
        raise YAMLFileError(f"{where}: invalid YAML{_yaml_problem(exc)}") from None
    except RecursionError:
        raise YAMLFileError(f"{where}: invalid YAML: nested too deeply") from None


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
        YAMLFileError: If the file is missing or unreadable, is larger than
            :data:`MAX_YAML_BYTES`, or :func:`load_yaml_text` refuses it; the
            message starts with the file's path.
    """
    path = Path(path)
    try:
        with path.open("rb") as f:
            size = os.fstat(f.fileno()).st_size
            data = f.read(MAX_YAML_BYTES + 1)
    except FileNotFoundError:
        raise YAMLFileError(f"{path}: {what} not found") from None
    except OSError as exc:
        raise YAMLFileError(f"{path}: cannot read {what} ({exc})") from None
    if len(data) > MAX_YAML_BYTES:
        raise YAMLFileError(
            f"{path}: {max(size, len(data))} bytes, more than the "
            f"{MAX_YAML_BYTES} bytes (1 MiB) a {what} may have"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise YAMLFileError(f"{path}: cannot read {what} ({exc})") from None
    return load_yaml_text(text, str(path), aliases=aliases)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """Where and what a YAML error is, on one line."""
    mark = getattr(exc, "problem_mark", None)
    where = "" if mark is None else f" (line {mark.line + 1}, column {mark.column + 1})"
    parts = [getattr(exc, "context", None), getattr(exc, "problem", None)]
    what = ", ".join(part for part in parts if part) or str(exc)
    return f"{where}: {what}"
