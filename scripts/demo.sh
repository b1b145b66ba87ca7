#!/usr/bin/env bash
# Sets up (scripts/setup.sh), speaks a sentence with the bundled pretrained
# model, prepares the bundled sample corpus (data/sample, flite voice slt,
# 16 kHz) into training shards, trains the cross-modal autoencoder on it for
# a few minutes (rerun to resume; `mmae train` goes on from the last
# checkpoint) and speaks the same sentence with the freshly trained run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export TF_CPP_MIN_LOG_LEVEL=2
text="The cross modal autoencoder turns text into speech."
mkdir -p runs
echo "== Synthesis with the bundled pretrained model (85 CPU-minutes of training on an hour of speech)"
.venv/bin/mmae synthesize "$text" -o runs/pretrained.wav --plot
echo
echo "== Preparing the sample corpus"
.venv/bin/mmae prepare data/sample prepared/sample --config flite16k
echo
sed -n '1,12p' prepared/sample/report.md
echo
echo "== Training on it"
steps=${MMAE_DEMO_STEPS:-150}
.venv/bin/mmae train --data prepared/sample --run-dir runs/sample --steps "$steps" \
  --set train.eval_every=50 --set train.checkpoint_every=50 --set train.log_every=25
echo
echo "== Synthesis with the run just trained ($steps steps: expect mumbling)"
.venv/bin/mmae synthesize --run runs/sample "$text" -o runs/sample/speech.wav --plot
echo
echo "Listen: runs/pretrained.wav (mel: runs/pretrained.png), runs/sample/speech.wav."
echo "Training curves, mels, alignments and audio: .venv/bin/tensorboard --logdir runs/sample/tensorboard"
