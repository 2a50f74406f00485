#!/usr/bin/env bash
# The Cora depth sweep of this folder, exactly as run (resumable).
set -euo pipefail
cd "$(dirname "$0")/../.."
diffresnet-pyg -q sweep configs/sweeps/cora_depth.yaml \
  output=experiments/depth_sweep/results split.num_splits=1 split.num_inits=2
