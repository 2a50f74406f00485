#!/usr/bin/env bash
# The few-shot study of this folder, exactly as run (resumable: rerunning
# skips finished chunks of episodes). `run.sh val` runs the validation-class
# sensitivity studies that chose the test configs' hyperparameters,
# `run.sh omniglot` and `run.sh fashion` the test tables; no argument runs all.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=experiments/fewshot/results
fs() { diffresnet-pyg -q fewshot "configs/fewshot/$1.yaml" "output=$out/$1" "${@:2}"; }
val() {
  for c in omniglot_val_n_top omniglot_val_strength omniglot_val_step omniglot_val_mu; do
    fs "$c"
  done
}
omniglot() {
  fs omniglot_conv4_1shot
  fs omniglot_conv4_5shot
  fs omniglot_official_runs
}
fashion() {
  fs fashion_mnist_effnet_1shot
  fs fashion_mnist_effnet_5shot
}
case "${1:-all}" in
  val) val ;;
  omniglot) omniglot ;;
  fashion) fashion ;;
  all) val; omniglot; fashion ;;
  *) echo "usage: $0 [val|omniglot|fashion]" >&2; exit 2 ;;
esac
