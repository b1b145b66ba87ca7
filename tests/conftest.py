"""Shared fixtures: small corpora built from the committed sample (data/sample)."""

import os
import shutil
import subprocess
import sys

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(REPO, "data", "sample")


def run_mmae(*args, cwd=None, timeout=600, env=None):
    """Runs the `mmae` command in a new process, as a user does (no TF_CPP_MIN_LOG_LEVEL)."""
    environment = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    environment.update(PYTHONPATH=REPO, **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "mmae.cli", *args],
        capture_output=True,
        text=True,
        env=environment,
        cwd=cwd,
        timeout=timeout,
    )


def golden_cases(group=None):
    """The text frontend's golden cases (tests/data/frontend_golden.json), of one group or all.

    Each is a dict: text, normalized, characters and phonemes (the symbols of
    each tokenizer, None for a text with nothing to say).
    """
    import json

    with open(os.path.join(REPO, "tests", "data", "frontend_golden.json"), encoding="utf-8") as f:
        cases = json.load(f)["cases"]
    return [case for case in cases if group in (None, case["group"])]


def symbols_of_rows(tokens, num_tokens, symbols):
    """The symbols of padded token rows, None where num_tokens is 0 (as golden cases hold them)."""
    return [
        None if n == 0 else "".join(symbols[i] for i in row[: n - 1])
        for row, n in zip(tokens.tolist(), num_tokens.tolist(), strict=True)
    ]


def sample_rows(count):
    """The first `count` (clip_id, text, audio_path) rows of the committed sample."""
    rows = []
    with open(os.path.join(SAMPLE, "metadata.csv"), encoding="utf-8") as f:
        for line in f:
            clip_id, text, _ = line.rstrip("\n").split("|")
            wavs = os.path.join(SAMPLE, "wavs")
            (name,) = [n for n in os.listdir(wavs) if os.path.splitext(n)[0] == clip_id]
            rows.append((clip_id, text, os.path.join(wavs, name)))
            if len(rows) == count:
                break
    return rows


def make_ljspeech(root, rows):
    """Writes an LJSpeech-layout corpus of (clip_id, text, audio_path) rows."""
    os.makedirs(os.path.join(root, "wavs"), exist_ok=True)
    lines = []
    for clip_id, text, path in rows:
        shutil.copy(path, os.path.join(root, "wavs", clip_id + os.path.splitext(path)[1]))
        lines.append(f"{clip_id}|{text}|{text}")
    with open(os.path.join(root, "metadata.csv"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return str(root)


@pytest.fixture
def tiny_corpus(tmp_path):
    """An LJSpeech-layout corpus of 12 real flite clips."""
    return make_ljspeech(tmp_path / "corpus", sample_rows(12))


@pytest.fixture
def tiny_config():
    from mmae.config import Config

    return Config.load("tiny")


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A real (tiny) model trained 2 steps on 12 sample clips: (data_dir, run_dir)."""
    from mmae.config import Config
    from mmae.datasets.prepare import prepare
    from mmae.training import train

    root = tmp_path_factory.mktemp("tiny_run")
    corpus = make_ljspeech(root / "corpus", sample_rows(12))
    config = Config.load(
        "tiny",
        overrides=[
            "data.clips_per_shard=4",
            "train.steps=2",
            "train.log_every=1",
            "train.eval_every=1000",
            "train.checkpoint_every=1000",
        ],
    )
    prepare(corpus, str(root / "prepared"), config, jobs=1, progress=False)
    train(config, str(root / "prepared"), str(root / "run"), progress=False)
    return str(root / "prepared"), str(root / "run")
