r"""Run a few-shot config: every method on the same episodes, row by row.

The results folder holds ``config.yaml`` (the resolved config),
``episodes.jsonl`` (one row per method and episode: ``method``, ``episode``,
``acc`` in percent, ``seconds`` (the method's time on the episode's chunk
divided by the chunk's episodes)), and, once every row is there,
``summary.json`` and ``summary.md``: per method the mean accuracy and the
authors' 95% interval :math:`\pm 1.96\,s/\sqrt{n}` over the episodes, plus
``sweep.png`` when the config has a sweep.

Episodes are drawn once from ``episodes.seed``; the network of episode ``i``
is initialized from its own seed (``seed * 1000003 + i``), so results do not
depend on ``episodes.chunk_size``. A rerun resumes: chunks whose rows are all
present are skipped; a folder written for a different config is refused.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from diffresnet_pyg.evaluate import Evaluator
from diffresnet_pyg.experiments.fewshot_config import (
    FewShotConfig,
    MethodConfig,
    expand_methods,
    fewshot_config_from_dict,
    fewshot_config_to_dict,
)
from diffresnet_pyg.experiments.fewshot_features import (
    FeaturePools,
    official_run_features,
    prepare_features,
)
from diffresnet_pyg.experiments.progress import (
    CountProgress,
    Progress,
    progress_mode,
)
from diffresnet_pyg.experiments.results import (
    CONFIG_FILE,
    EPISODES_FILE,
    SUMMARY_JSON,
    SUMMARY_MD,
    append_rows,
    check_config_folder,
    claim_config_folder,
    folder_lock_scope,
    load_rows,
    unique_rows,
    write_atomic,
)
from diffresnet_pyg.experiments.schema import read_yaml_file
from diffresnet_pyg.fewshot.episodes import Episodes, sample_episodes
from diffresnet_pyg.fewshot.methods import (
    EpisodeNetConfig,
    init_episode_nets,
    laplacian_shot,
    nearest_prototype,
    train_episode_nets,
)
from diffresnet_pyg.fewshot.preprocess import preprocess_episodes

__all__ = [
    "EPISODES_FILE",
    "episode_seed",
    "run_fewshot",
    "score_methods",
    "summarize_fewshot",
]

logger = logging.getLogger(__name__)

SWEEP_PNG = "sweep.png"

_ACCURACY = Evaluator("acc")


def episode_seed(seed: int, episode: int) -> int:
    """The seed of episode ``episode``'s network initialization."""
    return seed * 1_000_003 + episode


def _scores(
    method: MethodConfig,
    support: Tensor,
    support_labels: Tensor,
    query: Tensor,
    way: int,
    seeds: Sequence[int],
) -> Tensor:
    """Query scores ``[B, Q, way]`` of one method on a batch of episodes."""
    p = method.params
    if method.name == "nearest_prototype":
        return nearest_prototype(support, support_labels, query, way)
    if method.name == "laplacian_shot":
        return laplacian_shot(
            support,
            support_labels,
            query,
            way,
            knn=p["knn"],
            lam=p["lam"],
            max_iter=p["max_iter"],
        )
    parts = [
        init_episode_nets(
            1, support.size(-1), way, torch.Generator().manual_seed(s), support.dtype
        )
        for s in seeds
    ]
    params = {k: torch.cat([part[k] for part in parts]) for k in parts[0]}
    config = EpisodeNetConfig(**p)
    return train_episode_nets(
        support, support_labels, query, way, config, params=params
    )


def score_methods(
    methods: Sequence[MethodConfig],
    episodes: Episodes,
    indices: Sequence[int],
    *,
    seed: int,
    on_method: Callable[[MethodConfig, Tensor, float], None],
    skip: Callable[[MethodConfig], bool] = lambda m: False,
) -> None:
    """Score every method on a chunk of (preprocessed) episodes.

    Args:
        methods: The methods.
        episodes: The chunk's episodes.
        indices: The global episode index of each episode of the chunk.
        seed: The episode seed (:func:`episode_seed`).
        on_method: Called with the method, the per-episode accuracy in
            percent ``[B]`` and the seconds it took.
        skip: Methods for which it returns true are not run.
    """
    seeds = [episode_seed(seed, i) for i in indices]
    for method in methods:
        if skip(method):
            continue
        start = time.perf_counter()
        scores = _scores(
            method,
            episodes.support,
            episodes.support_labels,
            episodes.query,
            episodes.way,
            seeds,
        )
        seconds = time.perf_counter() - start
        labels = episodes.query_labels
        acc = _ACCURACY.eval_batch({"y_true": labels, "y_pred": scores})["acc"]
        on_method(method, acc * 100, seconds)


def _fingerprint(config: FewShotConfig) -> dict[str, Any]:
    data = fewshot_config_to_dict(config)
    for key in ("output", "name"):
        del data[key]
    for key in ("root", "cache"):
        del data["features"][key]
    del data["episodes"]["chunk_size"]
    return data


def _differences(old: FewShotConfig, new: FewShotConfig) -> str | None:
    old_d, new_d = _fingerprint(old), _fingerprint(new)
    if old_d == new_d:
        return None
    return "; ".join(
        f"{key}: {old_d.get(key)!r} -> {value!r}"
        for key, value in new_d.items()
        if old_d.get(key) != value
    )


def _official_episodes(
    config: FewShotConfig, pools: FeaturePools, progress: bool
) -> Episodes:
    runs = official_run_features(config.features, pools, progress=progress)
    support = torch.stack([s for s, _, _ in runs])
    query = torch.stack([q for _, q, _ in runs])
    labels = torch.arange(support.size(1)).expand(len(runs), -1)
    return Episodes(
        support=support,
        query=query,
        support_labels=labels,
        query_labels=torch.stack([lb for _, _, lb in runs]),
        way=20,
        shot=1,
        query_per_class=1,
    )


@folder_lock_scope()
def run_fewshot(config: FewShotConfig, *, progress: Progress = True) -> dict[str, Any]:
    """Run (or resume) a few-shot config; return its summary.

    ``progress``: ``True`` or ``"bar"``: progress bars; ``"log"``: a log line
    per chunk of episodes at most once a minute (and for the last), with the
    time left; ``False``: nothing (see
    :mod:`~diffresnet_pyg.experiments.progress`).

    Raises:
        ResultsFolderError: If the output folder holds another config, or
            another process is writing to it (it stays locked until this
            returns).
    """
    folder = Path(config.output)
    check_config_folder(
        folder, config, from_dict=fewshot_config_from_dict, differences=_differences
    )
    methods = expand_methods(config)
    ep = config.episodes
    bars = progress_mode(progress) == "bar"
    pools = prepare_features(config.features, progress=bars)
    base_mean = pools.base_mean
    if ep.source == "omniglot_runs":
        all_episodes = _official_episodes(config, pools, bars)
        total = len(all_episodes.support)
        index = None
    else:
        pool = pools.test if ep.classes == "test" else pools.val
        if pool is None:
            raise ValueError(
                f"features.source {config.features.source!r} has no validation classes"
            )
        index = sample_episodes(
            pool,
            ep.way,
            ep.shot,
            ep.query,
            ep.num_episodes,
            torch.Generator().manual_seed(ep.seed),
        )
        total = ep.num_episodes
    if config.preprocess.center and base_mean is None:
        raise ValueError("preprocess.center needs a base-class mean (features)")
    # The features load and the episodes can be drawn: claim the folder.
    claim_config_folder(
        folder,
        config,
        to_dict=fewshot_config_to_dict,
        from_dict=fewshot_config_from_dict,
        differences=_differences,
    )
    for name in (SUMMARY_JSON, SUMMARY_MD):
        (folder / name).unlink(missing_ok=True)
    rows_path = folder / EPISODES_FILE
    done: dict[str, set[int]] = {}
    for row in load_rows(rows_path):
        done.setdefault(row["method"], set()).add(int(row["episode"]))

    bar = CountProgress(
        progress,
        total=total * len(methods),
        done=sum(len(v) for v in done.values()),
        desc=config.name or folder.name,
        unit="episode",
        logger=logger,
    )
    for start in range(0, total, ep.chunk_size):
        stop = min(start + ep.chunk_size, total)
        chunk = list(range(start, stop))

        def finished(method: MethodConfig, chunk: list[int] = chunk) -> bool:
            have = done.get(method.label, set())
            return all(i in have for i in chunk)

        if all(finished(m) for m in methods):
            continue
        if index is None:
            episodes = _slice(all_episodes, start, stop)
        else:
            episodes = index[start:stop].gather(pool)
        support, query = preprocess_episodes(
            episodes.support,
            episodes.query,
            base_mean=base_mean,
            center=config.preprocess.center,
            normalize=config.preprocess.normalize,
            shift=config.preprocess.shift,
        )
        episodes = Episodes(
            support=support,
            query=query,
            support_labels=episodes.support_labels,
            query_labels=episodes.query_labels,
            way=episodes.way,
            shot=episodes.shot,
            query_per_class=episodes.query_per_class,
        )

        def write(
            method: MethodConfig, acc: Tensor, seconds: float, chunk: list[int] = chunk
        ) -> None:
            have = done.setdefault(method.label, set())
            rows = [
                {
                    "method": method.label,
                    "episode": i,
                    "acc": float(a),
                    "seconds": seconds / len(chunk),
                }
                for i, a in zip(chunk, acc.tolist(), strict=True)
                if i not in have
            ]
            append_rows(rows_path, rows)
            have.update(r["episode"] for r in rows)
            if rows:
                bar.update(
                    len(rows),
                    f"{method.label}, episodes {chunk[0]}-{chunk[-1]}: "
                    f"{sum(r['acc'] for r in rows) / len(rows):.2f} %",
                )

        score_methods(
            methods, episodes, chunk, seed=ep.seed, on_method=write, skip=finished
        )
    bar.close()
    summary = summarize_fewshot(folder)
    return summary


def _slice(episodes: Episodes, start: int, stop: int) -> Episodes:
    return Episodes(
        support=episodes.support[start:stop],
        query=episodes.query[start:stop],
        support_labels=episodes.support_labels[start:stop],
        query_labels=episodes.query_labels[start:stop],
        way=episodes.way,
        shot=episodes.shot,
        query_per_class=episodes.query_per_class,
    )


def _method_summary(acc: Sequence[float], seconds: Sequence[float]) -> dict[str, Any]:
    n = len(acc)
    mean = sum(acc) / n
    std = math.sqrt(sum((a - mean) ** 2 for a in acc) / n)
    return {
        "episodes": n,
        "acc": mean,
        "ci95": 1.96 * std / math.sqrt(n),
        "std": std,
        "seconds_per_episode": sum(seconds) / n,
    }


def summarize_fewshot(folder: str | os.PathLike[str]) -> dict[str, Any]:
    r"""Write ``summary.json``/``summary.md`` (and ``sweep.png``) of a folder.

    The 95% interval is the authors' :math:`1.96\,\sigma/\sqrt{n}` with the
    population standard deviation :math:`\sigma` over the :math:`n` episodes.

    Raises:
        ValueError: If a method's rows are incomplete (the run is not
            finished: rerun it to resume).
    """
    folder = Path(folder)
    config = fewshot_config_from_dict(
        read_yaml_file(folder / CONFIG_FILE, aliases=True)
    )
    methods = expand_methods(config)
    rows, duplicates = unique_rows(
        load_rows(folder / EPISODES_FILE),
        lambda row: (row["method"], int(row["episode"])),
    )
    if duplicates:
        logger.warning(
            "%s: %d duplicate row(s) of a (method, episode) ignored; the first "
            "row of each counts",
            folder / EPISODES_FILE,
            duplicates,
        )
    by_method: dict[str, dict[int, Mapping[str, Any]]] = {}
    for row in rows:
        by_method.setdefault(row["method"], {})[int(row["episode"])] = row
    ep = config.episodes
    expected = 20 if ep.source == "omniglot_runs" else ep.num_episodes
    results = []
    for m in methods:
        got = by_method.get(m.label, {})
        if len(got) != expected:
            raise ValueError(
                f"{folder}: method {m.label!r} has {len(got)} of {expected} episodes; "
                "rerun the config to finish it"
            )
        ordered = [got[i] for i in sorted(got)]
        results.append(
            {
                "label": m.label,
                "name": m.name,
                "params": dict(m.params),
                **_method_summary(
                    [r["acc"] for r in ordered], [r["seconds"] for r in ordered]
                ),
            }
        )
    summary = {
        "name": config.name,
        "features": fewshot_config_to_dict(config)["features"],
        "episodes": fewshot_config_to_dict(config)["episodes"],
        "preprocess": fewshot_config_to_dict(config)["preprocess"],
        "methods": results,
        "sweep": fewshot_config_to_dict(config)["sweep"],
    }
    write_atomic(folder / SUMMARY_JSON, json.dumps(summary, indent=2) + "\n")
    write_atomic(folder / SUMMARY_MD, fewshot_markdown(summary))
    if config.sweep is not None:
        plot_fewshot_sweep(summary, folder / SWEEP_PNG)
    return summary


def _params_text(name: str, params: Mapping[str, Any]) -> str:
    if name == "episode_net":
        keys = ("layer_num", "step_size", "n_top", "sigma", "mu")
        return ", ".join(f"{k}={params[k]:g}" for k in keys)
    return ", ".join(f"{k}={v:g}" for k, v in params.items())


def fewshot_markdown(summary: Mapping[str, Any]) -> str:
    """The Markdown table of a few-shot summary (one row per method)."""
    ep = summary["episodes"]
    pre = summary["preprocess"]
    feats = summary["features"]
    if ep["source"] == "omniglot_runs":
        what = "the 20 official Omniglot 20-way 1-shot runs"
    else:
        what = (
            f"{ep['num_episodes']} {ep['way']}-way {ep['shot']}-shot episodes "
            f"({ep['query']} queries per class, {ep['classes']} classes, seed "
            f"{ep['seed']})"
        )
    steps = [k for k in ("center", "normalize", "shift") if pre[k]] or ["none"]
    lines = [
        f"# {summary['name'] or 'Few-shot results'}",
        "",
        f"Features: `{feats['source']}`; {what}; preprocessing: "
        f"{', '.join(steps)}. Accuracy on the queries, mean over episodes "
        "+- 1.96 std / sqrt(n).",
        "",
        "| method | parameters | accuracy (%) | episodes | s / episode |",
        "|---|---|---|---|---|",
    ]
    for m in summary["methods"]:
        lines.append(
            f"| {m['label']} | {_params_text(m['name'], m['params'])} | "
            f"{m['acc']:.2f} +- {m['ci95']:.2f} | {m['episodes']} | "
            f"{m['seconds_per_episode']:.4f} |"
        )
    return "\n".join(lines) + "\n"


def plot_fewshot_sweep(summary: Mapping[str, Any], path: Path) -> None:
    """Plot accuracy (with 95% intervals) against the swept parameter."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    sweep = summary["sweep"]
    prefix = f"{sweep['method']} ({sweep['key']}="
    points = [m for m in summary["methods"] if m["label"].startswith(prefix)]
    xs = [m["params"][sweep["key"]] for m in points]
    fig = Figure(figsize=(5.6, 4.0), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.errorbar(
        xs,
        [m["acc"] for m in points],
        yerr=[m["ci95"] for m in points],
        marker="o",
        capsize=3,
        label=sweep["method"],
    )
    for m in summary["methods"]:
        if m["name"] != "episode_net" or m in points or m["label"] == sweep["method"]:
            continue
        ax.axhline(
            m["acc"],
            linestyle="--",
            linewidth=1,
            alpha=0.7,
            label=m["label"],
            color=None,
        )
    xlabel = sweep["key"]
    if sweep.get("scale_with"):
        xlabel += f" ({sweep['scale_with']} = {sweep['total']:g} / {sweep['key']})"
    ax.set_xlabel(xlabel)
    ax.set_ylabel("query accuracy (%)")
    ep = summary["episodes"]
    ax.set_title(
        f"{summary['features']['source']}, {ep['classes']} classes: {ep['way']}-way "
        f"{ep['shot']}-shot, {ep['num_episodes']} episodes"
    )
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.savefig(path, format="png")
