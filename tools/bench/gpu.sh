#!/usr/bin/env bash
# GPU figures for docs/performance.md: the criterion benches built with
# `cargo bench --no-run --no-default-features --features cuda,wgpu` (their
# binaries in $BIN, default target/release/deps) beside PyTorch timing the
# same models on the same GPU, one after the other.
#
#   BIN=dir bash tools/bench/gpu.sh > gpu.log 2>&1
set -uo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-target/release/deps}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
for b in unet_step t5_encode train_step; do
  exe=$(ls "$BIN"/$b-* 2>/dev/null | grep -v '\.d$' | head -1)
  [ -n "$exe" ] || exe=$BIN/$b
  echo "== $b"
  "$exe" --bench --noplot 2>&1 | grep -E "time:|^[a-z0-9_]+/|panicked|rror" | grep -v "^Benchmarking"
done
echo "== PyTorch"
python3 tools/bench/unet_torch.py --threads 16 --device cuda --runs 30
python3 tools/bench/unet_torch.py --threads 16 --device cuda --runs 30 --dtype float16
python3 tools/bench/t5_torch.py --threads 16 --device cuda --runs 50
python3 tools/bench/train_torch.py --threads 16 --device cuda --runs 30
