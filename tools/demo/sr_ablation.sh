#!/usr/bin/env bash
# The paper's third finding on our data: does noise-conditioning augmentation
# help the super-resolution stage? Trains a second SR U-Net exactly like the
# first 1,500 steps of tools/demo/train.sh's SR run but without augmentation
# (level 0 throughout), then scores both behind the shipped base stage, each
# sampled at augmentation level 100 and 0 (docs/evaluation.md, Ablations).
#
#   bash tools/demo/sr_ablation.sh [AUG_SR_DIR]
#
# AUG_SR_DIR is the augmented run's 1,500-step EMA U-Net (train.sh writes it
# to runs/sr/unet-ema when run with SR_STEPS=1500).
set -euo pipefail
cd "$(dirname "$0")/../.."
AUG_SR=${1:-runs/sr/unet-ema}
RUNS=${RUNS:-runs}
EX=target/release/examples
cargo build --release --example train --example demo_cascade --example evaluate

"$EX/train" --stage sr --out "$RUNS/sr-noaug" --resolution 256 --crop 64 --lowres 16 \
  --max-noise-level 0 --steps 1500 --preset demo_sr --seed 1 \
  --text-encoder models/demo/text_encoder --max-length 40 --shapes 50000 --batch 16 \
  --lr 2e-4 --warmup 200 --ema-decay 0.999 --min-snr 5 --save-every 250 --resume \
  > "$RUNS/sr-noaug.log" 2>&1

for run in aug:"$AUG_SR" noaug:"$RUNS/sr-noaug/unet-ema"; do
  name=${run%%:*}
  "$EX/demo_cascade" --text models/demo/text_encoder --base models/demo/base/unet \
    --sr "${run#*:}" --base-v-prediction --out "$RUNS/cascade-sr-$name"
  for level in 100 0; do
    "$EX/evaluate" --model-dir "$RUNS/cascade-sr-$name" --per-category 5 \
      --noise-level "$level" --out "eval/sr-ablation-$name-$level"
  done
done
