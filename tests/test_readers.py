import os

import pytest

from mmae.datasets.readers import read_corpus, read_ljspeech, read_manifest


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def test_ljspeech_rows_and_problems(tmp_path):
    root = str(tmp_path)
    for name in ("a.wav", "b.flac", "b.wav", "c.ogg"):
        _write(os.path.join(root, "wavs", name), "")
    _write(
        os.path.join(root, "metadata.csv"),
        'a|Dr. Smith said "hi|Doctor Smith said "hi\n'
        "b|two columns only\n"
        "\n"
        "c|text|\n"
        "bad row without separators\n"
        "a|duplicate|duplicate\n"
        "|no id|no id\n"
        "d|missing audio|missing audio\n",
    )
    utterances, problems = read_ljspeech(root)
    by_id = {u.clip_id: u for u in utterances}
    assert list(by_id) == ["a", "b", "c", "d"]
    # The normalized column wins; unbalanced quotes survive (QUOTE_NONE).
    assert by_id["a"].text == 'Doctor Smith said "hi'
    assert by_id["b"].text == "two columns only"
    assert by_id["c"].text == "text"  # empty third column falls back to the second
    assert by_id["b"].audio_path.endswith("b.wav")  # .wav preferred over .flac
    assert by_id["c"].audio_path.endswith("c.ogg")
    assert by_id["d"].audio_path.endswith(
        os.path.join("wavs", "d.wav")
    )  # prepare reports it missing
    assert [(p.where, p.reason) for p in problems] == [
        ("metadata.csv:5", "expected 2 or 3 '|'-separated columns, got 1"),
        ("metadata.csv:6", "duplicate clip id 'a'"),
        ("metadata.csv:7", "empty clip id"),
    ]


def test_manifest_with_speakers(tmp_path):
    root = str(tmp_path)
    _write(
        os.path.join(root, "manifest.csv"),
        "wavs/rms_1.wav|Hello there.|rms\n"
        "/abs/awb_2.flac|General Kenobi.|awb\n"
        "wavs/nospeaker.wav|No speaker column.\n"
        "|empty path|x\n"
        "wavs/rms_1.wav|again|rms\n"
        "too|many|columns|here\n",
    )
    utterances, problems = read_manifest(os.path.join(root, "manifest.csv"))
    assert [(u.clip_id, u.speaker) for u in utterances] == [
        ("rms_1", "rms"),
        ("awb_2", "awb"),
        ("nospeaker", ""),
    ]
    assert utterances[0].audio_path == os.path.join(root, "wavs/rms_1.wav")
    assert utterances[1].audio_path == "/abs/awb_2.flac"
    assert [p.where for p in problems] == ["manifest.csv:4", "manifest.csv:5", "manifest.csv:6"]
    assert "empty audio path" in problems[0].reason
    assert "duplicate clip id 'rms_1'" in problems[1].reason
    assert "got 4 columns" in problems[2].reason


def test_read_corpus_dispatch(tmp_path):
    lj = tmp_path / "lj"
    _write(str(lj / "metadata.csv"), "x|hello|hello\n")
    assert read_corpus(str(lj))[0][0].clip_id == "x"
    multi = tmp_path / "multi"
    _write(str(multi / "metadata.csv"), "x|hello|hello\n")
    _write(str(multi / "manifest.csv"), "wavs/y.wav|hi|slt\n")
    assert read_corpus(str(multi))[0][0].clip_id == "y"  # the manifest carries speakers
    assert read_corpus(str(multi / "manifest.csv"))[0][0].speaker == "slt"


def test_read_corpus_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="Corpus not found: /no/such/dir"):
        read_corpus("/no/such/dir")
    with pytest.raises(FileNotFoundError, match="neither metadata.csv .* nor manifest.csv"):
        read_corpus(str(tmp_path))
