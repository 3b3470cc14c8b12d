#!/usr/bin/env bash
# Make a virtual environment at PATH where the-well 1.2.0 loads Spinlock's the_well exports and its Trainer trains
# the benchmark FNO and UNetClassic on CPU (tests/export/well_check.py runs there). Its own environment: the-well
# pins fsspec==2024.10.0, which Spinlock's stack does not take.
#
#   .ci/the_well_env.sh PATH        # then: export SPINLOCK_THE_WELL_PYTHON=PATH/bin/python
#
# What is installed, and why (the `benchmark` extra would pull wandb, hydra, plotly, torchinfo, a timm that needs
# torchvision, and a torch_harmonics that needs triton):
#   torch==2.13.0 first, and as a constraint on every later step: here it resolves to the local CPU wheel; any
#     other pin (or letting pip upgrade it) pulls a multi-GB CUDA build;
#   the-well==1.2.0 with its own dependencies (einops, h5py, numpy, pyyaml, fsspec);
#   without their declared dependencies: neuraloperator==0.3.0 (the FNO; it declares pytest, black and configmypy,
#     which it does not import), tensorly-torch==0.5.0, torch_harmonics==0.6.3 (neuralop imports it; 0.6.4+
#     import triton);
#   tensorly, opt-einsum (neuralop), matplotlib (the Trainer's validation plots), huggingface_hub (the models' base
#     class), tqdm (the Trainer).
# Not installed: wandb (well_check.py hands the Trainer a recorder module in its place) and timm (only the AFNO,
# AViT and UNetConvNext models use it; well_check.py imports FNO and UNetClassic without the models package's
# __init__ when timm is absent).
#
# Idempotent: a stamp holding this script's hash marks a complete environment; a second run with an unchanged
# script only checks the imports. Set PYTHON to choose the interpreter (default python3, >= 3.10).
set -euo pipefail
venv=${1:?usage: .ci/the_well_env.sh PATH}
py=${PYTHON:-python3}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
recipe=$(sha256sum "$here/the_well_env.sh" | cut -c1-16)
stamp="$venv/.spinlock-the-well-env"
# neuralop imports wandb at import time: the check, like well_check.py, puts a stand-in module first.
check='import sys, types; sys.modules["wandb"] = types.ModuleType("wandb")
import torch, the_well, neuralop, matplotlib, huggingface_hub, tqdm
assert torch.__version__.split("+")[0] == "2.13.0", torch.__version__
from the_well.data import WellDataset
from the_well.benchmark.trainer import Trainer'
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$recipe" ] && "$venv/bin/python" -c "$check" 2>/dev/null; then
  echo "the_well env: $venv is current ($recipe)"
  exit 0
fi
start=$(date +%s)
rm -f "$stamp"
[ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
pip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check)
constraints="$venv/spinlock-constraints.txt"
cat >"$constraints" <<'PINS'
torch==2.13.0
the-well==1.2.0
fsspec==2024.10.0
einops==0.8.2
h5py==3.16.0
numpy==2.4.6
pyyaml==6.0.4
neuraloperator==0.3.0
tensorly==0.10.0
tensorly-torch==0.5.0
torch-harmonics==0.6.3
opt-einsum==3.4.0
scipy==1.17.1
matplotlib==3.11.2
huggingface-hub==0.36.0
tqdm==4.70.1
PINS
echo "+ the_well env at $venv: torch"
"${pip[@]}" -c "$constraints" torch==2.13.0
echo "+ the-well and what its Trainer and benchmark FNO / UNetClassic import"
"${pip[@]}" -c "$constraints" the-well==1.2.0
"${pip[@]}" -c "$constraints" tensorly==0.10.0 opt-einsum==3.4.0 matplotlib==3.11.2 huggingface-hub==0.36.0 tqdm==4.70.1
"${pip[@]}" -c "$constraints" --no-deps neuraloperator==0.3.0 tensorly-torch==0.5.0 torch-harmonics==0.6.3
"$venv/bin/python" -c "$check"
echo "$recipe" >"$stamp"
echo "the_well env: $venv ready in $(($(date +%s) - start)) s"
