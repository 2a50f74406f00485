#!/usr/bin/env bash
# The Cora and Citeseer comparison of this folder, exactly as run (resumable:
# rerunning skips finished runs). The numbers after each method are how many
# of the authors' protocol's splits x inits were run (the first ones); raise
# them to extend the study.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=experiments/protocol/results
run() {  # dataset model splits inits
  diffresnet-pyg -q run "configs/$1/$2.yaml" "output=$out/$1/$2" \
    "split.num_splits=$3" "split.num_inits=$4"
}
for ds in cora citeseer; do
  for m in gcn gat sage mlp; do run "$ds" "$m" 5 4; done
done
run cora diffresnet_reference 3 2
run cora no_diffresnet 3 2
run citeseer diffresnet_reference 2 1
run citeseer no_diffresnet 2 1
run cora grand 2 1
run citeseer grand 2 1
diffresnet-pyg report "$out"
