"""The synthesizer: text in, waveform out, and every kind of bad input."""

import os
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pytest
import tensorflow as tf

from mmae.synthesis import SynthesisError, SynthesisWarning, Synthesizer, split_sentences


@pytest.fixture(scope="module")
def synthesizer(tiny_run):
    _, run_dir = tiny_run
    return Synthesizer.from_run(run_dir, batch_size=4)


ABBREVIATED = [
    (
        "Dr. Smith paid $3.50. Mr. Jones, e.g. here.",
        ["Dr. Smith paid $3.50.", "Mr. Jones, e.g. here."],
    ),
    (
        "J. R. R. Tolkien wrote it. The U.S. Army came! Yes; no.",
        ["J. R. R. Tolkien wrote it.", "The U.S. Army came!", "Yes;", "no."],
    ),
    ("Hello world.\n\nNext one", ["Hello world.", "Next one"]),
    (
        "Mrs. Lee met Capt. Ahab vs. Gen. Grant. Done.",
        ["Mrs. Lee met Capt. Ahab vs. Gen. Grant.", "Done."],
    ),
]


@pytest.mark.parametrize("text, expected", ABBREVIATED)
def test_split_sentences_not_at_titles_initials_or_eg(text, expected):
    from mmae.export import _split_sentences

    assert split_sentences(text) == expected
    # The SavedModel's in-graph splitting agrees.
    in_graph = _split_sentences(tf.constant([text]))[0].numpy()
    assert [sentence.decode() for sentence in in_graph] == expected


def test_split_sentences_keeps_every_word_and_the_limit():
    text = "One two. Three, four; five! " + " ".join(["word"] * 200) + "? Last"
    pieces = split_sentences(text, max_characters=50)
    assert all(0 < len(p) <= 50 for p in pieces)
    assert " ".join(pieces).split() == text.split()
    assert split_sentences("   ") == []
    assert split_sentences("x" * 120, max_characters=50) == ["x" * 50, "x" * 50, "x" * 20]


def test_one_text_gives_float32_audio_whose_length_matches_its_mel(synthesizer):
    audio = synthesizer.synthesize("Hello world.")
    mel = synthesizer.synthesize_mel("Hello world.")
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert mel.shape[1] == synthesizer.config.audio.num_mels
    assert len(audio) == synthesizer.vocoder.samples_for_frames(len(mel))
    assert np.all(np.isfinite(audio)) and np.max(np.abs(audio)) <= 1.0
    assert synthesizer.sample_rate == 16000


def test_audio_and_mel_together_run_the_acoustic_model_once(synthesizer, monkeypatch):
    texts = ["One sentence here. And a second one.", "Another text."]
    calls = []
    acoustic = synthesizer._acoustic

    def counted(*args):
        calls.append(1)
        return acoustic(*args)

    monkeypatch.setattr(synthesizer, "_acoustic", counted)
    pairs = synthesizer.synthesize_with_mel(texts)
    assert len(calls) == 1  # all sentences of both texts fit one batch
    # The same batches as the two separate calls make, so the same numbers.
    audios, mels = synthesizer.synthesize(texts), synthesizer.synthesize_mel(texts)
    for (audio, mel), want_audio, want_mel in zip(pairs, audios, mels, strict=True):
        np.testing.assert_array_equal(audio, want_audio)
        np.testing.assert_array_equal(mel, want_mel)
    audio, mel = synthesizer.synthesize_with_mel("Hello.")
    assert audio.ndim == 1 and mel.ndim == 2


def test_a_batch_gives_each_item_what_it_gets_alone(synthesizer):
    texts = ["A short one.", "A somewhat longer sentence than the first one.", "Mid length."]
    together = synthesizer.synthesize_mel(texts)
    for text, mel in zip(texts, together, strict=True):
        alone = synthesizer.synthesize_mel(text)
        assert mel.shape == alone.shape
        # Same weights; only float32 round-off of a differently padded batch
        # (matmuls summed in another order), far below a mel's spread of ~1.
        np.testing.assert_allclose(mel, alone, atol=1e-4)


def test_speaking_rate_scales_the_length(synthesizer):
    normal = len(synthesizer.synthesize_mel("The quick brown fox jumps over the lazy dog."))
    slow = len(synthesizer.synthesize_mel("The quick brown fox jumps over the lazy dog.", 0.5))
    # Half the rate doubles each duration before rounding to whole frames
    # (at least one per token), so 1.5x leaves room for the rounding.
    assert slow > 1.5 * normal
    with pytest.raises(ValueError, match="speaking_rate"):
        synthesizer.synthesize("Hi.", speaking_rate=0)
    with pytest.raises(ValueError, match="speaker_id 3"):
        synthesizer.synthesize("Hi.", speaker_id=3)


def test_long_text_is_split_and_joined_with_pauses(synthesizer):
    sentence = "This sentence is said many times over."
    one = synthesizer.synthesize(sentence)
    many = synthesizer.synthesize(" ".join([sentence] * 5))
    pause = int(round(synthesizer.pause_seconds * synthesizer.sample_rate))
    assert len(many) == 5 * len(one) + 4 * pause


@pytest.mark.parametrize(
    "bad", ["", "   \n\t ", "?!...", "\U0001f600\U0001f680", "Привет мир", "你好世界"]
)
def test_nothing_to_say_gives_empty_audio_with_a_warning_or_a_named_error(synthesizer, bad):
    with pytest.warns(SynthesisWarning, match="Text 1 has nothing to say"):
        results = synthesizer.synthesize(["Fine text.", bad, "Also fine."])
    assert [len(r) > 0 for r in results] == [True, False, True]
    assert results[1].dtype == np.float32
    with pytest.raises(SynthesisError, match="Text 1 has nothing to say"):
        synthesizer.synthesize(["Fine text.", bad], strict=True)


def test_unknown_letters_inside_a_text_are_dropped_with_a_warning(synthesizer):
    from mmae.text import UnknownCharacterWarning

    with pytest.warns(UnknownCharacterWarning, match="text 0, sentence 1"):
        audio = synthesizer.synthesize("Hello мир world.")
    assert len(audio) > 0


def test_symbols_not_read_aloud_are_ignored(synthesizer):
    # Emoji, like "*" or '"', are not read aloud (mmae.text.normalize_text).
    plain = synthesizer.synthesize_mel("Hello world.")
    np.testing.assert_allclose(synthesizer.synthesize_mel("Hello \U0001f600 world."), plain)


def test_ten_thousand_characters(synthesizer):
    text = ("The rain in Spain stays mainly in the plain, they said. " * 200)[:10_000]
    with warnings.catch_warnings():
        warnings.simplefilter("error", SynthesisWarning)
        audio = synthesizer.synthesize(text)
    assert len(audio) > 0 and np.all(np.isfinite(audio))


def test_non_string_items_are_named(synthesizer):
    with pytest.raises(SynthesisError, match="Text 1 is a int"):
        synthesizer.synthesize(["ok", 3])


def test_from_run_rejects_what_is_not_a_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a training run"):
        Synthesizer.from_run(str(tmp_path))


def test_cli_synthesize_one_text_and_a_text_file(tiny_run, tmp_path, capsys):
    import soundfile

    from mmae.cli import main

    _, run_dir = tiny_run
    out = str(tmp_path / "hello.wav")
    assert main(["synthesize", "--run", run_dir, "Hello world.", "-o", out, "--plot"]) == 0
    audio, rate = soundfile.read(out)
    assert rate == 16000 and len(audio) > 0
    assert (tmp_path / "hello.png").exists()
    lines = tmp_path / "lines.txt"
    lines.write_text("First line.\n\nSecond line, a bit longer.\n", encoding="utf-8")
    code = main(
        [
            "synthesize",
            "--run",
            run_dir,
            "--text-file",
            str(lines),
            "--out-dir",
            str(tmp_path / "o"),
        ]
    )
    assert code == 0
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["0001.wav", "0002.wav"]
    assert "Wrote 2 file(s)" in capsys.readouterr().out
    assert main(["synthesize", "--run", run_dir, "No output given."]) == 2
    assert "-o/--output" in capsys.readouterr().err


def test_pack_and_load_a_pretrained_model_gives_the_same_speech(tiny_run, tmp_path):
    import mmae
    from mmae import pretrained

    _, run_dir = tiny_run
    out = str(tmp_path / "packed")
    size = pretrained.pack(run_dir, out)
    files = sorted(p.name for p in (tmp_path / "packed").iterdir())
    assert files == [
        "config.yaml",
        "dataset.json",
        "weights.data-00000-of-00001",
        "weights.index",
    ]
    assert size == sum((tmp_path / "packed" / f).stat().st_size for f in files[2:])
    original = mmae.Synthesizer.from_run(run_dir)
    loaded = mmae.Synthesizer.from_pretrained(out)
    parts = original.model.inference_parts
    inference = [p for p in parts if getattr(original.model, p) is not None]
    for part in inference:
        for a, b in zip(
            getattr(original.model, part).weights, getattr(loaded.model, part).weights, strict=True
        ):
            # float16 storage: 11 significant bits.
            np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-3, atol=1e-4)
    # Durations are rounded to whole frames, so a rounding step may move one.
    frames = len(original.synthesize_mel("Hello there."))
    assert abs(len(loaded.synthesize_mel("Hello there.")) - frames) <= 2
    # A pack is a run wherever a run is asked for (`mmae evaluate --run PACK`).
    as_run = mmae.Synthesizer.from_run(out)
    np.testing.assert_array_equal(
        as_run.synthesize_mel("Hello there."), loaded.synthesize_mel("Hello there.")
    )
    with pytest.raises(FileNotFoundError, match="No pretrained model 'nope'"):
        pretrained.path_of("nope")


def test_a_pack_larger_than_a_shard_is_split_into_whole_tensor_files(
    tiny_run, tmp_path, monkeypatch
):
    from mmae import pretrained
    from mmae.weights import read_weights

    _, run_dir = tiny_run
    whole, split = str(tmp_path / "whole"), str(tmp_path / "split")
    pretrained.pack(run_dir, whole)
    monkeypatch.setattr(pretrained, "SHARD_BYTES", 64 * 1024)
    pretrained.pack(run_dir, split)
    pretrained.pack(run_dir, split)  # a rewrite leaves no old file behind
    data = sorted(p.name for p in (tmp_path / "split").iterdir() if ".data-" in p.name)
    count = len(data)
    assert count > 1 and data[-1] == f"weights.data-{count - 1:05d}-of-{count:05d}"
    # The largest tiny-model tensor is under 64 KiB, so no file holds more.
    assert all((tmp_path / "split" / name).stat().st_size <= 64 * 1024 for name in data)
    expected = read_weights(os.path.join(whole, "weights"))
    stored = read_weights(os.path.join(split, "weights"))
    assert stored.keys() == expected.keys()
    for key, value in expected.items():
        np.testing.assert_array_equal(stored[key], value)


# Makes `import phonemizer` fail, as where the `phonemes` extra is not
# installed: without phonemizer nothing in mmae can reach espeak-ng.
_NO_PHONEMIZER = """
import importlib.abc, sys

class _NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "phonemizer":
            raise ModuleNotFoundError(f"No module named {name!r}")

sys.meta_path.insert(0, _NotInstalled())
"""


def test_the_bundled_model_speaks_from_a_pip_install_without_espeak(tmp_path):
    """`pip install .` (no `phonemes` extra) and the bundled phoneme model speaks."""
    import soundfile

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    # A copy of what a source distribution holds, so the build leaves nothing here.
    source = tmp_path / "source"
    shutil.copytree(
        os.path.join(root, "mmae"), source / "mmae", ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in ("setup.py", "README.md"):
        shutil.copy(os.path.join(root, name), source / name)
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation"]
        + ["--target", str(site), str(source)],
        check=True,
        cwd=tmp_path,
    )
    (tmp_path / "blocker").mkdir()
    (tmp_path / "blocker" / "sitecustomize.py").write_text(_NO_PHONEMIZER)
    out = tmp_path / "hello.wav"
    code = (
        "import mmae, sys\n"
        "from mmae.cli import main\n"
        "try:\n    import phonemizer\nexcept ImportError:\n    pass\n"
        "else:\n    sys.exit('phonemizer is importable')\n"
        f"assert mmae.__file__.startswith({str(site)!r}), mmae.__file__\n"
        f"sys.exit(main(['synthesize', 'Hello world, said Kolarians.', '-o', {str(out)!r}]))\n"
    )
    env = {**os.environ, "PYTHONPATH": f"{tmp_path / 'blocker'}{os.pathsep}{site}"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    audio, rate = soundfile.read(str(out))
    # About 0.3 s per word at least, and not silence: a peak-limited waveform
    # of speech has a std far above 0.01.
    assert rate == 16000 and len(audio) > 1.2 * rate and np.std(audio) > 0.01


def test_the_seed_baseline_speaks_through_the_same_synthesizer(tiny_run):
    from mmae.config import Config
    from mmae.datasets.prepare import load_dataset_info
    from mmae.models import build_model

    data_dir, _ = tiny_run
    config = Config.load("tiny", overrides=["model.architecture=seed_baseline"])
    model = build_model(config, load_dataset_info(data_dir))
    synthesizer = Synthesizer(model, config)
    assert synthesizer.num_speakers == 1
    mel = synthesizer.synthesize_mel("Hello world.")
    # Text stretched uniformly: frames_per_token frames per token.
    tokens = len(synthesizer.tokenizer.encode("Hello world."))
    assert abs(len(mel) - tokens * model.frames_per_token) <= 1
