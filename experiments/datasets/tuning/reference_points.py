"""Validation accuracy of the shipped GCN and the untuned general Diff-ResNet.

The same 2 splits x 2 inits as the tuning searches beside this file, with test
accuracy never evaluated (``evaluate_test=False``), so the searches can be
compared with the two shipped configs on validation only::

    python experiments/datasets/tuning/reference_points.py cora
"""

import sys

from diffresnet_pyg.experiments.runner import run_experiment
from diffresnet_pyg.experiments.schema import load_config

if __name__ == "__main__":
    dataset = sys.argv[1]
    for model in ("gcn", "diffresnet"):
        config = load_config(
            f"configs/{dataset}/{model}.yaml",
            [
                "split.num_splits=2",
                "split.num_inits=2",
                f"output=experiments/datasets/tuning/{dataset}_reference_points/{model}",
            ],
        )
        run_experiment(config, progress=False, evaluate_test=False)
