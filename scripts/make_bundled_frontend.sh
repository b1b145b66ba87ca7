#!/usr/bin/env bash
# Makes the bundled phoneme text frontend (mmae/assets/frontend_en-us) again,
# from nothing: the pronunciation lexicon of WordNet's words and a spelling
# dictionary's (/usr/share/dict/american-english-huge) read by espeak-ng
# (`mmae prepare-lexicon`: about four minutes), the G2P model trained on its
# words (`mmae train-g2p`, mmae/configs/g2p.yaml: 20,000 steps, about
# 11,000 CPU-seconds, three hours of both cores), both packed, the G2P in
# float16, with its held-out error rates in report.json (version 8).
#
#   bash scripts/make_bundled_frontend.sh
#
# Every step resumes: rerun after an interruption (the run keeps its
# checkpoints in runs/g2p_dict).
#
# A frontend version that changes only the lexicon (its context entries, or
# its words) keeps the bundled G2P, bit for bit: delete prepared/lexicon_dict
# and rerun the first and last steps, with
#   python -m mmae.pretrained --relexicon mmae/assets/frontend_en-us \
#     --lexicon prepared/lexicon_dict --out mmae/assets/frontend_en-us
# in place of the last. Versions 5, 6 and 7 were made so.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [[ ! -f prepared/lexicon_dict/dataset.json ]]; then
  .venv/bin/mmae prepare-lexicon prepared/lexicon_dict
fi
.venv/bin/mmae train-g2p --data prepared/lexicon_dict --run-dir runs/g2p_dict
.venv/bin/python -m mmae.pretrained --g2p-run runs/g2p_dict --lexicon prepared/lexicon_dict \
  --out mmae/assets/frontend_en-us
