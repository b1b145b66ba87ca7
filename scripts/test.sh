#!/usr/bin/env bash
# Sets up (scripts/setup.sh) and runs the whole test suite: tests/ and every
# notebook in notebooks/ (executed by nbmake in their small-size mode), one
# pytest worker per core (pytest-xdist; MMAE_TEST_WORKERS=1 for one process).
# A file's tests stay on one worker, so its module fixtures are built once.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev,phonemes,eval,serve
export TF_CPP_MIN_LOG_LEVEL=2
# The notebooks' parameters cells read this and pick tiny sizes.
export MMAE_NOTEBOOK_SMALL=1
if [ "$#" -eq 0 ]; then
    set -- tests notebooks
fi
exec .venv/bin/python -m pytest -q --durations=20 -n "${MMAE_TEST_WORKERS:-auto}" --dist loadfile \
    --nbmake --nbmake-timeout=900 "$@"
