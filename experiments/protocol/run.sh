#!/usr/bin/env bash
# The Cora and Citeseer comparison of this folder, exactly as run (resumable:
# rerunning skips finished runs). SPLITS x INITS per method are the authors'
# protocol's first splits and inits; raise them to extend the study.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=experiments/protocol/results
run() {  # dataset model splits inits
  diffresnet-pyg -q run "configs/$1/$2.yaml" "output=$out/$1/$2" \
    "split.num_splits=$3" "split.num_inits=$4"
}
for ds in cora citeseer; do
  run "$ds" diffresnet_reference 3 2
  for m in gcn gat sage mlp no_diffresnet; do run "$ds" "$m" 5 4; done
  run "$ds" grand 2 1
done
diffresnet-pyg report "$out"
