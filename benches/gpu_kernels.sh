#!/usr/bin/env bash
# Where the GPU step's time goes (issue 15: "where Burn is the bound"): for
# each MODEL:BATCH, the project's step on `training.backend = "wgpu"`
#   1. unprofiled, at the autotuner's default level and at "extensive";
#   2. with CubeCL's kernel profiler on (a `cubecl.toml` in a scratch
#      directory the binary runs from), twice, with 2 and with 2 + STEPS
#      timed steps; benches/kernel_summary.py subtracts the shorter log from
#      the longer one kernel by kernel, leaving STEPS steady-state steps
#      without the first steps' compilation and autotuning, and prints each
#      kernel family's share, time and launches a step, and how much of the
#      unprofiled step the kernels account for (the rest is the host:
#      launches, autodiff bookkeeping, synchronisation).
# The profiler times every launch on its own, so the profiled runs' wall
# times are not the step's; step 1's are.
# usage: benches/gpu_kernels.sh [MODEL:BATCH ...]   (default vit-b32:32)
# STEPS (default 5); PRECISION (default f32; bf16 profiles
# `training.precision = "bf16"`); TRAIN_STEP_BIN: the example binary
# (default: built here with `cargo build --release --example train_step
# --features gpu`).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${TRAIN_STEP_BIN:-}
if [ -z "$bin" ]; then
  cargo build --release --quiet --example train_step --features gpu
  bin=target/release/examples/train_step
fi
bin=$(realpath "$bin")
summary=$(realpath benches/kernel_summary.py)
steps=${STEPS:-5}
precision=${PRECISION:-f32}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The step of the current MODEL:BATCH ($m, $b) from the scratch directory.
run() { (cd "$work" && "$bin" --backend wgpu --model "$m" --batch "$b" --precision "$precision" "$@"); }
[ $# -gt 0 ] || set -- vit-b32:32
for spec in "$@"; do
  m=${spec%:*} b=${spec#*:}
  line=$(run --steps 20)
  echo "$line"
  step_s=$(grep -o '[0-9.]* s/step' <<<"$line" | cut -d' ' -f1)
  echo "autotune extensive: $(CUBECL_AUTOTUNE_LEVEL=extensive run --steps 20)"
  for n in 2 $((2 + steps)); do
    printf '[profiling.logger]\nlevel = "basic"\nfile = "%s/kernels-%s.log"\nappend = false\n' "$work" "$n" >"$work/cubecl.toml"
    run --steps "$n" >/dev/null
  done
  rm -f "$work/cubecl.toml"
  echo "kernels of $m, batch $b, $precision ($steps steps):"
  python3 "$summary" "$work/kernels-$((2 + steps)).log" --minus "$work/kernels-2.log" --steps "$steps" --step-s "$step_s"
done
