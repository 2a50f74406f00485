"""Input dropout on the best Cora setting of the search (validation only).

Runs ``cora_diffresnet/best.yaml`` (the search's best trial) on the same
2 splits x 2 inits with ``model.input_dropout`` 0 (the trial itself), 0.5 and
0.8 (GCN's tuned value), without ever evaluating the test nodes, and prints
the mean validation accuracy of each::

    python experiments/datasets/tuning/input_dropout.py
"""

import json
import statistics
from pathlib import Path

from diffresnet_pyg.experiments.runner import run_experiment
from diffresnet_pyg.experiments.schema import load_config

HERE = Path(__file__).resolve().parent
RATES = (0.0, 0.5, 0.8)

if __name__ == "__main__":
    print("| input dropout | val acc (%) | runs |")
    print("|---|---|---|")
    for rate in RATES:
        folder = HERE / "cora_input_dropout" / f"p_{rate}"
        config = load_config(
            HERE / "cora_diffresnet" / "best.yaml",
            [f"model.input_dropout={rate}", f"output={folder}"],
        )
        run_experiment(config, progress=False, evaluate_test=False)
        rows = [json.loads(line) for line in (folder / "runs.jsonl").open()]
        accs = [100 * row["val_acc"] for row in rows]
        mean, std = statistics.mean(accs), statistics.pstdev(accs)
        print(f"| {rate} | {mean:.2f} ± {std:.2f} | {len(rows)} |")
