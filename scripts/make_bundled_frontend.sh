#!/usr/bin/env bash
# Makes the bundled phoneme text frontend (mmae/assets/frontend_en-us) again,
# from nothing: the pronunciation lexicon of WordNet's words read by espeak-ng
# (`mmae prepare-lexicon --word-list`, with no list: a few minutes), the
# G2P model trained on its words (`mmae train-g2p`, mmae/configs/g2p.yaml:
# 20,000 steps, about 80 minutes of both cores), both packed, the G2P in
# float16, with its held-out error rates in report.json; then the lexicon
# again with a spelling dictionary's words too (`mmae prepare-lexicon`, its
# default word list /usr/share/dict/american-english-huge: about four
# minutes), put in the pack beside the same G2P (versions 6 and 7).
#
#   bash scripts/make_bundled_frontend.sh
#
# Every step resumes: rerun after an interruption (the run keeps its
# checkpoints in runs/g2p).
#
# A frontend version that changes only the lexicon (its context entries, or
# its words) keeps the bundled G2P, bit for bit: the last two steps alone
# make it (delete prepared/lexicon_dict first). Versions 5, 6 and 7 were made so.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [[ ! -f prepared/lexicon/dataset.json ]]; then
  .venv/bin/mmae prepare-lexicon prepared/lexicon --word-list
fi
.venv/bin/mmae train-g2p --data prepared/lexicon --run-dir runs/g2p
.venv/bin/python -m mmae.pretrained --g2p-run runs/g2p --lexicon prepared/lexicon \
  --out mmae/assets/frontend_en-us
if [[ ! -f prepared/lexicon_dict/dataset.json ]]; then
  .venv/bin/mmae prepare-lexicon prepared/lexicon_dict
fi
.venv/bin/python -m mmae.pretrained --relexicon mmae/assets/frontend_en-us \
  --lexicon prepared/lexicon_dict --out mmae/assets/frontend_en-us
