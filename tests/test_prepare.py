import json
import os
import re
import shutil

import numpy as np
import pytest
import soundfile as sf
import tensorflow as tf
import yaml

from conftest import make_ljspeech, sample_rows
from mmae.config import Config, IncompatibleConfigError
from mmae.datasets import prepare as prepare_module
from mmae.datasets import records
from mmae.datasets.prepare import PrepareError, load_dataset_info, prepare, split_of
from mmae.text.rules import FRONTEND_VERSION


def _read_records(out_dir, num_mels):
    examples = []
    for name in sorted(os.listdir(out_dir)):
        if name.endswith(".tfrecord"):
            for serialized in tf.data.TFRecordDataset(os.path.join(out_dir, name)):
                examples.append(records.parse(serialized, num_mels))
    return {e["clip_id"].numpy().decode(): e for e in examples}


def test_prepare_writes_shards_stats_and_report(tiny_corpus, tiny_config, tmp_path):
    out = str(tmp_path / "prepared")
    summary = prepare(tiny_corpus, out, tiny_config, jobs=1, progress=False)
    splits = summary["splits"]
    assert splits["train"]["num_clips"] + splits["validation"]["num_clips"] == 12
    assert splits["validation"]["num_clips"] >= 1
    assert summary["skipped"] == []
    for name in ("config.yaml", "dataset.json", "report.json", "report.md", "plan.json"):
        assert os.path.exists(os.path.join(out, name)), name
    assert load_dataset_info(out)["splits"]["train"]["shards"] == splits["train"]["shards"]
    assert len(summary["mel_mean"]) == len(summary["mel_std"]) == tiny_config.audio.num_mels

    clips = _read_records(out, tiny_config.audio.num_mels)
    assert len(clips) == 12
    example = clips["slt_00001"]
    frames = int(example["num_frames"])
    assert example["mel"].shape == (frames, tiny_config.audio.num_mels)
    assert example["tokens"].numpy()[-1] == 1  # EOS
    assert example["text"].numpy().decode() == example["text"].numpy().decode().lower()
    # Training clips are exactly those whose id hashes to train (a tiny corpus
    # may move one more into validation so that it is never empty).
    train_ids = [row[0] for row in splits["train"]["lengths"]]
    assert all(split_of(i, tiny_config.data.validation_fraction) == "train" for i in train_ids)


def test_split_is_stable_under_reordering():
    ids = [f"clip_{i}" for i in range(2000)]
    held_out = {i for i in ids if split_of(i, 0.05) == "validation"}
    assert {i for i in reversed(ids) if split_of(i, 0.05) == "validation"} == held_out
    assert 60 < len(held_out) < 140


def _bad_corpus(root):
    rows = sample_rows(6)
    make_ljspeech(root, rows)
    wavs = os.path.join(root, "wavs")
    sf.write(os.path.join(wavs, "empty.wav"), np.zeros(0, np.float32), 16000)
    sf.write(os.path.join(wavs, "silent.wav"), np.zeros(16000, np.float32), 16000)
    with open(os.path.join(wavs, "corrupt.wav"), "wb") as f:
        f.write(b"RIFF\x00\x00garbage")
    sf.write(os.path.join(wavs, "short.wav"), 0.5 * np.sin(np.arange(1600) * 0.3), 16000)
    sf.write(os.path.join(wavs, "long.wav"), 0.5 * np.sin(np.arange(16000 * 13) * 0.3), 16000)
    sf.write(os.path.join(wavs, "lowrate.wav"), 0.5 * np.sin(np.arange(8000) * 0.3), 8000)
    shutil.copy(rows[0][2], os.path.join(wavs, "notext" + os.path.splitext(rows[0][2])[1]))
    shutil.copy(rows[0][2], os.path.join(wavs, "emoji" + os.path.splitext(rows[0][2])[1]))
    extra = [
        "missing|There is no file.|There is no file.",
        "empty|Empty audio.|Empty audio.",
        "silent|Only silence.|Only silence.",
        "corrupt|A corrupt file.|A corrupt file.",
        "short|Too short.|Too short.",
        "long|Far too long.|Far too long.",
        "lowrate|Low rate.|Low rate.",
        "notext|   |   ",
        "emoji|\U0001f600\U0001f600|\U0001f600\U0001f600",
        "a broken row",
    ]
    with open(os.path.join(root, "metadata.csv"), "a", encoding="utf-8") as f:
        f.write("\n".join(extra) + "\n")
    return str(root)


def test_bad_rows_are_skipped_with_reasons(tmp_path, tiny_config):
    corpus = _bad_corpus(tmp_path / "corpus")
    out = str(tmp_path / "prepared")
    summary = prepare(corpus, out, tiny_config, jobs=1, progress=False)
    reasons = {s["where"]: s["reason"] for s in summary["skipped"]}
    assert set(reasons) == {
        "missing",
        "empty",
        "silent",
        "corrupt",
        "short",
        "long",
        "lowrate",
        "notext",
        "emoji",
        "metadata.csv:16",
    }
    assert "not found" in reasons["missing"].lower()
    assert "empty" in reasons["empty"].lower()
    assert "too short" in reasons["short"] and "too long" in reasons["long"]
    assert "8000" in reasons["lowrate"] and "16000" in reasons["lowrate"]
    assert "notext" in reasons["notext"] and "emoji" in reasons["emoji"]
    assert "expected 2 or 3" in reasons["metadata.csv:16"]
    # Each reason has its kind, io.py's AudioError messages included.
    assert {s["where"]: s["kind"] for s in summary["skipped"]} == {
        "missing": "file not found",
        "empty": "no sound",
        "silent": "no sound",
        "corrupt": "unreadable audio",
        "short": "too short",
        "long": "too long",
        "lowrate": "sample rate too low",
        "notext": "empty text",
        "emoji": "empty text",
        "metadata.csv:16": "bad row",
    }
    # Nothing else was lost: all six good clips are in the shards.
    kept = {row[0] for split in summary["splits"].values() for row in split["lengths"]}
    assert kept == {row[0] for row in sample_rows(6)}
    report = open(os.path.join(out, "report.md"), encoding="utf-8").read()
    assert "## Skipped: 10" in report and "lowrate" in report
    assert "- no sound: 2\n" in report
    assert "- too long: 1 (to keep them: --set data.max_duration=13)" in report
    # One odd clip is no reason to resample the whole corpus.
    assert "- sample rate too low: 1\n" in report


def test_strict_mode_fails_and_writes_no_dataset(tmp_path, tiny_config):
    corpus = _bad_corpus(tmp_path / "corpus")
    with pytest.raises(
        PrepareError, match=r"1 bad rows in the corpus \(strict mode\):\n  metadata.csv:16"
    ):
        prepare(corpus, str(tmp_path / "a"), tiny_config, jobs=1, strict=True, progress=False)
    # Remove the malformed row: the failure is now about clips, after a full report.
    lines = open(os.path.join(corpus, "metadata.csv"), encoding="utf-8").read().splitlines()[:-1]
    open(os.path.join(corpus, "metadata.csv"), "w", encoding="utf-8").write("\n".join(lines) + "\n")
    out = str(tmp_path / "b")
    with pytest.raises(PrepareError, match="9 bad clips .strict mode.; see report.md"):
        prepare(corpus, out, tiny_config, jobs=1, strict=True, progress=False)
    assert os.path.exists(os.path.join(out, "report.md"))
    assert not os.path.exists(os.path.join(out, "dataset.json"))
    with pytest.raises(FileNotFoundError, match="not a finished prepared dataset"):
        load_dataset_info(out)


def test_interrupted_prepare_resumes_without_redoing_shards(
    tiny_corpus, tiny_config, tmp_path, monkeypatch
):
    out = str(tmp_path / "prepared")
    real_write_shard = prepare_module._write_shard
    written = []

    def interrupted_after_first(out_dir, shard, config_dict, tick, stop=None):
        if written:
            # Simulate Ctrl-C in the middle of the second shard: a temporary
            # file is left behind, but no sidecar.
            open(prepare_module._shard_path(out_dir, shard["name"]) + ".tmp-999", "w").write(
                "partial"
            )
            raise KeyboardInterrupt
        written.append(shard["name"])
        real_write_shard(out_dir, shard, config_dict, tick)

    monkeypatch.setattr(prepare_module, "_write_shard", interrupted_after_first)
    with pytest.raises(KeyboardInterrupt):
        prepare(tiny_corpus, out, tiny_config, jobs=1, progress=False)
    assert not os.path.exists(os.path.join(out, "dataset.json"))
    first = written[0]
    first_mtime = os.path.getmtime(prepare_module._shard_path(out, first))

    redone = []

    def recording(out_dir, shard, config_dict, tick, stop=None):
        redone.append(shard["name"])
        real_write_shard(out_dir, shard, config_dict, tick)

    monkeypatch.setattr(prepare_module, "_write_shard", recording)
    summary = prepare(tiny_corpus, out, tiny_config, jobs=1, progress=False)
    assert first not in redone and redone
    assert os.path.getmtime(prepare_module._shard_path(out, first)) == first_mtime
    assert not [n for n in os.listdir(out) if ".tmp-" in n]
    assert sum(s["num_clips"] for s in summary["splits"].values()) == 12


def test_shard_without_sidecar_is_redone(tiny_corpus, tiny_config, tmp_path):
    out = str(tmp_path / "prepared")
    prepare(tiny_corpus, out, tiny_config, jobs=1, progress=False)
    info = json.load(open(os.path.join(out, "dataset.json")))
    shard = info["splits"]["train"]["shards"][0]
    # A shard file whose sidecar is missing (killed between rename and sidecar).
    os.remove(os.path.join(out, shard.replace(".tfrecord", ".json")))
    open(os.path.join(out, shard), "w").write("truncated")
    prepare(tiny_corpus, out, tiny_config, jobs=1, progress=False)
    assert len(_read_records(out, tiny_config.audio.num_mels)) == 12


def test_resume_refuses_other_features_or_corpus(tiny_corpus, tiny_config, tmp_path):
    out = str(tmp_path / "prepared")
    prepare(tiny_corpus, out, tiny_config, jobs=1, progress=False)
    other = tiny_config.with_overrides(["audio.num_mels=32"])
    with pytest.raises(IncompatibleConfigError, match="audio.num_mels"):
        prepare(tiny_corpus, out, other, jobs=1, progress=False)
    with open(os.path.join(tiny_corpus, "metadata.csv"), "a") as f:
        f.write("new|A new row.|A new row.\n")
    with pytest.raises(PrepareError, match="changed since"):
        prepare(tiny_corpus, out, tiny_config, jobs=1, progress=False)
    summary = prepare(tiny_corpus, out, tiny_config, jobs=1, overwrite=True, progress=False)
    assert [s["where"] for s in summary["skipped"]] == ["new"]


def test_data_of_another_text_frontend_version_is_refused(tiny_corpus, tiny_config, tmp_path):
    from mmae.datasets.pipeline import make_dataset

    out = str(tmp_path / "prepared")
    prepare(tiny_corpus, out, tiny_config, jobs=1, progress=False)
    # As version 1 wrote them: the text section has its symbols, no version.
    info_path = os.path.join(out, "dataset.json")
    info = json.load(open(info_path))
    del info["config"]["text"]["frontend"]
    json.dump(info, open(info_path, "w"))
    config_path = os.path.join(out, "config.yaml")
    stored = yaml.safe_load(open(config_path))
    del stored["text"]["frontend"]
    yaml.safe_dump(stored, open(config_path, "w"))
    assert Config.load(config_path).text.frontend == 1
    version = FRONTEND_VERSION
    message = rf"text.frontend: expected {version}, .* has 1(.|\n)*versions \[1, {version}\](.|\n)*mmae prepare"
    with pytest.raises(IncompatibleConfigError, match=message):
        make_dataset(out, tiny_config, "train")
    with pytest.raises(IncompatibleConfigError, match="text.frontend(.|\n)*--overwrite"):
        prepare(tiny_corpus, out, tiny_config, jobs=1, progress=False)


def test_multi_speaker_manifest_with_two_threads(tmp_path, tiny_config):
    rows = sample_rows(8)
    root = tmp_path / "multi"
    make_ljspeech(root, rows)
    speakers = ["rms", "slt"]
    with open(root / "manifest.csv", "w") as f:
        for i, (clip_id, text, path) in enumerate(rows):
            f.write(f"wavs/{clip_id}{os.path.splitext(path)[1]}|{text}|{speakers[i % 2]}\n")
    config = tiny_config.with_overrides(["data.clips_per_shard=3"])
    summary = prepare(str(root), str(tmp_path / "out"), config, jobs=2, progress=False)
    assert summary["speakers"] == ["rms", "slt"]
    clips = _read_records(str(tmp_path / "out"), config.audio.num_mels)
    assert {int(clips[r[0]]["speaker_id"]) for r in rows[1::2]} == {1}
    assert {int(clips[r[0]]["speaker_id"]) for r in rows[0::2]} == {0}


def test_prepare_cli(tiny_corpus, tmp_path, capsys):
    from mmae.cli import main

    out = str(tmp_path / "prepared")
    assert main(["prepare", tiny_corpus, out, "--config", "tiny", "--jobs", "1", "--quiet"]) == 0
    train, validation = re.search(
        r"(\d+) train and (\d+) validation", capsys.readouterr().out
    ).groups()
    assert int(train) + int(validation) == 12
    assert (
        main(["prepare", tiny_corpus, out, "--config", "tiny", "--set", "audio.num_mels=20"]) == 2
    )
    assert "audio.num_mels: expected 40" in capsys.readouterr().err
    assert main(["prepare", str(tmp_path / "nothing"), out]) == 2
    assert "Corpus not found" in capsys.readouterr().err


def test_remote_filesystem_paths(tiny_config):
    """gs:// and other tf.io.gfile schemes take the same path; ram:// needs no bucket."""
    rows = sample_rows(6)
    root = "ram://corpus"
    tf.io.gfile.makedirs(root + "/wavs")
    lines = []
    for clip_id, text, path in rows:
        tf.io.gfile.copy(path, f"{root}/wavs/{clip_id}.ogg", overwrite=True)
        lines.append(f"{clip_id}|{text}|{text}")
    with tf.io.gfile.GFile(root + "/metadata.csv", "w") as f:
        f.write("\n".join(lines) + "\n")
    summary = prepare(root, "ram://prepared", tiny_config, jobs=1, progress=False)
    assert summary["skipped"] == []
    assert tf.io.gfile.exists("ram://prepared/config.yaml")
    assert sum(split["num_clips"] for split in summary["splits"].values()) == 6
    assert not os.path.exists("ram:")  # nothing leaked onto the local disk


def test_all_clips_bad_is_an_error(tmp_path, tiny_config):
    root = tmp_path / "corpus"
    os.makedirs(root / "wavs")
    (root / "metadata.csv").write_text(
        "a|Missing audio.|Missing audio.\nb|Also missing.|Also missing.\n"
    )
    with pytest.raises(
        PrepareError,
        match="2 clips skipped and none kept.*\n  file not found: 2, e.g. .: .\\.wav: file not "
        "found\n    to keep them: put the audio where the corpus says, e.g. .*/wavs/.\\.wav",
    ):
        prepare(str(root), str(tmp_path / "out"), tiny_config, jobs=1, progress=False)


@pytest.mark.parametrize(
    "setting, kind",
    [
        ("audio.sample_rate=22050", "sample rate too low"),  # the sample is at 16000 Hz
        ("data.max_duration=0.6", "too long"),
        ("data.min_duration=20", "too short"),
        ("data.max_tokens=3", "too many tokens"),
    ],
)
def test_when_every_clip_fails_the_error_says_what_keeps_them(tmp_path, tiny_config, setting, kind):
    corpus = make_ljspeech(tmp_path / "corpus", sample_rows(4))
    config = tiny_config.with_overrides([setting])
    with pytest.raises(PrepareError) as failure:
        prepare(corpus, str(tmp_path / "a"), config, jobs=1, progress=False)
    message = str(failure.value)
    assert f"4 clips skipped and none kept; see {tmp_path}/a/report.md:\n  {kind}: 4, e.g. " in (
        message
    )
    # The suggested settings, applied, keep every clip.
    fix = re.search(r"\n    to keep them: (.*)", message).group(1)
    overrides = re.findall(r"--set (\S+)", fix)
    assert overrides and setting.split("=")[0] in " ".join(overrides)
    fixed = config.with_overrides(overrides)
    summary = prepare(corpus, str(tmp_path / "b"), fixed, jobs=1, progress=False)
    assert summary["skipped"] == []


def test_a_low_sample_rate_fix_names_the_preset_or_the_settings(tmp_path, tiny_config):
    corpus = make_ljspeech(tmp_path / "corpus", sample_rows(2))
    with pytest.raises(PrepareError) as failure:
        prepare(corpus, str(tmp_path / "a"), Config.load(), jobs=1, progress=False)
    assert (
        "to keep them: --config flite16k (a preset at 16000 Hz), or --set audio.sample_rate=16000"
    ) in str(failure.value)
    # 8 kHz audio: no preset, and the mel filters must stop at 4 kHz too.
    for name in ("slt_00001", "slt_00002"):
        sf.write(
            next((tmp_path / "corpus" / "wavs").glob(f"{name}.*")),
            np.sin(np.arange(8000) * 0.3),
            8000,
        )
    with pytest.raises(
        PrepareError,
        match="to keep them: --set audio.sample_rate=8000 --set audio.upper_edge_hertz=4000$",
    ):
        prepare(corpus, str(tmp_path / "b"), tiny_config, jobs=1, progress=False)
    fixed = tiny_config.with_overrides(["audio.sample_rate=8000", "audio.upper_edge_hertz=4000"])
    assert prepare(corpus, str(tmp_path / "c"), fixed, jobs=1, progress=False)["skipped"] == []


def test_a_corpus_of_bad_rows_says_what_is_wrong_with_them(tmp_path, tiny_config):
    root = tmp_path / "corpus"
    os.makedirs(root / "wavs")
    (root / "metadata.csv").write_text("a,Comma separated.\nb,Also.\n")
    with pytest.raises(
        PrepareError, match="2 bad rows in .*, no good one:\n  metadata.csv:1: expected 2 or 3"
    ):
        prepare(str(root), str(tmp_path / "out"), tiny_config, jobs=1, progress=False)
