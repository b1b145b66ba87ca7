#!/usr/bin/env bash
# Sets up (scripts/setup.sh), prepares the bundled sample corpus (data/sample,
# flite voice slt, 16 kHz) into training shards, and trains the cross-modal
# autoencoder on it for a few minutes (rerun to resume; `mmae train` goes on
# from the last checkpoint).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export TF_CPP_MIN_LOG_LEVEL=2
.venv/bin/mmae prepare data/sample prepared/sample --config flite16k
echo
sed -n '1,12p' prepared/sample/report.md
echo
steps=${MMAE_DEMO_STEPS:-150}
.venv/bin/mmae train --data prepared/sample --run-dir runs/sample --steps "$steps" \
  --set train.eval_every=50 --set train.checkpoint_every=50 --set train.log_every=25
echo
echo "Training curves, mels, alignments and audio: .venv/bin/tensorboard --logdir runs/sample/tensorboard"
