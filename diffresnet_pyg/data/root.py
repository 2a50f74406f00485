"""Where datasets live on disk."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DATA_ENV_VAR", "resolve_root"]

#: Environment variable that overrides the default dataset root.
DATA_ENV_VAR = "DIFFRESNET_PYG_DATA"


def resolve_root(root: str | os.PathLike[str] | None = None) -> Path:
    """Return the folder that holds (or will hold) the datasets.

    The first of these that is set wins:

    1. the explicit :obj:`root` argument,
    2. the environment variable ``DIFFRESNET_PYG_DATA``,
    3. ``$XDG_CACHE_HOME/diffresnet_pyg``,
    4. ``~/.cache/diffresnet_pyg``.

    Empty strings count as unset. ``~`` is expanded; the folder is not created
    (loaders create the sub-folders they write to).

    Args:
        root (str or os.PathLike, optional): An explicit dataset root.
            (default: :obj:`None`)

    Returns:
        pathlib.Path: The dataset root.

    Example:
        >>> from diffresnet_pyg.data import resolve_root
        >>> str(resolve_root("/tmp/datasets"))
        '/tmp/datasets'
    """
    if root is not None and os.fspath(root) != "":
        return Path(root).expanduser()
    env = os.environ.get(DATA_ENV_VAR, "")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    if xdg:
        return Path(xdg).expanduser() / "diffresnet_pyg"
    return Path.home() / ".cache" / "diffresnet_pyg"
