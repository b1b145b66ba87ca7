#!/usr/bin/env bash
# Makes the bundled phoneme text frontend (mmae/assets/frontend_en-us) again,
# from nothing, in two stages (version 9):
#   1. the lexicon of WordNet's words and a spelling dictionary's
#      (/usr/share/dict/american-english-huge) read by espeak-ng
#      (`mmae prepare-lexicon`: about four minutes), and the G2P model
#      trained on its words from nothing (`mmae train-g2p`,
#      mmae/configs/g2p.yaml: 20,000 steps, about 11,000 CPU-seconds, three
#      hours of both cores), packed in float16 (version 8's frontend);
#   2. the lexicon of the larger spelling dictionary
#      (/usr/share/dict/american-english-insane, more names and rare words:
#      about eight minutes), and that G2P fine-tuned on its words from the
#      packed one (6,000 steps at a peak rate of 3e-4, about 3,300
#      CPU-seconds), both packed, with its held-out error rates in
#      report.json.
#
#   bash scripts/make_bundled_frontend.sh
#
# Every step resumes: rerun after an interruption (the runs keep their
# checkpoints in runs/g2p_dict and runs/g2p_insane).
#
# A frontend version that changes only the lexicon (its context entries, or
# its words) keeps the bundled G2P, bit for bit: delete prepared/lexicon_insane
# and rerun its prepare-lexicon step, then
#   python -m mmae.pretrained --relexicon mmae/assets/frontend_en-us \
#     --lexicon prepared/lexicon_insane --out mmae/assets/frontend_en-us
# Versions 5, 6 and 7 were made so.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [[ ! -f prepared/lexicon_dict/dataset.json ]]; then
  .venv/bin/mmae prepare-lexicon prepared/lexicon_dict --word-list /usr/share/dict/american-english-huge
fi
.venv/bin/mmae train-g2p --data prepared/lexicon_dict --run-dir runs/g2p_dict
if [[ ! -f runs/frontend_v8/report.json ]]; then
  .venv/bin/python -m mmae.pretrained --g2p-run runs/g2p_dict --lexicon prepared/lexicon_dict \
    --out runs/frontend_v8
fi
if [[ ! -f prepared/lexicon_insane/dataset.json ]]; then
  .venv/bin/mmae prepare-lexicon prepared/lexicon_insane   # the default word list
fi
.venv/bin/mmae train-g2p --data prepared/lexicon_insane --run-dir runs/g2p_insane \
  --init-from runs/frontend_v8 --set train.steps=6000 --set train.learning_rate=3e-4 \
  --set train.warmup_steps=200
.venv/bin/python -m mmae.pretrained --g2p-run runs/g2p_insane --lexicon prepared/lexicon_insane \
  --out mmae/assets/frontend_en-us
