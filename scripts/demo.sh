#!/usr/bin/env bash
# Sets up (scripts/setup.sh), then prepares the bundled sample corpus
# (data/sample, flite voice slt, 16 kHz) into training shards in prepared/sample.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export TF_CPP_MIN_LOG_LEVEL=2
.venv/bin/mmae prepare data/sample prepared/sample --config flite16k
echo
sed -n '1,20p' prepared/sample/report.md
