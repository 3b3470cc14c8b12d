#!/usr/bin/env bash
# GPU benchmark suite (run on a CUDA machine from the repo root; results as JSON in ${OUT:-.}).
set -u
out=${OUT:-.}
py=${PYTHON:-python3}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
run() { name=$1; shift; echo "== $name: $*"; PYTHONUNBUFFERED=1 $py benchmarks/bench_generate.py --device cuda --no-sensitivity --json "$out/$name.json" "$@" | tail -32; }
run t1_128_fp32        --total-samples 2000 --batch-size 1000 --grid 128 --realizations 10 --timesteps 1
run t1_128_bf16        --total-samples 2000 --batch-size 1000 --grid 128 --realizations 10 --timesteps 1 --precision bfloat16
run t1_128_bf16_cudnnb --total-samples 2000 --batch-size 1000 --grid 128 --realizations 10 --timesteps 1 --precision bfloat16 --cudnn-benchmark
run t1_64_fp32         --total-samples 2000 --batch-size 1000 --grid 64  --realizations 10 --timesteps 1
run t10_128_fp32       --total-samples 500  --batch-size 250  --grid 128 --realizations 10 --timesteps 10
run t10_128_bf16       --total-samples 500  --batch-size 250  --grid 128 --realizations 10 --timesteps 10 --precision bfloat16
