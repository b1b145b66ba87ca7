#!/usr/bin/env bash
# Makes the bundled phoneme text frontend (mmae/assets/frontend_en-us) again,
# from nothing: the pronunciation lexicon of WordNet's words read by espeak-ng
# (`mmae prepare-lexicon`, about eight minutes), the G2P model trained on its words
# (`mmae train-g2p`, mmae/configs/g2p.yaml: 20,000 steps, about 80 minutes
# of both cores), then both packed, the G2P in float16, with its held-out error
# rates in report.json.
#
#   bash scripts/make_bundled_frontend.sh
#
# Every step resumes: rerun after an interruption (the run keeps its
# checkpoints in runs/g2p).
#
# A frontend version that changes the lexicon's context entries, or adds a
# few words, can keep the bundled G2P; version 5 was made so:
#
#   .venv/bin/mmae prepare-lexicon prepared/lexicon5
#   .venv/bin/python -m mmae.pretrained --relexicon mmae/assets/frontend_en-us \
#     --lexicon prepared/lexicon5 --out mmae/assets/frontend_en-us
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [[ ! -f prepared/lexicon/dataset.json ]]; then
  .venv/bin/mmae prepare-lexicon prepared/lexicon
fi
.venv/bin/mmae train-g2p --data prepared/lexicon --run-dir runs/g2p
.venv/bin/python -m mmae.pretrained --g2p-run runs/g2p --lexicon prepared/lexicon \
  --out mmae/assets/frontend_en-us
