#!/usr/bin/env bash
# One training step (forward, loss, backward, Adam) of the project against
# PyTorch's, in one sitting on one machine: flex on all cores and on 2
# (taskset), PyTorch's CPU with the same thread counts, and with --gpu the
# project's GPU backend beside PyTorch CUDA fp32 (TF32 off), both also in
# f16 mixed precision (sflam's `training.precision = "f16"`, PyTorch's
# autocast with a GradScaler; CubeCL's Vulkan computes in f16, not bf16)
# and PyTorch in bf16 too, then benches/gpu_kernels.sh's kernel profile of
# the ViT-B/32 step at f32 and at f16.
# usage: benches/train_step_compare.sh [--gpu]
# TRAIN_STEP_BIN: the example binary (default: built here with `cargo build
# --release --example train_step`, with the gpu feature when --gpu).
set -euo pipefail
cd "$(dirname "$0")/.."
gpu=${1:-}
bin=${TRAIN_STEP_BIN:-}
if [ -z "$bin" ]; then
  features=(); [ "$gpu" = --gpu ] && features=(--features gpu)
  cargo build --release --quiet --example train_step "${features[@]}"
  bin=target/release/examples/train_step
fi
cores=$(nproc)
torch=benches/train_step_torch.py
echo "machine: $cores cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
# vit-small-32 batch 64: the criterion bench's step.
"$bin" --model vit-small-32 --batch 64
"$bin" --model vit-small-32 --batch 64 --micro 2
# One part per core: the batch's gradient data-parallel over all of them
# (training.micro_batches; on 16 cores 4 images a part).
if [ "$cores" -gt 2 ]; then
  "$bin" --model vit-small-32 --batch 64 --micro "$cores"
fi
python3 "$torch" "$cores" --model vit-small-32 --batch 64
taskset -c 0,1 "$bin" --model vit-small-32 --batch 64 --micro 2
taskset -c 0,1 python3 "$torch" 2 --model vit-small-32 --batch 64
# One core: with the two lines above, each side's serial share of the
# step (Amdahl: s = 2 T2 / T1 - 1), what bounds it on many cores.
RAYON_NUM_THREADS=1 taskset -c 0 "$bin" --model vit-small-32 --batch 64 --micro 2
taskset -c 0 python3 "$torch" 1 --model vit-small-32 --batch 64
# The paper's model: ViT-B/32 at 224, batch 32 (all cores only: minutes a step on 2).
"$bin" --model vit-b32 --batch 32 --steps 3
python3 "$torch" "$cores" --model vit-b32 --batch 32 --steps 3
if [ "$gpu" = --gpu ]; then
  for spec in vit-small-32:64 vit-b32:32 vit-b32:64; do
    m=${spec%:*} b=${spec#*:}
    for p in f32 f16; do
      "$bin" --backend wgpu --model "$m" --batch "$b" --steps 20 --precision "$p"
      python3 "$torch" --device cuda --model "$m" --batch "$b" --steps 20 --precision "$p"
    done
    python3 "$torch" --device cuda --model "$m" --batch "$b" --steps 20 --precision bf16
  done
  # Where the GPU step's time goes, kernel by kernel.
  TRAIN_STEP_BIN="$bin" benches/gpu_kernels.sh vit-b32:32
  TRAIN_STEP_BIN="$bin" PRECISION=f16 benches/gpu_kernels.sh vit-b32:32
fi
