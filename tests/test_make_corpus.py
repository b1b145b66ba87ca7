"""Tests of data/make_corpus.py, the builder of flite / espeak-ng corpora."""

import importlib.util
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

SCRIPT = Path(__file__).resolve().parents[1] / "data" / "make_corpus.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("make_corpus", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_corpus = _load_script()

needs_flite = pytest.mark.skipif(shutil.which("flite") is None, reason="flite not installed")
needs_wordnet = pytest.mark.skipif(
    not (make_corpus.WORDNET_DIR / "data.noun").exists(), reason="wordnet-base not installed"
)


def _read_rows(path):
    return [line.split("|") for line in path.read_text(encoding="utf-8").splitlines()]


# ---------------------------------------------------------------- sentences


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("the cat sat on the mat", "The cat sat on the mat."),
        ("Is it raising prices again?", "Is it raising prices again?"),
        ("he is  about 30\tyears old", "He is about 30 years old."),
        (
            "the first part was easy; the second took hours;",
            "The first part was easy; the second took hours.",
        ),
        ("she left the U.S. in 1999", "She left the U.S. in 1999."),
    ],
)
def test_clean_sentence_keeps_plain_sentences(raw, expected):
    assert make_corpus.clean_sentence(raw, 5, 20) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "a precise mind",  # 3 words < 5
        " ".join(["word"] * 21),  # 21 words > 20
        "he paid $5 for the book",  # not basic punctuation
        "he said `yes' to the offer",  # quotes within
        "the cat (a tabby) sat on it",
        "and then he left the room...",
        "he waited - and waited for her",
        "the caf\u00e9 was closed all day",  # not ASCII
        "-- she knew it all along",
        "",
    ],
)
def test_clean_sentence_rejects(raw):
    assert make_corpus.clean_sentence(raw, 5, 20) is None


def test_word_limits_are_inclusive():
    assert make_corpus.clean_sentence("one two three four five", 5, 5) == "One two three four five."
    assert make_corpus.clean_sentence("one two three four", 5, 5) is None


def test_select_sentences_dedups_and_is_deterministic():
    raw = [f"sentence number {n} of the list" for n in range(50)]
    raw += ["sentence number 7 of the list", "Sentence  number 7 of the list."]
    first = make_corpus.select_sentences(raw, 5, 20, seed=0)
    assert len(first) == 50
    assert len(set(first)) == 50
    assert first == make_corpus.select_sentences(reversed(raw), 5, 20, seed=0)
    other_seed = make_corpus.select_sentences(raw, 5, 20, seed=1)
    assert other_seed != first
    assert sorted(other_seed) == sorted(first)


def test_wordnet_examples_reads_quoted_examples(tmp_path):
    header = '  1 This software and database is provided "AS IS" and Princeton\n'
    synset = (
        "00003553 03 n 02 whole 0 unit 0 000 | an assemblage of parts; "
        '"how big is that part compared to the whole?"; "the team is a unit"  \n'
    )
    (tmp_path / "data.noun").write_text(header + synset)
    for name in ("data.verb", "data.adj", "data.adv"):
        (tmp_path / name).write_text(header)
    examples = list(make_corpus.wordnet_examples(tmp_path))
    assert examples == ["how big is that part compared to the whole?", "the team is a unit"]


@needs_wordnet
def test_wordnet_gives_thousands_of_sentences():
    sentences = make_corpus.load_sentences("wordnet", 5, 20, seed=0)
    assert len(sentences) > 20_000
    assert all(5 <= len(text.split()) <= 20 for text in sentences)
    assert all(text[0].isupper() or text[0].isdigit() for text in sentences)
    assert all(text[-1] in ".!?" for text in sentences)


# ---------------------------------------------------------------- audio files


def test_ogg_files_are_byte_reproducible():
    audio = (1000 * np.sin(np.arange(8000) / 5)).astype(np.int16)
    first = make_corpus.encode(audio, 16000, "ogg", serial=42)
    assert first == make_corpus.encode(audio, 16000, "ogg", serial=42)
    decoded, rate = sf.read(io.BytesIO(first))
    assert rate == 16000
    assert len(decoded) == len(audio)


# ---------------------------------------------------------------- building


@needs_flite
@needs_wordnet
def test_build_three_clips_and_resume(tmp_path):
    out = tmp_path / "corpus"
    make_corpus.main([str(out), "--num-clips", "3", "--voices", "slt"])

    rows = _read_rows(out / "metadata.csv")
    assert [row[0] for row in rows] == ["slt_00001", "slt_00002", "slt_00003"]
    assert all(len(row) == 3 and row[1] == row[2] for row in rows)
    assert rows[0][1] == make_corpus.load_sentences("wordnet", 5, 20, seed=0)[0]
    clips = [out / "wavs" / f"{row[0]}.flac" for row in rows]
    for clip in clips:
        audio, rate = sf.read(clip)
        assert rate == 16000
        assert len(audio) > 0.3 * rate
    assert not (out / "manifest.csv").exists()
    assert not list((out / "wavs").glob("*.tmp"))
    summary = json.loads((out / "corpus.json").read_text())
    assert summary["num_clips"] == 3
    assert summary["arguments"]["voices"] == ["slt"]
    assert summary["sample_rates"] == [16000]
    assert summary["total_duration_seconds"] > 1
    # WordNet's license asks for its notice on all copies.
    notice = (out / "LICENSE.txt").read_text()
    assert "WordNet 3.0 Copyright 2006 by Princeton University" in notice
    assert "flite" in notice

    # Resume: finished clips are kept as they are; a missing one is remade.
    mtimes = [clip.stat().st_mtime_ns for clip in clips]
    metadata = (out / "metadata.csv").read_bytes()
    first_bytes = clips[0].read_bytes()
    clips[0].unlink()
    (out / "wavs" / "slt_00001.flac.tmp").write_bytes(b"half-written")
    make_corpus.main([str(out), "--num-clips", "3", "--voices", "slt"])
    assert [clip.stat().st_mtime_ns for clip in clips[1:]] == mtimes[1:]
    assert clips[0].read_bytes() == first_bytes  # flite is deterministic
    assert (out / "metadata.csv").read_bytes() == metadata


@needs_flite
@needs_wordnet
def test_two_voices_take_turns_and_get_a_manifest(tmp_path):
    out = tmp_path / "corpus"
    make_corpus.main(
        [
            str(out),
            "--num-clips",
            "2",
            "--voices",
            "slt",
            "rms",
            "--format",
            "wav",
            "--skip-first",
            "3",
            "--jobs",
            "1",
        ]
    )
    rows = _read_rows(out / "manifest.csv")
    assert [(row[0], row[2]) for row in rows] == [
        ("wavs/slt_00001.wav", "slt"),
        ("wavs/rms_00002.wav", "rms"),
    ]
    sentences = make_corpus.load_sentences("wordnet", 5, 20, seed=0)
    assert [row[1] for row in rows] == sentences[3:5]
    assert [row[0] for row in _read_rows(out / "metadata.csv")] == ["slt_00001", "rms_00002"]
    assert all(sf.info(out / row[0]).samplerate == 16000 for row in rows)


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(("engine", "package"), [("flite", "flite"), ("espeak-ng", "espeak-ng")])
def test_missing_synthesizer_names_the_apt_package(tmp_path, monkeypatch, engine, package):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SystemExit) as error:
        make_corpus.main([str(tmp_path / "out"), "--num-clips", "1", "--engine", engine])
    assert f"sudo apt-get install {package}" in str(error.value)
    assert not (tmp_path / "out").exists()


@needs_flite
def test_unknown_flite_voice_is_an_error(tmp_path):
    with pytest.raises(SystemExit, match="flite has no voice nosuch"):
        make_corpus.main([str(tmp_path / "out"), "--num-clips", "1", "--voices", "nosuch"])


@needs_flite
def test_missing_bible_names_the_apt_package(tmp_path, monkeypatch):
    monkeypatch.setattr(make_corpus.shutil, "which", lambda name: None if name == "bible" else name)
    with pytest.raises(SystemExit, match="sudo apt-get install bible-kjv"):
        make_corpus.main([str(tmp_path / "out"), "--num-clips", "1", "--text", "kjv"])
