#!/usr/bin/env bash
# GPU figures for docs/performance.md in one call on a freshly started GPU
# machine: burn (examples/gpu_bench.rs, built with --features cuda) beside
# PyTorch (tools/bench/*_torch.py, eager, then torch.compile while time is
# left) on the same card, one workload after the other, ending with one
# markdown table (tools/bench/gpu_table.py).
#
#   bash tools/bench/gpu.sh --prepare   # here (CPU, with cargo and internet):
#       builds .gpubin/gpu_bench.xz (release, --features cuda) and fetches the
#       diffusers wheel into .whl/ (the GPU image has torch, not diffusers)
#   bash tools/bench/gpu.sh             # there: the whole run, < 10 minutes
#   bash tools/bench/gpu.sh --dry-run   # here: the same plumbing on the CPU,
#       tiny shapes, one run each (BACKEND=wgpu for burn-wgpu on lavapipe)
#
# The device tool call (see docs/performance.md, "On a GPU"):
#   carry [".gpubin", ".whl", ".gpucache"], timeout_s 600,
#   command: bash tools/bench/gpu.sh
# It writes results.jsonl, table.md and autotune.tgz (cubecl's autotune
# cache) to $OUT; put autotune.tgz into .gpucache/ before the next call and
# that call starts with every shape tuned.
#
# The GPU machine has no Rust toolchain and no network, and the crates of a
# cuda build do not fit the 64 MiB the tool carries, so the binary is built
# here. Where cargo exists there (another machine), it is built in place,
# offline, from ~/.cargo's registry: `cargo build --release --offline
# --features cuda --example gpu_bench`.
#
# Environment: BUDGET_S (default 560: seconds for the whole run), BIN (a
# gpu_bench binary to use), PY (python3), RESULTS (a directory; default $OUT,
# else target/gpu-bench), CUBECL_AUTOTUNE_LEVEL (cubecl's, default balanced),
# COMPILE=0 (skip torch.compile), WORKLOADS (comma list, default all).
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
MODE=run
case "${1:-}" in
  --prepare) MODE=prepare ;;
  --dry-run) MODE=dry ;;
  "") ;;
  *) echo "usage: $0 [--prepare|--dry-run]" >&2; exit 2 ;;
esac

if [ "$MODE" = prepare ]; then
  set -e
  mkdir -p .gpubin
  EXCLUDE=$(git rev-parse --git-path info/exclude)
  mkdir -p "$(dirname "$EXCLUDE")"
  for d in /.gpubin/ /.whl/ /.gpucache/; do
    grep -qx "$d" "$EXCLUDE" 2>/dev/null || echo "$d" >> "$EXCLUDE"
  done
  cargo build --release --no-default-features --features cuda --example gpu_bench
  T=${CARGO_TARGET_DIR:-target}
  strip -o .gpubin/gpu_bench "$T/release/examples/gpu_bench"
  xz -T0 -9 -f .gpubin/gpu_bench
  git rev-parse HEAD > .gpubin/REVISION
  git status --porcelain --untracked-files=no | grep -q . && echo "(with uncommitted changes)" >> .gpubin/REVISION
  mkdir -p .whl
  ${PY:-python3} -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_17_x86_64 --platform any -d .whl \
    diffusers==0.42.1 importlib_metadata lazy-importer
  ls -l .gpubin .whl
  echo "carry .gpubin .whl (.gpucache if you have an autotune.tgz there)"
  exit 0
fi

START=$SECONDS
BUDGET_S=${BUDGET_S:-560}
left() { echo $((BUDGET_S - (SECONDS - START))); }
RESULTS=${RESULTS:-${OUT:-target/gpu-bench}}
mkdir -p "$RESULTS"
R=$RESULTS/results.jsonl
: > "$R"
PY=${PY:-python3}
IFS=, read -r -a WL <<< "${WORKLOADS:-unet_f32,unet_f16,unet_bf16,t5_base,t5_xxl,train_27m,generate}"
note() { printf '{"impl": "meta", "detail": "%s"}\n' "$*" | tee -a "$R"; }
skip() { # impl name dtype compile status detail
  printf '{"impl": "%s", "name": "%s", "dtype": "%s", "compile": %s, "status": "%s", "detail": "%s"}\n' "$@" | tee -a "$R"
}

if [ "$MODE" = dry ]; then
  BACKEND=${BACKEND:-cpu}
  DEVICE=cpu
  BARGS=(--tiny --warmup 1 --runs 1 --max-seconds 1)
  PARGS=(--threads "$(nproc)" --device cpu --runs 1)
  COMPILE=${COMPILE:-0}
  if [ -z "${BIN:-}" ]; then
    F=(); [ "$BACKEND" = wgpu ] && F=(--no-default-features --features wgpu)
    [ "$BACKEND" = wgpu ] && export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}
    cargo build "${F[@]}" --example gpu_bench || exit 1
    BIN=${CARGO_TARGET_DIR:-target}/debug/examples/gpu_bench
  fi
else
  DEVICE=cuda
  BARGS=(--warmup 2 --runs 20 --max-seconds 15)
  PARGS=(--threads "$(nproc)" --device cuda --runs 30)
  COMPILE=${COMPILE:-1}
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
  # cudarc loads libcuda and libnvrtc at run time: the driver's, the CUDA
  # toolkit's, or the copies in PyTorch's nvidia-* wheels.
  for d in /usr/local/cuda/lib64 $($PY -c 'import nvidia, os; print(" ".join(os.path.join(p, s, "lib") for p in nvidia.__path__ for s in os.listdir(p)))' 2>/dev/null); do
    [ -d "$d" ] && LD_LIBRARY_PATH=${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$d
  done
  export LD_LIBRARY_PATH
  if [ -z "${BIN:-}" ]; then
    if [ -f .gpubin/gpu_bench.xz ]; then
      BIN=/tmp/gpu_bench
      xz -dc .gpubin/gpu_bench.xz > $BIN 2>/dev/null \
        || $PY -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' .gpubin/gpu_bench.xz $BIN
      chmod +x $BIN
      note "gpu_bench from .gpubin, built at $(tr '\n' ' ' < .gpubin/REVISION 2>/dev/null)"
    elif command -v cargo >/dev/null; then
      cargo build --release --offline --no-default-features --features cuda --example gpu_bench || exit 1
      BIN=${CARGO_TARGET_DIR:-target}/release/examples/gpu_bench
    else
      echo "no .gpubin/gpu_bench.xz and no cargo here: run 'bash tools/bench/gpu.sh --prepare' on a machine with cargo and carry .gpubin" >&2
      exit 1
    fi
  fi
  # diffusers (and what it needs beyond the image's packages) from .whl/.
  if ls .whl/*.whl >/dev/null 2>&1; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
      && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
  fi
  # cubecl's autotune cache lives in target/autotune (the directory above
  # the nearest Cargo.toml): restore the one a previous call brought back.
  if [ -f .gpucache/autotune.tgz ]; then
    mkdir -p target && tar xzf .gpucache/autotune.tgz -C target && note "autotune cache restored from .gpucache"
  fi
fi
note "mode $MODE, budget ${BUDGET_S}s, autotune level ${CUBECL_AUTOTUNE_LEVEL:-balanced}"
export PYTHONUNBUFFERED=1
HAVE_TORCH=1
$PY -c 'import torch' 2>/dev/null || HAVE_TORCH=0
HAVE_DIFFUSERS=1
$PY -c 'import diffusers' 2>/dev/null || HAVE_DIFFUSERS=0

# One burn workload: its JSON line, or a skip line saying why there is none.
burn() {
  local w=$1 cap=$2 t
  t=$(left); [ "$t" -gt "$cap" ] && t=$cap
  if [ "$t" -lt 10 ]; then skip burn "$w" "" false skipped "no time left"; return; fi
  local before; before=$(wc -l < "$R")
  timeout "$t" "$BIN" --only "$w" "${BARGS[@]}" 2> "$RESULTS/burn_$w.log" | tee -a "$R"
  local rc=${PIPESTATUS[0]}
  if [ "$rc" = 124 ]; then skip burn "$w" "" false timeout "over ${t}s (see burn_$w.log)"
  elif [ "$(wc -l < "$R")" = "$before" ]; then skip burn "$w" "" false error "exit $rc: $(tail -1 "$RESULTS/burn_$w.log" | tr -d '"\\' | cut -c1-120)"
  fi
}

# One PyTorch run: script, JSON name, dtype, compile flag, time cap, args.
torch_run() {
  local script=$1 name=$2 dtype=$3 comp=$4 cap=$5; shift 5
  local t; t=$(left); [ "$t" -gt "$cap" ] && t=$cap
  if [ "$HAVE_TORCH" = 0 ]; then skip torch "$name" "$dtype" "$comp" skipped "no torch in $PY"; return; fi
  if [ "$script" != t5_torch.py ] && [ "$HAVE_DIFFUSERS" = 0 ]; then skip torch "$name" "$dtype" "$comp" skipped "no diffusers"; return; fi
  if [ "$t" -lt 10 ]; then skip torch "$name" "$dtype" "$comp" skipped "no time left"; return; fi
  local flag=(); [ "$comp" = true ] && flag=(--compile)
  local log=$RESULTS/torch_${name}_${dtype}_${comp}.log before; before=$(wc -l < "$R")
  timeout "$t" $PY tools/bench/$script "${PARGS[@]}" "${flag[@]}" "$@" 2> "$log" | grep '^{' | tee -a "$R"
  local rc=${PIPESTATUS[0]}
  if [ "$rc" = 124 ]; then skip torch "$name" "$dtype" "$comp" timeout "over ${t}s"
  elif [ "$(wc -l < "$R")" = "$before" ]; then skip torch "$name" "$dtype" "$comp" error "exit $rc: $(tail -1 "$log" | tr -d '"\\' | cut -c1-120)"
  fi
}

# PyTorch's counterpart of a burn workload (none for generate).
torch_for() {
  local w=$1 comp=$2 cap=$3
  case $w in
    unet_f32) torch_run unet_torch.py if_like_110m_64x64_b2 float32 "$comp" "$cap" ;;
    unet_f16) torch_run unet_torch.py if_like_110m_64x64_b2 float16 "$comp" "$cap" --dtype float16 ;;
    unet_bf16) torch_run unet_torch.py if_like_110m_64x64_b2 bfloat16 "$comp" "$cap" --dtype bfloat16 ;;
    t5_base) torch_run t5_torch.py v1_1_base_1x77 float32 "$comp" "$cap" --only v1_1_base_1x77 ;;
    t5_xxl)
      if [ "$MODE" = dry ]; then skip torch v1_1_xxl_1x77 float32 "$comp" skipped "not on the CPU (19 GB of f32 weights)"
      else torch_run t5_torch.py v1_1_xxl_1x77 float32 "$comp" "$cap" --only v1_1_xxl_1x77; fi ;;
    train_27m) torch_run train_torch.py if_small_64x64_b8 float32 "$comp" "$cap" ;;
  esac
}

# burn and eager PyTorch workload by workload, so that a run cut short still
# pairs them; the first burn call of each shape autotunes it (cached on disk).
for w in "${WL[@]}"; do
  echo "== $w ($(left)s left)" >&2
  burn "$w" 150
  torch_for "$w" false 90
done
if [ "$COMPILE" = 1 ]; then
  for w in "${WL[@]}"; do
    [ "$w" = t5_xxl ] && continue # compile of a 4.8B model does not fit the call
    echo "== $w, torch.compile ($(left)s left)" >&2
    torch_for "$w" true 150
  done
fi

if [ "$MODE" = run ] && [ -d target/autotune ]; then
  tar czf "$RESULTS/autotune.tgz" -C target autotune && note "autotune cache saved: $(du -h "$RESULTS/autotune.tgz" | cut -f1)"
fi
$PY tools/bench/gpu_table.py "$R" | tee "$RESULTS/table.md"
echo "($((SECONDS - START))s; results in $RESULTS)" >&2
