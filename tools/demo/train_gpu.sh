#!/usr/bin/env bash
# Trains the demo cascade's two U-Nets at once on one GPU, from the shipped
# text encoder (models/demo/text_encoder); the shipped base and SR stages
# were trained this way on an NVIDIA H200. Build the trainer with
#   cargo build --release --no-default-features --features cuda --example train
# then
#   bash tools/demo/train_gpu.sh [BASE_STEPS] [SR_STEPS]
# and assemble the cascade as tools/demo/train.sh does (demo_cascade).
# Re-running resumes both from their last checkpoints.
set -euo pipefail
cd "$(dirname "$0")/../.."
BASE_STEPS=${1:-8000}
SR_STEPS=${2:-8000}
BATCH=${BATCH:-128}
RUNS=${RUNS:-runs}
EX=${EX:-target/release/examples}
mkdir -p "$RUNS"
common=(--text-encoder models/demo/text_encoder --max-length 40 --shapes 100000
  --batch "$BATCH" --workers 6 --encode-batch 512 --lr 3e-4 --min-lr 3e-5 --warmup 500
  --ema-decay 0.9995 --min-snr 5 --save-every 500 --resume)
"$EX/train" --stage base --out "$RUNS/base" --resolution 64 --steps "$BASE_STEPS" \
  --preset demo_base "${common[@]}" > "$RUNS/base.log" 2>&1 &
"$EX/train" --stage sr --out "$RUNS/sr" --resolution 256 --crop 64 --lowres 16 \
  --max-noise-level 250 --steps "$SR_STEPS" --preset demo_sr --seed 1 "${common[@]}" \
  > "$RUNS/sr.log" 2>&1 &
wait
