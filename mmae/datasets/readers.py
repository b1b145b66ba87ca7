"""Corpus readers: the LJSpeech layout and a generic `path|text|speaker` manifest.

Readers never touch audio: they list utterances and report rows they cannot
use, so that `mmae prepare` can skip a bad row with its reason instead of
stopping half-way through a large corpus.

Example:

>>> utterances, problems = read_corpus("data/sample")
>>> utterances[0].clip_id, utterances[0].speaker
('slt_00001', '')
"""

import csv
import dataclasses
import os

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")


@dataclasses.dataclass(frozen=True)
class Utterance:
    clip_id: str
    audio_path: str
    text: str
    speaker: str = ""


@dataclasses.dataclass(frozen=True)
class RowProblem:
    """A corpus row that was skipped, and why."""

    where: str  # "metadata.csv:12" or a clip id
    reason: str


def read_corpus(source):
    """Reads a corpus directory or manifest file.

    Args:
        source: an LJSpeech-style directory (`metadata.csv` + `wavs/`), a
            directory holding `manifest.csv` (multi-speaker), or the path of a
            manifest file with `path|text|speaker` rows.

    Returns:
        (utterances, problems): the usable rows and the skipped ones.
    """
    if _isdir(source):
        manifest = _join(source, "manifest.csv")
        metadata = _join(source, "metadata.csv")
        if _exists(manifest):
            return read_manifest(manifest)
        if _exists(metadata):
            return read_ljspeech(source)
        raise FileNotFoundError(
            f"{source} holds neither metadata.csv (LJSpeech layout) nor manifest.csv "
            "(path|text|speaker rows)."
        )
    if _exists(source):
        return read_manifest(source)
    raise FileNotFoundError(f"Corpus not found: {source}")


def read_ljspeech(root):
    """Reads `root/metadata.csv` rows `id|text|normalized text`.

    The normalized column is used when present (LJSpeech's own expansion of
    numbers and abbreviations); audio is `root/wavs/<id>.<ext>` for any of
    AUDIO_EXTENSIONS.
    """
    path = _join(root, "metadata.csv")
    wav_dir = _join(root, "wavs")
    available = _list_audio(wav_dir)
    utterances, problems, seen = [], [], set()
    for line_number, row in _read_rows(path):
        where = f"metadata.csv:{line_number}"
        if len(row) not in (2, 3):
            problems.append(
                RowProblem(where, f"expected 2 or 3 '|'-separated columns, got {len(row)}")
            )
            continue
        clip_id = row[0].strip()
        text = (row[2] if len(row) == 3 and row[2].strip() else row[1]).strip()
        if not clip_id:
            problems.append(RowProblem(where, "empty clip id"))
            continue
        if clip_id in seen:
            problems.append(RowProblem(where, f"duplicate clip id {clip_id!r}"))
            continue
        seen.add(clip_id)
        audio_path = available.get(clip_id, _join(wav_dir, clip_id + ".wav"))
        utterances.append(Utterance(clip_id, audio_path, text))
    return utterances, problems


def read_manifest(path):
    """Reads rows `audio_path|text[|speaker]`; paths are relative to the manifest."""
    root = os.path.dirname(path)
    utterances, problems, seen = [], [], set()
    for line_number, row in _read_rows(path):
        where = f"{os.path.basename(path)}:{line_number}"
        if len(row) not in (2, 3):
            problems.append(
                RowProblem(
                    where, f"expected path|text|speaker ('|'-separated), got {len(row)} columns"
                )
            )
            continue
        audio_path = row[0].strip()
        if not audio_path:
            problems.append(RowProblem(where, "empty audio path"))
            continue
        if not (audio_path.startswith("/") or "://" in audio_path):
            audio_path = _join(root, audio_path)
        speaker = row[2].strip() if len(row) == 3 else ""
        clip_id = os.path.splitext(os.path.basename(audio_path))[0]
        if clip_id in seen:
            problems.append(
                RowProblem(where, f"duplicate clip id {clip_id!r} (file names must be unique)")
            )
            continue
        seen.add(clip_id)
        utterances.append(Utterance(clip_id, audio_path, row[1].strip(), speaker))
    return utterances, problems


def _read_rows(path):
    # QUOTE_NONE: LJSpeech text contains unbalanced double quotes.
    with _open(path) as f:
        reader = csv.reader(f, delimiter="|", quoting=csv.QUOTE_NONE)
        for line_number, row in enumerate(reader, start=1):
            if row and any(cell.strip() for cell in row):
                yield line_number, row


def _list_audio(directory):
    """Maps clip id -> audio path, preferring the first of AUDIO_EXTENSIONS."""
    if not _isdir(directory):
        return {}
    found = {}
    names = sorted(_listdir(directory), key=lambda n: _extension_rank(n))
    for name in names:
        stem, ext = os.path.splitext(name)
        if ext.lower() in AUDIO_EXTENSIONS and stem not in found:
            found[stem] = _join(directory, name)
    return found


def _extension_rank(name):
    ext = os.path.splitext(name)[1].lower()
    return AUDIO_EXTENSIONS.index(ext) if ext in AUDIO_EXTENSIONS else len(AUDIO_EXTENSIONS)


# gs:// paths go through tf.io.gfile; local paths use the standard library so
# that readers stay importable without TensorFlow.
def _is_remote(path):
    return "://" in path


def _gfile():
    import tensorflow as tf

    return tf.io.gfile


def _join(*parts):
    return (
        "/".join([parts[0].rstrip("/"), *parts[1:]])
        if _is_remote(parts[0])
        else os.path.join(*parts)
    )


def _exists(path):
    return _gfile().exists(path) if _is_remote(path) else os.path.exists(path)


def _isdir(path):
    return _gfile().isdir(path) if _is_remote(path) else os.path.isdir(path)


def _listdir(path):
    return [n.rstrip("/") for n in _gfile().listdir(path)] if _is_remote(path) else os.listdir(path)


def _open(path):
    if _is_remote(path):
        return _gfile().GFile(path, "r")
    return open(path, encoding="utf-8", newline="")
