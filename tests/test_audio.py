"""Tests for the audio frontend: mmae.audio.io and mmae.audio.features."""

import importlib.machinery
import os
import shutil
import subprocess
import sys
import types

import keras
import librosa
import numpy as np
import pytest
import soundfile
import tensorflow as tf

from layer_test_case import global_dtype_policy
from mmae.audio import AudioError, audio_info, load_audio, save_audio
from mmae.audio.features import (
    MelSpectrogram,
    frame_count,
    mel_layer_from_config,
    mel_weight_matrix,
)
from mmae.config import AudioConfig

# |TF log-mel - librosa log-mel| over bins whose librosa mel is above the
# floor. Measured on CPU over five flite phrases: max 8.6e-4 at 22050 Hz and
# 1.14e-3 at 16 kHz with frame_length 800, 99.9th percentile <= 3.7e-4; ~1e-6
# on noise. The worst bins are the quietest ones in loud frames: TensorFlow's
# float32 rfft has an error of about 1e-7 of the frame's peak, large relative
# to those bins (librosa in float32 stays within 7e-7 of float64). Over all
# 260 clips of data/sample the worst bin reaches 4.8e-3 (bench/data_bench/mel_features.py),
# so these tolerances hold for these phrases, not for every clip. On this
# test's phrase: max 6.2e-4 (22050 Hz) and 1.14e-3 (16 kHz), 99.9th
# percentile 2.1e-4 and 3.6e-4, and 3.6e-5 where librosa's mel is above 1e-3.
# Each tolerance is about 1.4 to 3 times the largest of these, headroom for
# another CPU's FFT rounding, yet below the 4.8e-3 some other clips reach.
LOG_MEL_TOLERANCE = 2e-3
LOG_MEL_PERCENTILE_TOLERANCE = 5e-4  # at the 99.9th percentile
LOUD_LOG_MEL_TOLERANCE = 1e-4

# (sample_rate, fft_length, frame_length, frame_step)
GEOMETRIES = [(22050, 1024, 1024, 256), (16000, 1024, 800, 200)]

SPEECH_TEXT = "The quick brown fox jumps over the lazy dog, then sleeps until noon."


def mel_kwargs(sample_rate, fft_length, frame_length, frame_step, **overrides):
    kwargs = dict(
        sample_rate=sample_rate,
        fft_length=fft_length,
        frame_length=frame_length,
        frame_step=frame_step,
        num_mels=80,
        lower_edge_hertz=0.0,
        upper_edge_hertz=8000.0,
    )
    kwargs.update(overrides)
    return kwargs


def librosa_mel(waveform, sample_rate, fft_length, frame_length, frame_step, power=1.0):
    mel = librosa.feature.melspectrogram(
        y=waveform,
        sr=sample_rate,
        n_fft=fft_length,
        hop_length=frame_step,
        win_length=frame_length,
        window="hann",
        center=True,
        pad_mode="constant",
        power=power,
        n_mels=80,
        fmin=0.0,
        fmax=8000.0,
        htk=False,
        norm="slaney",
    )
    return mel.T  # [frames, num_mels], like the layer


def tone(frequency, seconds, sample_rate, amplitude=0.5):
    time = np.arange(int(seconds * sample_rate)) / sample_rate
    return (amplitude * np.sin(2 * np.pi * frequency * time)).astype(np.float32)


def dominant_frequency(waveform, sample_rate):
    spectrum = np.abs(np.fft.rfft(waveform * np.hanning(len(waveform))))
    return np.argmax(spectrum) * sample_rate / len(waveform)


@pytest.fixture(scope="module")
def speech_path(tmp_path_factory):
    if shutil.which("flite") is None:
        pytest.skip("flite is not installed")
    path = tmp_path_factory.mktemp("speech") / "speech.wav"
    subprocess.run(["flite", "-voice", "slt", "-t", SPEECH_TEXT, "-o", str(path)], check=True)
    return path


# --- Mel features ---------------------------------------------------------


@pytest.mark.parametrize("sample_rate, fft_length, frame_length, frame_step", GEOMETRIES)
@pytest.mark.parametrize("signal", ["speech", "noise"])
def test_log_mel_matches_librosa(
    signal, sample_rate, fft_length, frame_length, frame_step, speech_path
):
    if signal == "speech":
        waveform = load_audio(speech_path, sample_rate, allow_upsampling=True)
    else:
        rng = np.random.default_rng(0)
        waveform = (0.1 * rng.standard_normal(sample_rate)).astype(np.float32)
    layer = MelSpectrogram(**mel_kwargs(sample_rate, fft_length, frame_length, frame_step))

    ours = layer(waveform).numpy()
    reference = librosa_mel(waveform, sample_rate, fft_length, frame_length, frame_step)

    assert ours.shape == reference.shape
    assert ours.shape[0] == frame_count(len(waveform), frame_step)
    floor = layer.log_floor
    difference = np.abs(ours - np.log(np.maximum(reference, floor)))
    above_floor = difference[reference > floor]
    assert above_floor.max() < LOG_MEL_TOLERANCE
    assert np.percentile(above_floor, 99.9) < LOG_MEL_PERCENTILE_TOLERANCE
    assert difference[reference > 1e-3].max() < LOUD_LOG_MEL_TOLERANCE
    # Everything at or below the floor is clamped to the same value (the
    # largest difference over all bins, floor included, is the 1.14e-3 above).
    assert difference.max() < 0.01


def test_power_spectrogram_matches_librosa():
    rng = np.random.default_rng(1)
    waveform = (0.1 * rng.standard_normal(8000)).astype(np.float32)
    layer = MelSpectrogram(**mel_kwargs(16000, 512, 512, 128), power=2.0)
    reference = librosa_mel(waveform, 16000, 512, 512, 128, power=2.0)
    # 9.5e-7 measured on noise, as for magnitude features; the speech
    # tolerance's reasons do not apply to noise, whose bins are all loud.
    np.testing.assert_allclose(layer(waveform).numpy(), np.log(reference), atol=1e-4)


@pytest.mark.parametrize(
    "sample_rate, fft_length, lower_edge_hertz, upper_edge_hertz",
    [(22050, 1024, 0.0, 8000.0), (16000, 1024, 0.0, 8000.0), (24000, 2048, 50.0, 11000.0)],
)
def test_slaney_mel_matrix_matches_librosa(
    sample_rate, fft_length, lower_edge_hertz, upper_edge_hertz
):
    ours = mel_weight_matrix(
        80, fft_length // 2 + 1, sample_rate, lower_edge_hertz, upper_edge_hertz, "slaney"
    )
    reference = librosa.filters.mel(
        sr=sample_rate,
        n_fft=fft_length,
        n_mels=80,
        fmin=lower_edge_hertz,
        fmax=upper_edge_hertz,
        htk=False,
        norm="slaney",
    )
    assert ours.shape == (fft_length // 2 + 1, 80)
    error = np.abs(ours.numpy().T - reference).max() / np.abs(reference).max()
    assert error < 1e-6  # 7.0e-8 to 7.6e-8 measured: float32 rounding of the float64 matrices


def test_htk_mel_matrix_is_tf_signal():
    ours = mel_weight_matrix(40, 257, 16000, 0.0, 8000.0, "htk")
    expected = tf.signal.linear_to_mel_weight_matrix(40, 257, 16000, 0.0, 8000.0)
    np.testing.assert_array_equal(ours.numpy(), expected.numpy())
    assert not np.any(ours.numpy()[0])  # tf.signal zeroes the DC bin


# librosa warns that clips shorter than n_fft are short; that is the point here.
@pytest.mark.filterwarnings("ignore:n_fft=.*too large")
@pytest.mark.parametrize("num_samples", [0, 1, 255, 256, 257, 1000, 16000])
def test_frame_count(num_samples):
    layer = MelSpectrogram(**mel_kwargs(16000, 512, 400, 256))
    frames = layer(np.zeros(num_samples, np.float32)).shape[0]
    assert frames == frame_count(num_samples, 256) == 1 + num_samples // 256
    if num_samples > 0:
        reference = librosa_mel(np.zeros(num_samples, np.float32), 16000, 512, 400, 256)
        assert reference.shape[0] == frames


def test_frame_count_without_centering():
    layer = MelSpectrogram(**mel_kwargs(16000, 512, 512, 256), center=False)
    for num_samples in (100, 512, 1000, 1024):
        frames = layer(np.zeros(num_samples, np.float32)).shape[0]
        assert frames == frame_count(num_samples, 256, center=False, fft_length=512)
    with pytest.raises(ValueError, match="fft_length"):
        frame_count(1000, 256, center=False)


def test_batched_and_unbatched_inputs_agree():
    layer = MelSpectrogram(**mel_kwargs(16000, 512, 400, 160))
    waveforms = np.random.default_rng(2).uniform(-0.5, 0.5, (3, 4000)).astype(np.float32)
    batched = layer(waveforms).numpy()
    assert batched.shape == (3, frame_count(4000, 160), 80)
    for waveform, mel in zip(waveforms, batched, strict=True):
        # Equal when measured; the FFT may batch its work differently elsewhere.
        np.testing.assert_allclose(layer(waveform).numpy(), mel, atol=1e-5)


def test_runs_in_tf_data_map():
    layer = MelSpectrogram(**mel_kwargs(16000, 512, 512, 256))
    rng = np.random.default_rng(3)
    waveforms = [rng.uniform(-0.5, 0.5, n).astype(np.float32) for n in (3000, 5000, 4100)]
    dataset = tf.data.Dataset.from_generator(
        lambda: iter(waveforms), output_signature=tf.TensorSpec([None], tf.float32)
    ).map(layer)
    assert dataset.element_spec.shape.as_list() == [None, 80]
    for waveform, mel in zip(waveforms, dataset, strict=True):
        assert mel.shape == (frame_count(len(waveform), 256), 80)
        # Equal when measured: the same ops in a graph.
        np.testing.assert_allclose(mel.numpy(), layer(waveform).numpy(), atol=1e-5)


def test_runs_under_xla_with_dynamic_lengths():
    layer = MelSpectrogram(**mel_kwargs(16000, 1024, 800, 200))
    compiled = tf.function(
        layer, jit_compile=True, input_signature=[tf.TensorSpec([None, None], tf.float32)]
    )
    rng = np.random.default_rng(4)
    for num_samples in (3200, 4321):
        waveforms = rng.uniform(-0.5, 0.5, (2, num_samples)).astype(np.float32)
        mel = compiled(waveforms).numpy()
        assert mel.shape == (2, frame_count(num_samples, 200), 80)
        # 2.4e-7 measured; XLA fuses and reorders the float32 mel projection.
        np.testing.assert_allclose(mel, layer(waveforms).numpy(), atol=1e-4)
    # Lowering to HLO fails if any op has no XLA kernel.
    assert "fft" in compiled.experimental_get_compiler_ir(waveforms)(stage="hlo").lower()


def test_config_round_trip():
    layer = MelSpectrogram(**mel_kwargs(16000, 1024, 800, 200), mel_scale="htk", power=2.0)
    config = layer.get_config()
    restored = MelSpectrogram.from_config(config)
    assert restored.get_config() == config
    for name in mel_kwargs(16000, 1024, 800, 200).keys() | {"mel_scale", "power", "center"}:
        assert getattr(restored, name) == getattr(layer, name)


def test_keras_save_and_load(tmp_path):
    model = keras.Sequential(
        [keras.Input(shape=(None,)), MelSpectrogram(**mel_kwargs(16000, 512, 400, 160))]
    )
    waveforms = np.random.default_rng(5).uniform(-0.5, 0.5, (2, 3000)).astype(np.float32)
    expected = model(waveforms).numpy()
    path = str(tmp_path / "mel.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored.layers[-1], MelSpectrogram)
    np.testing.assert_array_equal(restored(waveforms).numpy(), expected)


def test_float32_under_mixed_precision():
    with global_dtype_policy("mixed_float16"):
        layer = MelSpectrogram(**mel_kwargs(16000, 512, 512, 256))
        assert layer.compute_dtype == "float32"
        waveform = np.random.default_rng(6).uniform(-0.5, 0.5, (1, 4000))
        mel = layer(tf.constant(waveform, tf.float16))
        assert mel.dtype == tf.float32
        # Equal when measured: the layer casts its input to float32 first.
        np.testing.assert_allclose(
            mel.numpy(), layer(waveform.astype(np.float16).astype(np.float32)).numpy(), atol=1e-6
        )


def test_layer_from_audio_config():
    config = AudioConfig(sample_rate=16000, frame_length=800, frame_step=200, mel_scale="htk")
    layer = mel_layer_from_config(config, name="mel")
    assert layer.name == "mel"
    assert (layer.sample_rate, layer.frame_length, layer.frame_step) == (16000, 800, 200)
    assert (layer.mel_scale, layer.log_floor, layer.center) == ("htk", config.log_floor, True)
    assert MelSpectrogram.from_config_dataclass(config).get_config()["fft_length"] == 1024


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="frame_length"):
        MelSpectrogram(**mel_kwargs(16000, 512, 1024, 256))
    with pytest.raises(ValueError, match="mel_scale"):
        MelSpectrogram(**mel_kwargs(16000, 512, 512, 256), mel_scale="bark")


# --- Audio I/O --------------------------------------------------------------


def test_package_import_does_not_load_tensorflow():
    code = "import sys, mmae.audio; print('tensorflow' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )
    assert result.stdout.strip() == "False"


# A 16-bit step is 2 ** -15 = 3.05e-5; 3.0e-5 measured (one step), and 1e-4
# allows about three.
PCM_16_TOLERANCE = 1e-4
# The tones fall on an FFT bin (2 Hz bins over 0.5 s, 1 Hz over 1 s) and are
# found there exactly when measured; these allow a bin either side, while a
# pitch change of a semitone (26 Hz at 440 Hz) fails.
FREQUENCY_TOLERANCE_HALF_SECOND = 4.0
FREQUENCY_TOLERANCE_ONE_SECOND = 1.5


@pytest.mark.parametrize(
    "extension, subtype, tolerance",
    [
        ("wav", "PCM_16", PCM_16_TOLERANCE),
        ("flac", "PCM_16", PCM_16_TOLERANCE),
        ("ogg", "VORBIS", None),
    ],
)
def test_load_formats(tmp_path, extension, subtype, tolerance):
    waveform = tone(440.0, 0.5, 16000)
    path = tmp_path / f"tone.{extension}"
    soundfile.write(path, waveform, 16000, subtype=subtype)
    loaded = load_audio(path, 16000)
    assert loaded.dtype == np.float32 and loaded.ndim == 1
    assert len(loaded) == len(waveform)
    if tolerance is None:  # lossy: the tone survives, the samples do not
        assert abs(dominant_frequency(loaded, 16000) - 440.0) < FREQUENCY_TOLERANCE_HALF_SECOND
    else:
        np.testing.assert_allclose(loaded, waveform, atol=tolerance)


def test_load_mp3(tmp_path):
    path = tmp_path / "tone.mp3"
    try:
        soundfile.write(path, tone(440.0, 0.5, 16000), 16000, format="MP3")
    except (soundfile.LibsndfileError, TypeError, ValueError):
        pytest.skip("this libsndfile cannot write MP3")
    loaded = load_audio(path, 16000)
    # 8000 samples measured; the bound lets a decoder keep the encoder's delay
    # and padding to whole frames (576 samples per frame at 16 kHz).
    assert abs(len(loaded) - 8000) < 2000
    assert abs(dominant_frequency(loaded, 16000) - 440.0) < FREQUENCY_TOLERANCE_HALF_SECOND


def test_stereo_is_downmixed(tmp_path):
    left, right = tone(440.0, 0.25, 16000), tone(1000.0, 0.25, 16000, amplitude=0.25)
    path = tmp_path / "stereo.wav"
    soundfile.write(path, np.stack([left, right], axis=1), 16000, subtype="FLOAT")
    # Equal when measured: float samples, averaged in float32.
    np.testing.assert_allclose(load_audio(path, 16000), (left + right) / 2, atol=1e-6)


def test_resampling_keeps_duration_and_pitch(tmp_path):
    path = tmp_path / "tone44k.wav"
    soundfile.write(path, tone(440.0, 1.0, 44100), 44100)
    loaded = load_audio(path, 22050)
    assert len(loaded) == 22050
    assert abs(dominant_frequency(loaded, 22050) - 440.0) < FREQUENCY_TOLERANCE_ONE_SECOND

    path = tmp_path / "tone16k.wav"
    soundfile.write(path, tone(440.0, 1.0, 16000), 16000)
    loaded = load_audio(path, 22050, allow_upsampling=True)
    assert len(loaded) == 22050
    assert abs(dominant_frequency(loaded, 22050) - 440.0) < FREQUENCY_TOLERANCE_ONE_SECOND


def test_trim_and_peak_normalize(tmp_path):
    silence = np.zeros(8000, np.float32)
    path = tmp_path / "padded.wav"
    soundfile.write(path, np.concatenate([silence, tone(440.0, 0.5, 16000, 0.3), silence]), 16000)

    untrimmed = load_audio(path, 16000)
    assert len(untrimmed) == 24000
    assert abs(np.abs(untrimmed).max() - 0.3) < 1e-3  # 1.8e-5 measured: 16-bit rounding

    trimmed = load_audio(path, 16000, trim_silence=True, peak_normalize=True)
    # librosa judges 2048-sample frames on 512-sample hops, so up to one frame
    # of silence can remain on each side.
    assert 8000 <= len(trimmed) <= 8000 + 2 * 2048
    assert len(trimmed) < len(untrimmed) - 8000
    assert np.abs(trimmed).max() == pytest.approx(0.95, abs=1e-6)
    halved = load_audio(path, 16000, peak_normalize=True, peak_level=0.5)
    assert np.abs(halved).max() == pytest.approx(0.5, abs=1e-6)


def test_falls_back_to_librosa_when_soundfile_read_fails(tmp_path, monkeypatch):
    path = tmp_path / "tone.wav"
    soundfile.write(path, tone(440.0, 0.25, 16000), 16000)

    def broken_read(*args, **kwargs):
        raise soundfile.LibsndfileError(1, "simulated")

    monkeypatch.setattr(soundfile, "read", broken_read)
    np.testing.assert_allclose(
        load_audio(path, 16000), tone(440.0, 0.25, 16000), atol=PCM_16_TOLERANCE
    )


def test_broken_tensorflow_io_is_ignored(tmp_path, monkeypatch):
    # tensorflow-io 0.37.1 imports beside TF 2.21, then fails on first use.
    fake = types.ModuleType("tensorflow_io")
    fake.__spec__ = importlib.machinery.ModuleSpec("tensorflow_io", None)

    def undefined_symbol(name):
        raise NotImplementedError("undefined symbol: _ZN10tensorflow")

    fake.__getattr__ = undefined_symbol
    monkeypatch.setitem(sys.modules, "tensorflow_io", fake)
    path = tmp_path / "garbage.wav"
    path.write_bytes(b"not audio at all" * 64)
    with pytest.raises(AudioError, match=r"^garbage\.wav: unreadable audio"):
        load_audio(path, 16000)


def write_wav(path, waveform, sample_rate):
    soundfile.write(path, waveform, sample_rate)
    return path


def write_bytes(path, data):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    "make_file, kwargs, message",
    [
        (lambda d: d / "missing.wav", {}, "missing.wav: file not found"),
        (
            lambda d: write_bytes(d / "corrupt.wav", b"RIFF\x10\x00\x00\x00WAVEjunk" * 8),
            {},
            "corrupt.wav: unreadable audio",
        ),
        (
            lambda d: write_wav(d / "empty.wav", np.zeros(0, np.float32), 16000),
            {},
            "empty.wav: empty audio (0 samples)",
        ),
        (
            lambda d: write_wav(d / "zeros.wav", np.zeros(4000, np.float32), 16000),
            {"trim_silence": True},
            "zeros.wav: silent audio (all samples are zero)",
        ),
        (
            lambda d: write_wav(d / "rate.wav", tone(440.0, 0.1, 44100), 44100),
            {"resample": False},
            "rate.wav: wrong sample rate: 44100 Hz, expected 22050 Hz",
        ),
        (
            lambda d: write_wav(d / "low.wav", tone(440.0, 0.1, 16000), 16000),
            {},
            "low.wav: sample rate 16000 Hz is below 22050 Hz and upsampling is not allowed",
        ),
    ],
    ids=["missing", "corrupt", "empty", "silent", "wrong-rate", "upsampling"],
)
def test_audio_errors(tmp_path, make_file, kwargs, message):
    path = make_file(tmp_path)
    with pytest.raises(AudioError) as raised:
        load_audio(path, 22050, **kwargs)
    assert str(raised.value).startswith(message)
    assert isinstance(raised.value, ValueError)


def test_save_audio_and_audio_info(tmp_path):
    waveform = tone(440.0, 0.5, 16000, amplitude=1.5)  # clipped, not wrapped
    for extension in ("wav", "flac"):
        path = tmp_path / "out" / f"tone.{extension}"
        save_audio(path, waveform, 16000)
        assert soundfile.info(path).subtype == "PCM_16"
        info = audio_info(path)
        assert (info.sample_rate, info.frames, info.channels) == (16000, 8000, 1)
        assert info.duration == pytest.approx(0.5)
        np.testing.assert_allclose(
            load_audio(path, 16000), np.clip(waveform, -1, 1), atol=PCM_16_TOLERANCE
        )
    with pytest.raises(ValueError, match="mp4"):
        save_audio(tmp_path / "tone.mp4", waveform, 16000)
    with pytest.raises(AudioError, match="nothing.wav: file not found"):
        audio_info(tmp_path / "nothing.wav")


def test_load_clip_takes_every_loading_setting_from_the_config(tmp_path):
    from mmae.audio.io import load_clip

    path = str(tmp_path / "tone.wav")
    tone = 0.3 * np.sin(2 * np.pi * 440 * np.arange(44100) / 44100)
    padded = np.concatenate([np.zeros(22050), tone, np.zeros(22050)]).astype(np.float32)
    soundfile.write(path, padded, 44100)
    config = AudioConfig(sample_rate=16000, peak_level=0.5, trim_top_db=30.0)
    expected = load_audio(
        path,
        16000,
        resample=True,
        allow_upsampling=False,
        trim_silence=True,
        trim_top_db=30.0,
        peak_normalize=True,
        peak_level=0.5,
    )
    np.testing.assert_array_equal(load_clip(path, config), expected)
    # One second of tone and 1.12 s measured: trimming judges 2048-sample
    # frames on 512-sample hops, so some silence stays; 1.2 s allows two more hops.
    assert abs(np.max(np.abs(expected)) - 0.5) < 1e-6 and len(expected) < 1.2 * 16000
    with pytest.raises(AudioError, match="wrong sample rate: 44100 Hz, expected 16000 Hz"):
        load_clip(path, AudioConfig(sample_rate=16000, resample=False))
