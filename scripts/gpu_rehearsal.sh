#!/usr/bin/env bash
# The protocol's full-scale rehearsal on one GPU: one trial (3 validation folds × 15 epochs) and
# one refit (trainval, 15 epochs, one test) on data=synthetic data.like=cub and like=awa2 with
# trainer=gpu; prints the wall times, the projected whole-protocol time and the peak CPU and GPU
# memory, one JSON line per dataset (README, "The protocol at benchmark scale").
# Needs torch (CUDA build), lightning, torchmetrics and this project installed (`pip install -e .`
# or its wheel); no data files. Usage: bash scripts/gpu_rehearsal.sh [more protocol overrides]
set -euo pipefail
cd "$(dirname "$0")/.."
python -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name())"
for like in cub awa2; do
  start=$(date +%s)
  python scripts/rehearsal.py "$like" trainer=gpu "$@" | tail -n 1
  echo "like=$like: $(( $(date +%s) - start )) s in all (start-up and data generation included)"
done
