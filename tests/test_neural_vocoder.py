"""The neural vocoder: its inverse STFT, bad input, training data, losses, training and loading."""

import json
import os
import warnings

import numpy as np
import pytest
import tensorflow as tf

from conftest import make_ljspeech, run_mmae, sample_rows
from mmae.audio.features import MelSpectrogram
from mmae.config import Config, IncompatibleConfigError
from mmae.vocoders import (
    GriffinLim,
    VocoderMismatchWarning,
    Vocos,
    resolve_vocoder,
    vocoder_from_config,
)

FLITE = Config.load("flite16k").audio
# A tiny generator on the flite16k features: the tests check behaviour, not quality.
TINY = dict(dim=16, intermediate_dim=24, num_blocks=2, kernel_size=3)
# Tiny vocoder training: two reconstruction steps, then two adversarial ones.
TRAIN_OVERRIDES = [
    "vocoder.dim=16",
    "vocoder.intermediate_dim=24",
    "vocoder.num_blocks=1",
    "vocoder.segment_frames=8",
    "vocoder.validation_segment_frames=12",
    "vocoder.periods=[2]",
    "vocoder.period_channels=[4]",
    "vocoder.resolution_fft_lengths=[256]",
    "vocoder.resolution_channels=4",
    "vocoder.stft_loss_fft_lengths=[256]",
    "vocoder.adversarial_start=2",
    "train.batch_size=2",
    "train.steps=4",
    "train.log_every=1",
    "train.eval_every=4",
    "train.checkpoint_every=2",
    "train.warmup_steps=1",
]


def tiny_vocos(**kwargs):
    vocoder = Vocos.from_config_dataclass(FLITE, **TINY, **kwargs)
    vocoder.build()
    return vocoder


def speech_log_mel(frames=40, seed=0):
    """Log-mels of a harmonic tone with a little noise: something like speech."""
    t = np.arange((frames - 1) * FLITE.frame_step) / FLITE.sample_rate
    rng = np.random.default_rng(seed)
    wave = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 6)) * 0.2
    wave = (wave + 0.01 * rng.normal(size=t.shape)).astype(np.float32)
    return MelSpectrogram.from_config_dataclass(FLITE)(wave[None]).numpy()


def test_vocos_inverse_stft_rebuilds_the_waveform():
    vocoder = tiny_vocos()
    griffin_lim = vocoder_from_config(FLITE)
    waveform = np.random.default_rng(0).normal(size=[2, 8000]).astype(np.float32) * 0.1
    stft = griffin_lim.stft(waveform)
    rebuilt = vocoder.inverse_stft(tf.math.real(stft), tf.math.imag(stft)).numpy()
    assert rebuilt.shape == (2, (stft.shape[1] - 1) * FLITE.frame_step)
    np.testing.assert_allclose(rebuilt, waveform[:, : rebuilt.shape[1]], atol=1e-5)


@pytest.mark.parametrize("make", [tiny_vocos, lambda: GriffinLim.from_config_dataclass(FLITE)])
class TestBadInput:
    """Every case gives a defined output, item by item; nothing is NaN."""

    def test_zero_or_one_frame_give_no_samples(self, make):
        vocoder = make()
        for frames in (0, 1):
            out = vocoder(tf.zeros([2, frames, FLITE.num_mels]))
            assert out.shape == (2, 0)
        # In a batch, an item of zero or one frame gets no samples either.
        log_mel = np.repeat(speech_log_mel(20), 3, axis=0)
        out = vocoder(log_mel, num_frames=tf.constant([20, 1, 0])).numpy()
        assert np.abs(out[0]).max() > 0
        assert not np.any(out[1:])

    def test_nan_and_inf_frames_are_silence(self, make):
        vocoder = make()
        log_mel = speech_log_mel(30)
        bad = log_mel.copy()
        bad[0, 10:12] = np.nan
        bad[0, 20, 5] = np.inf
        bad[0, 21, 7] = -np.inf
        out = vocoder(bad).numpy()
        assert np.isfinite(out).all()
        silent = log_mel.copy()
        silent[0, 10:12] = silent[0, 20:22] = np.log(FLITE.log_floor)
        np.testing.assert_allclose(out, vocoder(silent).numpy(), atol=1e-5)

    def test_frames_far_outside_the_training_range_are_clipped(self, make):
        vocoder = make()
        log_mel = speech_log_mel(30)
        loud = log_mel.copy()
        loud[0, 5:8] = 1e6
        loud[0, 15:18] = -1e6
        out = vocoder(loud).numpy()
        assert np.isfinite(out).all()
        clipped = np.clip(loud, np.log(FLITE.log_floor), vocoder.max_log_mel)
        np.testing.assert_allclose(out, vocoder(clipped).numpy(), atol=1e-5)

    def test_one_bad_item_leaves_the_others_alone(self, make):
        vocoder = make()
        good = speech_log_mel(30)
        bad = np.full_like(good, np.nan)
        out = vocoder(np.concatenate([good, bad, good * 0 + 1e9])).numpy()
        assert np.isfinite(out).all()
        np.testing.assert_allclose(out[0], vocoder(good).numpy()[0], atol=1e-5)


def test_vocos_runs_under_xla_and_mixed_precision():
    log_mel = np.repeat(speech_log_mel(24), 2, axis=0)
    vocoder = tiny_vocos()
    eager = vocoder(log_mel, num_frames=tf.constant([24, 16])).numpy()
    compiled = tf.function(lambda m, n: vocoder(m, num_frames=n), jit_compile=True)
    np.testing.assert_allclose(compiled(log_mel, tf.constant([24, 16])).numpy(), eager, atol=1e-4)
    mixed = tiny_vocos(dtype="mixed_bfloat16")
    mixed.set_weights(vocoder.get_weights())
    out = mixed(log_mel).numpy()
    assert out.dtype == np.float32 and np.isfinite(out).all()


def test_resolve_vocoder_falls_back_to_griffin_lim_with_a_warning(monkeypatch, tmp_path):
    import mmae.vocoders

    # No bundled vocoder: Griffin-Lim, quietly.
    monkeypatch.setattr(mmae.vocoders, "BUNDLED", str(tmp_path / "none"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert isinstance(resolve_vocoder("auto", FLITE), GriffinLim)
    # A bundled vocoder for other features: Griffin-Lim, and the warning names the difference.
    bundled = tmp_path / "bundled"
    pack_tiny_vocoder(bundled)
    monkeypatch.setattr(mmae.vocoders, "BUNDLED", str(bundled))
    assert isinstance(resolve_vocoder("auto", FLITE), Vocos)
    other = Config.load("ljspeech").audio
    with pytest.warns(VocoderMismatchWarning, match="audio.sample_rate: 16000 vs 22050"):
        assert isinstance(resolve_vocoder("auto", other), GriffinLim)
    # Asked for by path, a mismatch is an error.
    with pytest.raises(IncompatibleConfigError, match="sample_rate"):
        resolve_vocoder(str(bundled), other)
    assert isinstance(resolve_vocoder("griffin_lim", FLITE), GriffinLim)


def pack_tiny_vocoder(out_dir):
    """A packed (untrained) tiny vocoder for the flite16k features, as `mmae.pretrained` writes it."""
    from mmae.pretrained import save_vocoder
    from mmae.vocoders import build_vocoder

    config = Config.load("flite16k", overrides=[f"vocoder.{k}={v}" for k, v in TINY.items()])
    vocoder = build_vocoder(config)
    save_vocoder(config, vocoder, str(out_dir))
    return vocoder


def test_packed_vocoder_loads_with_its_weights(tmp_path):
    from mmae.runs import is_pretrained, is_vocoder, load_vocoder

    vocoder = pack_tiny_vocoder(tmp_path / "pack")
    assert is_vocoder(str(tmp_path / "pack")) and not is_pretrained(str(tmp_path / "pack"))
    _, loaded = load_vocoder(str(tmp_path / "pack"))
    log_mel = speech_log_mel(20)
    # float16 weights: close, not equal.
    np.testing.assert_allclose(loaded(log_mel).numpy(), vocoder(log_mel).numpy(), atol=2e-3)


@pytest.fixture(scope="module")
def audio_data(tmp_path_factory):
    """12 sample clips prepared with flite16k features and their PCM."""
    from mmae.datasets.prepare import prepare

    root = tmp_path_factory.mktemp("vocoder_data")
    corpus = make_ljspeech(root / "corpus", sample_rows(12))
    config = Config.load(
        "flite16k",
        overrides=[
            "vocoder.validation_segment_frames=12",
            "data.store_audio=true",
            "data.clips_per_shard=6",
            "data.validation_fraction=0.2",
            "text.tokenizer=characters",
            "text.symbol_set=chars-v1",
        ],
    )
    prepare(corpus, str(root / "prepared"), config, jobs=1, progress=False)
    return str(root / "prepared")


def test_segments_pair_each_mel_window_with_its_samples(audio_data):
    from mmae.datasets import records
    from mmae.datasets.segments import make_segment_dataset
    from mmae.training.vocoder import vocoder_config

    config = vocoder_config(audio_data, overrides=["vocoder.segment_frames=20"])
    batch = next(iter(make_segment_dataset(audio_data, config, "train", batch_size=3)))
    assert batch["mel"].shape == (3, 20, 80)
    assert batch["audio"].shape == (3, 19 * 256)
    # Validation windows are each clip's middle: frames [start, start + 12)
    # and the samples from frame start's centre to frame start + 11's.
    frames, hop = config.vocoder.validation_segment_frames, config.audio.frame_step
    windows = next(iter(make_segment_dataset(audio_data, config, "validation", batch_size=1)))
    info = json.load(open(os.path.join(audio_data, "dataset.json")))
    shard = os.path.join(audio_data, info["splits"]["validation"]["shards"][0])
    clip = records.parse(next(iter(tf.data.TFRecordDataset(shard))), 80)
    start = (int(clip["num_frames"]) - frames) // 2
    np.testing.assert_array_equal(windows["mel"][0], clip["mel"][start : start + frames])
    expected = clip["audio"][start * hop : (start + frames - 1) * hop]
    np.testing.assert_array_equal(windows["audio"][0], expected)
    # And that window's own log-mel, away from its edges (where the
    # recording's context is cut off), is the stored one in audible bands.
    recomputed = MelSpectrogram.from_config_dataclass(config.audio)(windows["audio"]).numpy()
    stored = windows["mel"].numpy()
    audible = stored[:, 3:-3] > -6.0
    assert audible.mean() > 0.3
    assert np.abs(recomputed[:, 3:-3] - stored[:, 3:-3])[audible].max() < 0.02


def test_segments_need_stored_audio(tiny_run):
    from mmae.config import Config
    from mmae.datasets.segments import NoAudioError, make_segment_dataset

    data_dir, run_dir = tiny_run
    with pytest.raises(NoAudioError, match="data.store_audio=true"):
        make_segment_dataset(data_dir, Config.load(os.path.join(run_dir, "config.yaml")))


def test_gan_losses_and_stages():
    from mmae.training.vocoder import vocoder_stages
    from mmae.vocoders.gan import VocoderGAN

    config = Config.load("flite16k").with_overrides(TRAIN_OVERRIDES)
    gan = VocoderGAN(config)
    gan.build()
    batch = {
        "mel": speech_log_mel(8),
        "audio": np.zeros([1, 7 * 256], np.float32) + 0.01,
        "num_frames": np.array([8]),
    }
    losses = gan.compute_losses(batch, objective="generator")
    expected = 45 * losses["mel_l1"] + losses["stft"] + losses["adversarial"]
    np.testing.assert_allclose(losses["loss"], expected + 2 * losses["feature_matching"], rtol=1e-5)
    assert set(gan.compute_losses(batch, objective="discriminator")) == {"loss", "real", "fake"}
    stages = vocoder_stages(config)
    assert [s.name for s in stages] == ["reconstruction", "adversarial"]
    assert [u.key for u in stages[1].updates] == ["discriminator", "generator"]
    assert stages[1].updates[0].parts == ("mpd", "mrd")
    # Switched off: no discriminator at all, one stage.
    off = config.with_overrides(["vocoder.periods=[]", "vocoder.resolution_fft_lengths=[]"])
    assert [s.name for s in vocoder_stages(off)] == ["reconstruction"]
    assert VocoderGAN(off).discriminators == []


def test_train_vocoder_trains_resumes_and_speaks(audio_data, tmp_path):
    from mmae.training.vocoder import train_vocoder, vocoder_config

    run_dir = str(tmp_path / "vocoder")
    config = vocoder_config(audio_data, overrides=TRAIN_OVERRIDES)
    first = train_vocoder(config, audio_data, run_dir, max_steps=2, progress=False)
    assert first["step"] == 2 and first["stopped"] == "max_steps"
    # The command resumes with the run's stored config (no --set needed).
    second = run_mmae("train-vocoder", "--data", audio_data, "--run-dir", run_dir, "--quiet")
    assert second.returncode == 0, second.stderr
    assert "Trained to step 4" in second.stdout
    records = [json.loads(line) for line in open(os.path.join(run_dir, "metrics.jsonl"))]
    train = [r for r in records if r["split"] == "train"]
    assert [r["step"] for r in train] == [1, 2, 3, 4]
    assert train[-1]["stage"] == "adversarial"
    for name in ("discriminator/loss", "generator/adversarial", "generator/feature_matching"):
        assert np.isfinite(train[-1][name])
    assert any(r["split"] == "validation" for r in records)
    # Both optimizers of the adversarial stage are in its checkpoint.
    names = [n for n, _ in tf.train.list_variables(os.path.join(run_dir, "checkpoints", "ckpt-4"))]
    assert any(n.startswith("optimizers/discriminator/") for n in names)
    assert any(n.startswith("optimizers/generator/") for n in names)

    # The run is a vocoder every command can be given (--vocoder RUN).
    vocoder = resolve_vocoder(run_dir, FLITE)
    assert isinstance(vocoder, Vocos) and vocoder.dim == 16
    audio = vocoder(speech_log_mel(20)).numpy()
    assert audio.shape == (1, 19 * 256) and np.isfinite(audio).all()


def test_train_vocoder_says_when_the_data_has_no_audio(tiny_run, tmp_path):
    data_dir, _ = tiny_run
    result = run_mmae("train-vocoder", "--data", data_dir, "--run-dir", str(tmp_path / "v"))
    assert result.returncode == 2
    assert "store_audio=true" in result.stderr


def test_predicted_mels_line_up_and_fine_tuning_starts_from_a_vocoder(tiny_run, tmp_path):
    """The acoustic model's teacher-forced mels replace the true ones; the audio stays."""
    from mmae.datasets import records
    from mmae.datasets.predicted import predict_mels
    from mmae.datasets.prepare import prepare
    from mmae.runs import load_vocoder
    from mmae.training.vocoder import train_vocoder, vocoder_config

    _, run_dir = tiny_run
    run_config = Config.load(os.path.join(run_dir, "config.yaml"))
    # The tiny run's own features, now with the audio stored.
    data_dir = str(tmp_path / "prepared")
    corpus = make_ljspeech(tmp_path / "corpus", sample_rows(6))
    config = run_config.with_overrides(["data.store_audio=true", "data.validation_fraction=0.3"])
    prepare(corpus, data_dir, config, jobs=1, progress=False)
    out_dir = str(tmp_path / "predicted")
    assert predict_mels(run_dir, data_dir, out_dir, progress=False) == 6

    def first_clip(directory):
        info = json.load(open(os.path.join(directory, "dataset.json")))
        shard = os.path.join(directory, info["splits"]["train"]["shards"][0])
        serialized = next(iter(tf.data.TFRecordDataset(shard)))
        return records.parse(serialized, run_config.audio.num_mels)

    true, predicted = first_clip(data_dir), first_clip(out_dir)
    assert predicted["clip_id"] == true["clip_id"]
    assert predicted["mel"].shape == true["mel"].shape
    np.testing.assert_array_equal(predicted["audio"], true["audio"])
    assert not np.allclose(predicted["mel"], true["mel"])

    # A one-step fine-tune from a packed vocoder of the same size starts from its weights.
    overrides = [o for o in TRAIN_OVERRIDES if not o.startswith("vocoder.num_blocks")]
    overrides += ["vocoder.num_blocks=2", "vocoder.kernel_size=3", "train.steps=1"]
    pack = tmp_path / "pack"
    packed_config = vocoder_config(out_dir, overrides=overrides)
    from mmae.pretrained import save_vocoder
    from mmae.vocoders import build_vocoder

    start = build_vocoder(packed_config)
    save_vocoder(packed_config, start, str(pack), dtype=None)
    fine_tuned = str(tmp_path / "fine_tuned")
    summary = train_vocoder(packed_config, out_dir, fine_tuned, init_from=str(pack), progress=False)
    assert summary["step"] == 1
    _, after = load_vocoder(fine_tuned)
    moved = [
        np.abs(a - b).max() for a, b in zip(after.get_weights(), start.get_weights(), strict=True)
    ]
    # One small step from the packed weights, not a fresh initialization.
    assert 0 < max(moved) < 0.01

    # From a run, the discriminators start from the run's too (its newest checkpoint).
    from mmae.training.vocoder import _initialize
    from mmae.vocoders.gan import VocoderGAN
    from mmae.weights import checkpoint_key, weight_paths

    model = VocoderGAN(packed_config)
    model.build()
    _initialize(model, packed_config, fine_tuned)
    reader = tf.train.load_checkpoint(os.path.join(fine_tuned, "checkpoints"))
    attributes = list(VocoderGAN.PART_ATTRIBUTES.values())
    loaded = weight_paths(model, attributes)
    assert {path.split("/")[0] for path in loaded} == set(attributes)
    for path, variable in loaded.items():
        np.testing.assert_array_equal(variable.numpy(), reader.get_tensor(checkpoint_key(path)))
