#!/usr/bin/env bash
# The depth / over-smoothing study: one sweep folder per dataset, then the
# figures and the table. Resumable: finished runs are skipped.
#
#   bash experiments/depth_sweep/run.sh            # both datasets, then figures
#   bash experiments/depth_sweep/run.sh cora       # one dataset
#   bash experiments/depth_sweep/run.sh figures    # figures and table only
#
# The two datasets run side by side with one worker process each (one torch
# thread per run), which keeps a 2-core machine busy; with more cores raise
# executor.workers.
set -euo pipefail
cd "$(dirname "$0")/../.."

sweep() {
  diffresnet-pyg -q sweep "configs/sweeps/$1_depth.yaml" executor.workers=1
}

case "${1:-all}" in
  cora|citeseer) sweep "$1" ;;
  figures) ;;
  all)
    sweep cora &
    sweep citeseer &
    wait
    ;;
  *) echo "usage: $0 [cora|citeseer|figures|all]" >&2; exit 2 ;;
esac
python experiments/depth_sweep/layerwise.py
python experiments/depth_sweep/figures.py
