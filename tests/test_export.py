"""Tests of mmae.export and the in-graph text frontend: SavedModel, TFLite and .keras."""

import json
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import tensorflow as tf

from conftest import SAMPLE, golden_cases, make_ljspeech, sample_rows, symbols_of_rows
from mmae.config import TextConfig
from mmae.text import tokenizer_from_config
from mmae.text.graph_frontend import GraphFrontend

SENTENCE = "The child stuffed candy into his pockets."
EMOJI = "\U0001f600\U0001f389"


def sample_texts():
    with open(os.path.join(SAMPLE, "metadata.csv"), encoding="utf-8") as f:
        return [line.split("|")[1] for line in f]


def synthesizer(run_dir):
    from mmae.synthesis import Synthesizer

    return Synthesizer.from_run(run_dir)


def quietly(function, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return function(*args)


@pytest.fixture(scope="module")
def exported(tiny_run, tmp_path_factory):
    """The tiny characters run exported as a SavedModel: (run_dir, export_dir, summary)."""
    from mmae.export import export_saved_model

    data_dir, run_dir = tiny_run
    out_dir = str(tmp_path_factory.mktemp("export") / "1")
    summary = export_saved_model(run_dir, out_dir, data_dir=data_dir)
    return run_dir, out_dir, summary


@pytest.fixture(scope="module")
def speech(exported):
    """The exported SavedModel, loaded here."""
    return tf.saved_model.load(exported[1])


@pytest.fixture(scope="module")
def tiny_synthesizer(exported):
    return synthesizer(exported[0])


def test_saved_model_speaks_in_a_process_that_cannot_import_mmae(
    exported, tiny_synthesizer, tmp_path
):
    run_dir, out_dir, summary = exported
    script = textwrap.dedent(
        """
        import sys
        sys.modules["mmae"] = None  # before anything else: the SavedModel must stand alone
        import json
        import numpy as np
        import tensorflow as tf
        try:
            import mmae  # noqa: F401
            blocked = False
        except ImportError:
            blocked = True
        speech = tf.saved_model.load(sys.argv[1])
        out = speech.signatures["serving_default"](text=tf.constant(json.loads(sys.argv[2])))
        audio, lengths = out["audio"].numpy(), out["lengths"].numpy()
        print(json.dumps({
            "blocked": blocked,
            "audio_dtype": str(audio.dtype),
            "audio_shape": list(audio.shape),
            "lengths": lengths.tolist(),
            "finite": bool(np.isfinite(audio).all()),
            "peaks": [float(np.abs(a[:n]).max()) if n else 0.0 for a, n in zip(audio, lengths)],
            "padding": [float(np.abs(a[n:]).max()) if n < len(a) else 0.0
                        for a, n in zip(audio, lengths)],
        }))
        """
    )
    texts = [SENTENCE, "", EMOJI, "Hello there. Dr. Smith paid $3.50!"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-c", script, out_dir, json.dumps(texts)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["blocked"]
    assert report["audio_dtype"] == "float32"
    assert report["audio_shape"][0] == len(texts)
    assert report["audio_shape"][1] == max(report["lengths"])
    assert report["finite"]
    lengths = report["lengths"]
    assert lengths[1] == 0 and lengths[2] == 0  # nothing to say: no audio, no error
    assert lengths[0] > 0 and lengths[3] > 0
    assert max(report["peaks"]) <= 0.95 + 1e-6 and min(report["peaks"][i] for i in (0, 3)) > 0
    assert max(report["padding"]) == 0.0
    # The same lengths as the Python synthesizer of the same run (within a
    # frame: durations are rounded from floats computed in other batches).
    expected = [len(a) for a in quietly(tiny_synthesizer.synthesize, texts)]
    frame_step = summary["config"]["audio"]["frame_step"]
    assert expected[1] == expected[2] == 0
    for got, want in zip(lengths, expected, strict=True):
        assert abs(got - want) <= frame_step


def test_mel_signature_and_audio_match_the_synthesizer(speech, tiny_synthesizer):
    synth = tiny_synthesizer
    texts = [SENTENCE, "Two sentences here. And a second one?"]
    mel = speech.signatures["mel"](text=tf.constant(texts))
    expected = quietly(synth.synthesize_mel, texts)
    for i, want in enumerate(expected):
        got = mel["mel"][i, : int(mel["num_frames"][i])].numpy()
        assert got.shape == want.shape
        # Same weights and ops; float32 round-off of differently padded batches.
        np.testing.assert_allclose(got, want, atol=1e-4)
    audio = speech.signatures["serving_default"](text=tf.constant(texts))
    for i, want in enumerate(quietly(synth.synthesize, texts)):
        got = audio["audio"][i, : int(audio["lengths"][i])].numpy()
        assert got.shape == want.shape
        # 32 Griffin-Lim iterations amplify that round-off a little.
        np.testing.assert_allclose(got, want, atol=1e-2)


def test_export_writes_config_and_summary(exported):
    _, out_dir, summary = exported
    assert os.path.exists(os.path.join(out_dir, "config.yaml"))
    with open(os.path.join(out_dir, "export.json"), encoding="utf-8") as f:
        written = json.load(f)
    assert written["saved_model_bytes"] == summary["saved_model_bytes"] > 0
    assert written["sample_rate"] == 16000
    assert set(written["signatures"]) == {"serving_default", "mel", "tokenize", "acoustic"}
    assert "Numbers" in written["normalizer"]
    # All 12 transcripts of the run tokenize exactly as in Python.
    assert written["frontend_agreement"]["equal_ids"] == 1.0


def test_cli_export_errors_exit_2(exported, tmp_path, capsys):
    from mmae.cli import main

    run_dir, out_dir, _ = exported
    assert main(["export", "--run", run_dir, "--out", out_dir]) == 2
    assert "already holds a SavedModel" in capsys.readouterr().err
    assert main(["export", "--run", str(tmp_path / "missing"), "--out", str(tmp_path)]) == 2
    assert "not a training run" in capsys.readouterr().err


def test_saved_model_tokenize_gives_the_golden_symbols(speech, exported):
    """The characters SavedModel reads the text frontend's cases as every other path."""
    cases = golden_cases()
    out = speech.signatures["tokenize"](text=tf.constant([case["text"] for case in cases]))
    symbols = exported[2]["config"]["text"]["symbols"]
    got = symbols_of_rows(out["tokens"].numpy(), out["num_tokens"].numpy(), symbols)
    assert got == [case["characters"] for case in cases]


def test_graph_numbers_match_num2words():
    from num2words import num2words

    frontend = GraphFrontend.from_config(TextConfig())
    rng = np.random.default_rng(0)
    numbers = [*range(0, 1200, 7), 1000005, 1001000, 100001, 999999999999999]
    numbers += rng.integers(0, 10**12, size=60).tolist()
    texts = [f"{n:,}" for n in numbers] + [f"{n}th" for n in range(1, 130)]

    def words(text):  # num2words' words, its commas and hyphens as the normalizer writes them
        return text.replace(",", "")

    expected = [words(num2words(n, lang="en")) for n in numbers]
    expected += [words(num2words(n, lang="en", to="ordinal")) for n in range(1, 130)]
    got = [t.decode() for t in tf.function(frontend.normalize)(tf.constant(texts)).numpy()]
    assert got == expected


def test_tflite_acoustic_model_matches_saved_model(exported, speech, tmp_path):
    from mmae.export import export_tflite

    run_dir, _, summary = exported
    path = str(tmp_path / "acoustic.tflite")
    result = export_tflite(run_dir, path)
    assert result["bytes"] == os.path.getsize(path) > 0
    assert result["ops"] == "builtin"  # no Flex delegate needed
    tokenizer = tokenizer_from_config(TextConfig())
    tokens = np.array([tokenizer.encode(SENTENCE)], np.int32)
    runner = tf.lite.Interpreter(model_path=path).get_signature_runner()
    out = runner(tokens=tokens, num_tokens=np.array([tokens.shape[1]], np.int32))
    mel, frames = out["output_0"][0], int(out["output_1"][0])
    expected = speech.signatures["mel"](text=tf.constant([SENTENCE]))
    assert frames == int(expected["num_frames"][0]) > 0
    assert mel.shape == (frames, summary["num_mels"])
    # The same weights through TFLite's own kernels: float32 round-off only.
    np.testing.assert_allclose(mel, expected["mel"][0, :frames].numpy(), atol=1e-4)


def test_acoustic_signature_is_the_mel_signature_without_the_frontend(speech):
    texts = tf.constant([SENTENCE, "Go."])
    ids = speech.signatures["tokenize"](text=texts)
    out = speech.signatures["acoustic"](tokens=ids["tokens"], num_tokens=ids["num_tokens"])
    expected = speech.signatures["mel"](text=texts)
    np.testing.assert_array_equal(out["num_frames"].numpy(), expected["num_frames"].numpy())
    for row, frames in enumerate(expected["num_frames"].numpy()):
        # The same graph on the same ids; 1e-5 allows only the round-off of another trace.
        np.testing.assert_allclose(
            out["mel"][row, :frames].numpy(), expected["mel"][row, :frames].numpy(), atol=1e-5
        )


def test_keras_file_round_trip(tiny_run, tmp_path):
    import keras

    from mmae.models import SeedBaseline
    from mmae.runs import load_run

    _, run_dir = tiny_run
    _, model = load_run(run_dir)
    baseline = SeedBaseline(39, model.num_mels, model.mel_mean, model.mel_std, 4.5)
    baseline.build()
    tokens = tf.constant([[5, 6, 7, 8, 9, 1, 0, 0], [9, 8, 7, 1, 0, 0, 0, 0]])
    num_tokens = tf.constant([6, 4])
    frames = 12
    batch = {
        "tokens": tokens,
        "num_tokens": num_tokens,
        "mel": tf.random.stateless_normal([2, frames, model.num_mels], seed=[1, 2]),
        "num_frames": tf.constant([frames, 9]),
        "speaker_id": tf.zeros([2], tf.int32),
        "token_mask": tf.sequence_mask(num_tokens, 8, tf.float32),
        "frame_mask": tf.sequence_mask([frames, 9], frames, tf.float32),
    }
    for original in (model, baseline):
        path = str(tmp_path / f"{type(original).__name__}.keras")
        original.save(path)
        loaded = keras.models.load_model(path)
        assert type(loaded) is type(original)
        assert loaded.get_config() == original.get_config()
        for got, want in zip(loaded.weights, original.weights, strict=True):
            np.testing.assert_array_equal(got.numpy(), want.numpy())
        mel, num_frames = original.synthesize_mel(tokens, num_tokens)
        loaded_mel, loaded_frames = loaded.synthesize_mel(tokens, num_tokens)
        np.testing.assert_array_equal(loaded_mel.numpy(), mel.numpy())
        np.testing.assert_array_equal(loaded_frames.numpy(), num_frames.numpy())
        losses = original.compute_losses(batch, training=False)
        loaded_losses = loaded.compute_losses(batch, training=False)
        assert set(losses) == set(loaded_losses)
        for key, value in losses.items():
            assert float(loaded_losses[key]) == float(value), key


@pytest.fixture(scope="module")
def phoneme_export(tmp_path_factory):
    """A tiny run trained 2 steps on phonemes, exported: (run_dir, export_dir, summary).

    Its decoder and joint step are the flite16k preset's: two frames a
    decoder position, a quarter of each batch autoencoded.
    """
    pytest.importorskip("phonemizer")
    from mmae.config import Config
    from mmae.datasets.prepare import prepare
    from mmae.export import export_saved_model
    from mmae.training import train

    root = tmp_path_factory.mktemp("phoneme_run")
    corpus = make_ljspeech(root / "corpus", sample_rows(12))
    config = Config.load(
        "tiny",
        overrides=[
            "text.tokenizer=phonemes",
            "text.symbol_set=phonemes-v1",
            "model.decoder_reduction=2",
            "loss.audio_fraction=0.25",
            "data.clips_per_shard=6",
            "train.steps=2",
            "train.eval_every=1000",
            "train.checkpoint_every=1000",
        ],
    )
    prepare(corpus, str(root / "prepared"), config, jobs=1, progress=False)
    train(config, str(root / "prepared"), str(root / "run"), progress=False)
    summary = export_saved_model(
        str(root / "run"), str(root / "export"), data_dir=str(root / "prepared")
    )
    return str(root / "run"), str(root / "export"), summary


def test_phoneme_export_speaks_like_the_synthesizer(phoneme_export):
    from mmae.text import PhonemeTokenizer

    run_dir, out_dir, summary = phoneme_export
    # The bundled frontend: WordNet's words, their forms and the G2P.
    assert summary["lexicon_entries"] > 150_000 and summary["g2p"]
    speech = tf.saved_model.load(out_dir)
    texts = [SENTENCE, "", EMOJI, "Of the 3 dogs, one is in the garden."]
    out = speech.signatures["serving_default"](text=tf.constant(texts))
    lengths = out["lengths"].numpy().tolist()
    assert lengths[1] == lengths[2] == 0 and np.isfinite(out["audio"].numpy()).all()
    assert lengths[0] > 0 and lengths[3] > 0
    expected = [len(a) for a in quietly(synthesizer(run_dir).synthesize, texts)]
    frame_step = summary["config"]["audio"]["frame_step"]
    for got, want in zip(lengths, expected, strict=True):
        assert abs(got - want) <= frame_step
    # The text frontend's cases, read as every other path reads them.
    cases = golden_cases()
    out = speech.signatures["tokenize"](text=tf.constant([case["text"] for case in cases]))
    symbols = summary["config"]["text"]["symbols"]
    got = symbols_of_rows(out["tokens"].numpy(), out["num_tokens"].numpy(), symbols)
    assert got == [case["phonemes"] for case in cases]
    # Word-by-word lookup (with context forms and joined pairs) against
    # espeak-ng on whole sentences (bench/frontend_bench.py measures more).
    texts = sample_texts()
    expected = quietly(PhonemeTokenizer("phonemes-v1").encode_batch, texts)
    tokens = speech.signatures["tokenize"](text=tf.constant(texts))
    ids, num_tokens = tokens["tokens"].numpy(), tokens["num_tokens"].numpy()
    equal = [ids[i, : num_tokens[i]].tolist() == want for i, want in enumerate(expected)]
    assert sum(equal) / len(texts) >= 0.95, [
        t for t, ok in zip(texts, equal, strict=True) if not ok
    ][:5]


def test_a_reduced_decoder_exports_to_tflite_with_builtin_ops(phoneme_export, tmp_path):
    from mmae.export import export_tflite

    run_dir, _, summary = phoneme_export
    assert summary["config"]["model"]["decoder_reduction"] == 2
    result = export_tflite(run_dir, str(tmp_path / "reduced.tflite"))
    assert result["ops"] == "builtin", result["error"]


def test_the_pretrained_model_exports_to_tflite(tmp_path):
    from mmae import pretrained
    from mmae.export import export_tflite

    result = export_tflite(pretrained.path_of(), str(tmp_path / "pretrained.tflite"))
    assert result["ops"] == "builtin" and result["bytes"] > 1_000_000
    with pytest.raises(ValueError, match="no checkpoints"):
        export_tflite(pretrained.path_of(), str(tmp_path / "x.tflite"), checkpoint="ckpt-1")


def test_vocos_converts_to_tflite_with_builtin_ops(tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    from mmae.config import AudioConfig
    from mmae.export import export_tflite_vocoder
    from mmae.vocoders import Vocos

    audio = AudioConfig()
    vocoder = Vocos.from_config_dataclass(audio, dim=32, num_blocks=2)
    path = str(tmp_path / "vocos.tflite")
    result = export_tflite_vocoder(vocoder, path, audio, select_tf_ops=False)
    assert result["ops"] == "builtin" and result["vocoder"] == "Vocos"
    assert result["bytes"] == os.path.getsize(path)
    rng = np.random.default_rng(0)
    log_mel = rng.uniform(-11.0, 2.0, [1, 100, audio.num_mels]).astype(np.float32)
    interpreter = Interpreter(model_path=path)
    (log_mel_input,) = interpreter.get_input_details()
    interpreter.resize_tensor_input(log_mel_input["index"], log_mel.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(log_mel_input["index"], log_mel)
    interpreter.invoke()
    waveform = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    expected = vocoder(log_mel).numpy()
    assert waveform.shape == expected.shape == (1, 99 * audio.frame_step)
    assert np.abs(expected).max() > 1e-3  # not a comparison of silences
    # The same weights through TFLite's own kernels: float32 round-off only.
    np.testing.assert_allclose(waveform, expected, atol=1e-5)


def test_mmae_serve_speaks_from_the_saved_model(exported, tiny_synthesizer):
    """`mmae serve --saved-model`'s backend: the export's audio, one sentence a row."""
    pytest.importorskip("starlette")
    from starlette.testclient import TestClient

    from mmae.serving import SpeechEngine, create_app
    from mmae.serving.backends import SavedModelBackend

    backend = SavedModelBackend(exported[1])
    assert backend.sentences("Hello there. \U0001f600! Bye.") == ["Hello there.", "Bye."]
    text = "Hello there. Bye."
    with TestClient(create_app(SpeechEngine(backend))) as client:
        response = client.post(
            "/v1/audio/speech", json={"input": text, "response_format": "pcm", "stream": False}
        )
        assert client.post("/v1/audio/speech", json={"input": "Hi.", "speed": 2}).status_code == 400
    audio = np.frombuffer(response.content, "<i2").astype(np.float32) / 32767
    # Each sentence's peak is limited on its own: a stream cannot wait for the loudest.
    first, second = quietly(tiny_synthesizer.synthesize, ["Hello there.", "Bye."])
    pause = np.zeros([int(0.25 * tiny_synthesizer.sample_rate)], np.float32)
    expected = np.concatenate([first, pause, second])
    assert audio.size == expected.size
    # Float round-off, grown by Griffin-Lim's iterations, differs by the thread
    # that speaks (two model workers): up to about 2e-3 seen.
    np.testing.assert_allclose(audio, expected, atol=5e-3)
