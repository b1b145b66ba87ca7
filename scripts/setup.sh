#!/usr/bin/env bash
# Sets up everything mmae needs on a fresh Debian/Ubuntu machine, idempotently:
# system packages (speech synthesizers, python venv support), then a virtual
# environment in .venv with the pinned requirements and mmae installed.
#
#   bash scripts/setup.sh [EXTRAS]     e.g. EXTRAS=dev,phonemes,eval
#
# A second run with nothing changed takes about a second.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-phonemes,eval}"
venv=.venv

say() { printf '[setup] %s\n' "$*"; }

as_root() {
  if [[ $(id -u) == 0 ]]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else return 1; fi
}

# flite and espeak-ng synthesize the sample corpora and run the phoneme
# tokenizer; python3-venv provides ensurepip on Debian.
missing=()
command -v flite >/dev/null || missing+=(flite)
command -v espeak-ng >/dev/null || missing+=(espeak-ng)
# WordNet and a spelling dictionary's word lists: the words of the text
# frontend's pronunciation lexicon (`mmae prepare-lexicon`; the huge list
# is the first stage of scripts/make_bundled_frontend.sh).
[[ -d /usr/share/wordnet ]] || missing+=(wordnet-base)
[[ -f /usr/share/dict/american-english-huge ]] || missing+=(wamerican-huge)
[[ -f /usr/share/dict/american-english-insane ]] || missing+=(wamerican-insane)
# The test suite drives `mmae serve`'s page in Debian's headless Chromium.
if [[ ,$extras, == *,dev,* ]]; then
  command -v chromium >/dev/null || missing+=(chromium)
  command -v chromedriver >/dev/null || missing+=(chromium-driver)
fi

pick_python() {
  for candidate in python3.12 python3.11 python3.10 python3; do
    if command -v "$candidate" >/dev/null &&
       "$candidate" -c 'import sys; sys.exit(not (3, 10) <= sys.version_info[:2] <= (3, 12))' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  return 1
}
python=$(pick_python) || { echo "mmae needs Python 3.10, 3.11 or 3.12 (apt-get install python3)." >&2; exit 1; }
if [[ ! -x $venv/bin/python ]] && ! "$python" -c 'import ensurepip' 2>/dev/null; then
  missing+=("$("$python" -c 'import sys; print(f"python3.{sys.version_info[1]}-venv")')")
fi

if ((${#missing[@]})); then
  say "installing system packages: ${missing[*]}"
  if as_root true 2>/dev/null && command -v apt-get >/dev/null; then
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    say "cannot install ${missing[*]} (no apt-get or root); features that need them are skipped."
  fi
fi

if [[ ! -x $venv/bin/python ]]; then
  say "creating $venv with $("$python" --version)"
  "$python" -m venv "$venv"
fi

stamp=$venv/.mmae-install
want="$(cat requirements.txt setup.py | sha256sum | cut -c1-16) $extras"
if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
  say "installing Python packages into $venv (a few minutes the first time)"
  "$venv/bin/python" -m pip install -q --upgrade pip
  "$venv/bin/python" -m pip install -q -r requirements.txt -e ".[$extras]"
  echo "$want" > "$stamp"
fi
say "ready: $("$venv/bin/python" --version), mmae in $venv"
