"""Path type and dataset-name lookup shared by the dataset loaders."""

from __future__ import annotations


def check_name(name: str, allowed: tuple[str, ...], what: str) -> str:
    """Return the spelling in :obj:`allowed` of :obj:`name` (case-insensitive).

    Raises:
        ValueError: If :obj:`name` is not one of :obj:`allowed`.
    """
    lowered = {n.lower(): n for n in allowed}
    key = name.lower() if isinstance(name, str) else name
    if key not in lowered:
        raise ValueError(
            f"unknown {what} dataset {name!r}; allowed: {', '.join(allowed)}"
        )
    return lowered[key]


class DatasetFileError(ValueError):
    """A dataset file that cannot be read; the message names the file and why."""
