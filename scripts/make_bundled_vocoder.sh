#!/usr/bin/env bash
# Makes the bundled neural vocoder (mmae/assets/vocos_flite16k) again, from
# nothing: a 2,000-clip corpus of two flite voices (slt and rms, taking turns)
# whose sentences are disjoint from the quality corpora (corpora/slt1600,
# corpora/rms1600: --skip-first 260, 1,600 clips), prepared with its audio,
# then `mmae train-vocoder` for CPU_MINUTES of training-step CPU time
# (default 124, what the bundled one had), then 4,000 more steps, adversarial
# from the first, with the learning rate annealed to zero on a cosine
# (runs/vocoder2v_anneal, about 1.9 CPU-hours), then packed in float16.
#
#   bash scripts/make_bundled_vocoder.sh [CPU_MINUTES]
#
# Every step resumes: rerun after an interruption. A larger budget trains the
# base run on (runs/vocoder2v); delete runs/vocoder2v_anneal to anneal again
# from its newer weights.
set -euo pipefail
cd "$(dirname "$0")/.."
cpu_minutes="${1:-124}"
bash scripts/setup.sh
if [[ ! -f corpora/vocoder2v/metadata.csv ]]; then
  .venv/bin/python data/make_corpus.py corpora/vocoder2v --num-clips 2000 --voices slt rms \
    --skip-first 1860 --format flac
fi
if [[ ! -f prepared/vocoder2v/dataset.json ]]; then
  .venv/bin/mmae prepare corpora/vocoder2v prepared/vocoder2v --config flite16k \
    --set data.store_audio=true
fi
.venv/bin/mmae train-vocoder --data prepared/vocoder2v --run-dir runs/vocoder2v \
  --set train.checkpoint_every=1000 --set train.keep_checkpoints=80 --cpu-minutes "$cpu_minutes"
.venv/bin/mmae train-vocoder --data prepared/vocoder2v --run-dir runs/vocoder2v_anneal \
  --init-from runs/vocoder2v --set vocoder.adversarial_start=0 --set train.steps=4000
.venv/bin/python -m mmae.pretrained --vocoder-run runs/vocoder2v_anneal --out mmae/assets/vocos_flite16k
