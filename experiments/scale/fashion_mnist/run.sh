#!/usr/bin/env bash
# The Fashion-MNIST scale study of this folder, exactly as run: the k-NN build
# benchmark (three invocations: PCA-50 with every backend, pixels without
# torch_cluster, whose CPU kernel needs hours at 784-d and 70,000 points, and
# torch_cluster on pixels for the first 10,000 images) and the node
# classification study (resumable). `run.sh benchmark` and `run.sh study` run
# one part; no argument runs both. One thread per process.
set -euo pipefail
cd "$(dirname "$0")/../../.."
out=experiments/scale/fashion_mnist
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
benchmark() {
  python benchmarks/knn_build.py --features pca50 --chunk-sizes 59 --threads 1 \
    --backends torch torch_cluster faiss --timeout 3600 \
    --json "$out/knn_build_pca50.json" | tee "$out/knn_build_pca50.txt"
  python benchmarks/knn_build.py --num-images 10000 --features pixels \
    --threads 1 --backends torch torch_cluster faiss --timeout 3600 \
    --json "$out/knn_build_pixels_10k.json" | tee "$out/knn_build_pixels_10k.txt"
  python benchmarks/knn_build.py --features pixels --chunk-sizes 59 --threads 1 \
    --backends torch faiss --timeout 7200 \
    --json "$out/knn_build_pixels.json" | tee "$out/knn_build_pixels.txt"
}
study() {
  python "$out/run.py" --threads 1 --output "$out/results"
}
case "${1:-all}" in
  benchmark) benchmark ;;
  study) study ;;
  all) benchmark; study ;;
  *) echo "usage: $0 [benchmark|study]" >&2; exit 2 ;;
esac
