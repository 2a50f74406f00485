"""Where datasets live on disk."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DATA_ENV_VAR", "resolve_cache", "resolve_root"]

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
    return _user_cache()


def resolve_cache(cache: str | os.PathLike[str] | None = None) -> Path:
    """Return the folder for files the library computes (never the data root).

    Trained backbones and extracted few-shot features go here, so that a
    read-only dataset root (``DIFFRESNET_PYG_DATA``) is never written to. The
    first of these that is set wins: the explicit :obj:`cache` argument,
    ``$XDG_CACHE_HOME/diffresnet_pyg/cache``, ``~/.cache/diffresnet_pyg/cache``.

    Args:
        cache (str or os.PathLike, optional): An explicit cache folder.
            (default: :obj:`None`)

    Returns:
        pathlib.Path: The cache folder (not created).

    Example:
        >>> from diffresnet_pyg.data import resolve_cache
        >>> str(resolve_cache("/tmp/cache"))
        '/tmp/cache'
    """
    if cache is not None and os.fspath(cache) != "":
        return Path(cache).expanduser()
    return _user_cache() / "cache"


def _user_cache() -> Path:
    """``$XDG_CACHE_HOME/diffresnet_pyg``, else ``~/.cache/diffresnet_pyg``."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "diffresnet_pyg"
