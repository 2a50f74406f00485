"""Validation accuracy of the shipped GCN and Diff-ResNet on a search's runs.

The same splits x inits as a search (per-class protocol, master seed 42), with
test accuracy never evaluated (``evaluate_test=False``), so a search can be
compared with the shipped configs on validation only::

    python experiments/datasets/tuning/reference_points.py cora
    python experiments/datasets/tuning/reference_points.py cora --splits 3 --inits 2 \
        --output experiments/datasets/tuning/cora_tuned_reference_points

The first form (2 x 2, ``<dataset>_reference_points/``) scored the searches of
the old default; the second scores the new default on the runs of
``space_tuned.yaml``.
"""

import argparse

from diffresnet_pyg.experiments.runner import run_experiment
from diffresnet_pyg.experiments.schema import load_config

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset")
    parser.add_argument("--splits", type=int, default=2)
    parser.add_argument("--inits", type=int, default=2)
    parser.add_argument(
        "--output", help="default: <dataset>_reference_points beside this script"
    )
    args = parser.parse_args()
    output = (
        args.output or f"experiments/datasets/tuning/{args.dataset}_reference_points"
    )
    for model in ("gcn", "diffresnet"):
        config = load_config(
            f"configs/{args.dataset}/{model}.yaml",
            [
                f"split.num_splits={args.splits}",
                f"split.num_inits={args.inits}",
                f"output={output}/{model}",
            ],
        )
        run_experiment(config, progress=False, evaluate_test=False)
