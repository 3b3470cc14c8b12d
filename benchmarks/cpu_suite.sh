#!/usr/bin/env bash
# CPU benchmark suite (2-core reference machine); results as JSON in ${OUT:-benchmarks/results}.
set -u
out=${OUT:-benchmarks/results}
py=${PYTHON:-.venv/bin/python}
run() { name=$1; shift; echo "== $name: $*"; $py benchmarks/bench_generate.py --device cpu --no-sensitivity --json "$out/$name.json" "$@" | tail -32; }
run cpu_t1_64_fp32   --total-samples 100 --batch-size 50 --grid 64  --realizations 5 --timesteps 1
run cpu_t1_64_bf16   --total-samples 100 --batch-size 50 --grid 64  --realizations 5 --timesteps 1 --precision bfloat16
run cpu_t1_128_fp32  --total-samples 40  --batch-size 20 --grid 128 --realizations 5 --timesteps 1
run cpu_t10_64_fp32  --total-samples 20  --batch-size 10 --grid 64  --realizations 5 --timesteps 10
run cpu_t10_64_bf16  --total-samples 20  --batch-size 10 --grid 64  --realizations 5 --timesteps 10 --precision bfloat16
