"""Writes tests/data/frontend_golden.json: what the text frontend makes of its cases.

The golden fixture is the one case list of the text frontend. For every text
it holds the normalized text and the symbols of both tokenizers (characters
and phonemes), or null where a text has nothing to say. tests/ checks every
path against it: `normalize_text`, the Python tokenizers (what `mmae
prepare` and the `Synthesizer` use), the frontend mapped over `tf.data`, and
the `tokenize` signature of exported SavedModels.

The case texts are the file's own (groups "normalizer", "bad_input",
"out_of_lexicon", "context"), plus the sample corpus (data/sample/metadata.csv). Run
this after a change that is meant to change tokens, raise
`mmae.text.rules.FRONTEND_VERSION`, and review the diff:

    .venv/bin/python scripts/make_frontend_golden.py
"""

import json
import os
import sys
import warnings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOLDEN = os.path.join(ROOT, "tests", "data", "frontend_golden.json")
SAMPLE = os.path.join(ROOT, "data", "sample", "metadata.csv")


def sample_texts():
    with open(SAMPLE, encoding="utf-8") as f:
        return [line.split("|")[1] for line in f]


def golden_cases(groups):
    """[{group, text, normalized, characters, phonemes}] for {group: [texts]}."""
    from mmae.config import TextConfig
    from mmae.text import tokenizer_from_config

    configs = {
        "characters": TextConfig(),
        "phonemes": TextConfig(tokenizer="phonemes", symbol_set="phonemes-v1"),
    }
    cases = [{"group": group, "text": text} for group, texts in groups.items() for text in texts]
    texts = [case["text"] for case in cases]
    for kind, config in configs.items():
        tokenizer = tokenizer_from_config(config)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            encoded, normalized = tokenizer.encode_batch(
                texts, errors="return", return_normalized=True
            )
        for case, ids, text in zip(cases, encoded, normalized, strict=True):
            case["normalized"] = text
            case[kind] = None if isinstance(ids, Exception) else tokenizer.decode(ids)
    return cases


def main():
    sys.path.insert(0, ROOT)
    from mmae.text.rules import FRONTEND_VERSION

    with open(GOLDEN, encoding="utf-8") as f:
        golden = json.load(f)
    groups = {}
    for case in golden["cases"]:
        if case["group"] != "sample_corpus":
            groups.setdefault(case["group"], []).append(case["text"])
    groups["sample_corpus"] = sample_texts()
    golden = {
        "frontend_version": FRONTEND_VERSION,
        "made_by": "python scripts/make_frontend_golden.py",
        "cases": golden_cases(groups),
    }
    with open(GOLDEN, "w", encoding="utf-8") as f:
        json.dump(golden, f, ensure_ascii=False, indent=0)
        f.write("\n")
    counts = {group: len(texts) for group, texts in groups.items()}
    print(f"Wrote {GOLDEN}: {counts}")


if __name__ == "__main__":
    main()
