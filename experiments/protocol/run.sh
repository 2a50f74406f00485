#!/usr/bin/env bash
# The Cora and Citeseer comparison of this folder, exactly as run (resumable:
# rerunning skips finished runs). The numbers after each method are how many
# of the authors' protocol's splits x inits were run (the first ones); raise
# them to extend the study. `run.sh baselines` and `run.sh diffusion` run one
# half each (two processes side by side, e.g. with OMP_NUM_THREADS=1);
# no argument runs both.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=experiments/protocol/results
run() {  # dataset model splits inits
  diffresnet-pyg -q run "configs/$1/$2.yaml" "output=$out/$1/$2" \
    "split.num_splits=$3" "split.num_inits=$4"
}
baselines() {
  for ds in cora citeseer; do
    for m in gcn mlp gat sage; do run "$ds" "$m" 5 4; done
  done
}
diffusion() {
  run cora diffresnet_reference 3 2
  # 20 splits x 1 init, one worker process per core (the config's executor)
  diffresnet-pyg -q run configs/cora/diffresnet_reference.yaml \
    "output=$out/cora/diffresnet_reference_20x1" split.num_splits=20 split.num_inits=1
  run cora no_diffresnet 3 2
  run citeseer diffresnet_reference 1 2
  diffresnet-pyg -q run configs/citeseer/diffresnet_reference.yaml \
    "output=$out/citeseer/diffresnet_reference_20x1" split.num_splits=20 split.num_inits=1
  run citeseer no_diffresnet 1 2
  run cora grand 1 2
  run citeseer grand 1 2
}
case "${1:-all}" in
  baselines) baselines ;;
  diffusion) diffusion ;;
  all) baselines; diffusion ;;
  *) echo "usage: $0 [baselines|diffusion]" >&2; exit 2 ;;
esac
diffresnet-pyg report "$out"
