#!/usr/bin/env bash
# The paper's third finding on our data: does noise-conditioning augmentation
# help the super-resolution stage? Trains two SR U-Nets from scratch, alike
# but for the augmentation: one draws its level uniformly from 0..=250 (as
# the shipped SR does), one trains at level 0 throughout. Both predict v, as
# the shipped SR does, so that neither loses the backgrounds' colours the
# way a noise-predicting SR does (docs/evaluation.md). Then it scores both
# behind the shipped base stage, each sampled at augmentation level 100
# (the cascade's default), 0, 250 and 400; the last two give the SR inputs
# noisier than the base's output, the robustness the augmentation is for
# (docs/evaluation.md, Ablations). About 25 minutes on two cores.
#
#   bash tools/demo/sr_ablation.sh [STEPS]
set -euo pipefail
cd "$(dirname "$0")/../.."
STEPS=${1:-1500}
RUNS=${RUNS:-runs}
EX=target/release/examples
cargo build --release --example train --example demo_cascade --example evaluate

# The two runs train at the same time, about one core each.
for run in aug:250 noaug:0; do
  name=${run%%:*}
  "$EX/train" --stage sr --out "$RUNS/sr-ablation-$name" --resolution 256 --crop 64 --lowres 16 \
    --max-noise-level "${run#*:}" --steps "$STEPS" --preset demo_sr --seed 1 --v-prediction \
    --text-encoder models/demo/text_encoder --max-length 40 --shapes 50000 --batch 16 \
    --lr 2e-4 --warmup 200 --ema-decay 0.999 --save-every 250 --resume \
    > "$RUNS/sr-ablation-$name.log" 2>&1 &
done
wait

for name in aug noaug; do
  "$EX/demo_cascade" --text models/demo/text_encoder --base models/demo/base/unet \
    --sr "$RUNS/sr-ablation-$name/unet-ema" --base-v-prediction --sr-v-prediction \
    --out "$RUNS/cascade-sr-$name"
  for level in 100 0 250 400; do
    "$EX/evaluate" --model-dir "$RUNS/cascade-sr-$name" --per-category 5 \
      --noise-level "$level" --out "eval/sr-ablation-$name-$level"
  done
done
