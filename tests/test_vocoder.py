"""Tests for mmae.vocoders: the Vocoder interface and the tf.signal Griffin-Lim."""

import functools
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from layer_test_case import global_dtype_policy
from mmae.audio.features import MelSpectrogram, frame_count, mel_weight_matrix
from mmae.audio.io import load_clip
from mmae.config import AudioConfig
from mmae.vocoders import VOCODERS, GriffinLim, Vocoder, vocoder_from_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WAVS = os.path.join(REPO, "data", "sample", "wavs")

# The flite16k preset's frame geometry, and one with the window shorter than
# the FFT (centred in it, as MelSpectrogram does).
GEOMETRIES = {
    "flite16k": dict(
        sample_rate=16000,
        fft_length=1024,
        frame_length=1024,
        frame_step=256,
        num_mels=80,
        lower_edge_hertz=0.0,
        upper_edge_hertz=8000.0,
    ),
}
GEOMETRIES["short_window"] = {**GEOMETRIES["flite16k"], "frame_length": 800, "frame_step": 200}

# Spectral convergence || |STFT(output)| - |STFT(clip)| ||_F / || |STFT(clip)| ||_F
# after 32 iterations on the first second of slt_00001, measured on CPU:
# 0.354 (flite16k) and 0.227 (short_window). Over the first second of five
# clips (slt_00001, 2, 3, 5, 7) they range 0.27-0.36 and 0.20-0.28: most of it
# is the pseudo-inverse's magnitude error (0.27-0.35 before any phase), which
# no phase can remove. A random phase with no iterations scores 0.62-0.72.
# Each limit is this clip's value plus about 0.045, room for another CPU's
# FFT rounding to change the phase the iterations settle on, far below this
# clip's random-phase scores (0.62 and 0.70).
SPECTRAL_CONVERGENCE_LIMIT = {"flite16k": 0.40, "short_window": 0.27}
# Mean |log-mel of the output - input log-mel| over all frames and bands:
# 0.171 and 0.158 measured (0.16-0.19 over the five clips; 0.63-0.77 for the
# random-phase output). The limit is above all five clips and about a third
# of the random-phase error.
REANALYSIS_LIMIT = 0.21


def audio_config(geometry):
    return AudioConfig(**GEOMETRIES[geometry])


@functools.cache
def speech(seconds=1.0, clip="slt_00001"):
    """The first `seconds` of a sample clip, loaded as `mmae prepare` loads it."""
    waveform = load_clip(os.path.join(WAVS, clip + ".ogg"), AudioConfig(sample_rate=16000))
    return waveform[: int(seconds * 16000)]


def log_mel_of(waveform, geometry):
    return MelSpectrogram(**GEOMETRIES[geometry])(np.atleast_2d(waveform)).numpy()


def spectral_convergence(vocoder, waveform, clip):
    """Against the clip's own STFT magnitude, both with the analysis framing."""
    target = np.abs(vocoder.stft(clip[np.newaxis]).numpy())
    rebuilt = np.abs(vocoder.stft(np.atleast_2d(waveform)).numpy())
    return np.linalg.norm(rebuilt - target) / np.linalg.norm(target)


@functools.cache
def reconstruction(geometry):
    """(vocoder, clip, log_mel, output) for one second of speech, 32 iterations."""
    vocoder = vocoder_from_config(audio_config(geometry))
    clip = speech()
    log_mel = log_mel_of(clip, geometry)
    return vocoder, clip, log_mel, vocoder(log_mel).numpy()


def random_phase_baseline(vocoder, log_mel):
    """The pseudo-inverse magnitude with a uniform random phase and no iterations."""
    magnitude = vocoder.linear_magnitude(log_mel).numpy()
    phase = np.random.default_rng(0).uniform(0.0, 2.0 * np.pi, magnitude.shape)
    return vocoder.inverse_stft(magnitude * np.exp(1j * phase).astype(np.complex64)).numpy()


@pytest.mark.parametrize("geometry", sorted(GEOMETRIES))
@pytest.mark.parametrize("num_samples", [4000, 4100])
def test_output_length_is_frames_minus_one_hops(geometry, num_samples):
    frame_step = GEOMETRIES[geometry]["frame_step"]
    vocoder = vocoder_from_config(audio_config(geometry), num_iterations=2)
    noise = np.random.default_rng(0).uniform(-0.5, 0.5, (2, num_samples)).astype(np.float32)
    log_mel = log_mel_of(noise, geometry)
    frames = frame_count(num_samples, frame_step)
    assert log_mel.shape == (2, frames, 80)

    waveforms = vocoder(log_mel)
    assert waveforms.dtype == tf.float32
    assert waveforms.shape == (2, (frames - 1) * frame_step)
    assert vocoder.samples_for_frames(frames) == (frames - 1) * frame_step
    # The clip comes back cut to whole hops: at most frame_step - 1 samples short.
    assert 0 <= num_samples - vocoder.samples_for_frames(frames) < frame_step
    assert vocoder.compute_output_shape((2, frames, 80)) == (2, (frames - 1) * frame_step)
    assert vocoder.compute_output_shape((None, None, 80)) == (None, None)
    # Unbatched input, and lengths as a tensor.
    assert vocoder(log_mel[0]).shape == ((frames - 1) * frame_step,)
    lengths = vocoder.samples_for_frames(tf.constant([frames, 1, 0]))
    np.testing.assert_array_equal(lengths.numpy(), [(frames - 1) * frame_step, 0, 0])
    assert vocoder.samples_for_frames(0) == 0


@pytest.mark.parametrize("geometry", sorted(GEOMETRIES))
def test_stft_is_the_mel_layers_and_inverts_exactly(geometry):
    """The phase is estimated on the framing the features were made with."""
    vocoder = vocoder_from_config(audio_config(geometry), num_iterations=0)
    clip = speech(0.5)[np.newaxis]
    stfts = vocoder.stft(clip)
    matrix = mel_weight_matrix(80, 513, 16000, 0.0, 8000.0)
    log_mel = np.log(np.maximum(np.abs(stfts.numpy()) @ matrix.numpy(), 1e-5))
    np.testing.assert_allclose(log_mel, log_mel_of(clip, geometry), atol=1e-5)  # 9.5e-7 measured
    # Least-squares inverse, exact at both ends too (the window sums are those
    # of the frames that really overlap each sample).
    samples = vocoder.samples_for_frames(stfts.shape[1])
    # 3.0e-7 measured: float32 FFT rounding on samples below 1.
    np.testing.assert_allclose(vocoder.inverse_stft(stfts).numpy(), clip[:, :samples], atol=1e-5)


def test_eager_graph_and_xla_agree_with_dynamic_frames():
    vocoder = vocoder_from_config(audio_config("flite16k"), num_iterations=8)
    signature = [tf.TensorSpec([None, None, 80], tf.float32), tf.TensorSpec([None], tf.int32)]
    graph = tf.function(vocoder, input_signature=signature)
    xla = tf.function(vocoder, input_signature=signature, jit_compile=True)
    for seconds in (0.3, 0.5):
        log_mel = log_mel_of(np.stack([speech(seconds), speech(seconds, "slt_00002")]), "flite16k")
        num_frames = tf.constant([log_mel.shape[1] - 5, log_mel.shape[1]])
        eager = vocoder(log_mel, num_frames=num_frames).numpy()
        # Equal when measured: the same kernels in a graph.
        np.testing.assert_allclose(graph(log_mel, num_frames).numpy(), eager, atol=1e-5)
        # XLA fuses and reorders float ops; where a bin's complex estimate is
        # near zero its new phase is decided by rounding, so the outputs drift
        # apart a little with every iteration: 1.6e-4 of the signal's norm
        # after one, 3.0e-4 and 9.5e-4 after 8 (the 0.3 s and 0.5 s batches
        # here), 3e-3 after 32 (measured on CPU). 5e-3 is five times the
        # largest here; a wrong output (e.g. another item's) is off by ~1.
        compiled = xla(log_mel, num_frames).numpy()
        assert np.linalg.norm(compiled - eager) / np.linalg.norm(eager) < 5e-3
    # Variable-length input does not retrace.
    assert graph.experimental_get_tracing_count() == 1
    assert xla.experimental_get_tracing_count() == 1


def test_padded_item_in_a_batch_sounds_as_it_does_alone():
    vocoder = vocoder_from_config(audio_config("flite16k"))
    short = log_mel_of(speech(0.5), "flite16k")[0]
    long = log_mel_of(speech(0.75, "slt_00002"), "flite16k")[0]
    # Zero padding is a loud log-mel (mel = 1): it must be ignored.
    batch = np.zeros((2, len(long), 80), np.float32)
    batch[0, : len(short)], batch[1] = short, long
    num_frames = tf.constant([len(short), len(long)])
    waveforms = vocoder(batch, num_frames=num_frames).numpy()
    samples = vocoder.samples_for_frames(len(short))

    alone = vocoder(short[np.newaxis]).numpy()[0]
    # No edge effect: the padded frames get zero magnitude, each item's
    # overlap normalisation counts only its own frames, and its samples past
    # its length are held at zero every iteration, exactly as the end of an
    # unpadded clip is. The tolerance is only for FFT rounding that may
    # depend on the batch size on other CPUs (eagerly here they are equal).
    np.testing.assert_allclose(waveforms[0, :samples], alone, atol=1e-5)
    np.testing.assert_array_equal(waveforms[0, samples:], 0.0)
    np.testing.assert_allclose(waveforms[1], vocoder(long[np.newaxis]).numpy()[0], atol=1e-5)
    # Without the lengths the padding leaks into the item's last frames and,
    # through the iterations, into its phase everywhere: 0.115 of the norm
    # measured, against 0 (to 1e-5) with them; 0.05 splits the two.
    unmasked = vocoder(batch).numpy()[0, :samples]
    assert np.linalg.norm(unmasked - alone) / np.linalg.norm(alone) > 0.05


@pytest.mark.parametrize("geometry", sorted(GEOMETRIES))
def test_spectral_convergence_on_speech(geometry):
    vocoder, clip, log_mel, output = reconstruction(geometry)
    convergence = spectral_convergence(vocoder, output, clip)
    baseline = spectral_convergence(vocoder, random_phase_baseline(vocoder, log_mel), clip)
    assert convergence < SPECTRAL_CONVERGENCE_LIMIT[geometry]
    # Measured ratios: 0.57 (flite16k) and 0.32 (short_window); 0.7 lets the
    # first rise by the limits' margin above (0.045 / 0.62 = 0.07).
    assert convergence < 0.7 * baseline


@pytest.mark.parametrize("geometry", sorted(GEOMETRIES))
def test_reanalysed_output_is_close_to_the_input_log_mel(geometry):
    vocoder, _, log_mel, output = reconstruction(geometry)
    reanalysed = log_mel_of(output, geometry)
    assert reanalysed.shape == log_mel.shape  # (frames - 1) hops give the frames back
    assert np.mean(np.abs(reanalysed - log_mel)) < REANALYSIS_LIMIT
    random_phase = log_mel_of(random_phase_baseline(vocoder, log_mel), geometry)
    assert np.mean(np.abs(random_phase - log_mel)) > 2 * REANALYSIS_LIMIT


def test_momentum_speeds_up_convergence_from_the_true_magnitude():
    """Griffin-Lim alone, from the clip's true magnitude (no mel inversion)."""
    config = audio_config("flite16k")
    clip = speech()
    magnitude = np.abs(vocoder_from_config(config).stft(clip[np.newaxis]).numpy())

    def convergence(**kwargs):
        vocoder = vocoder_from_config(config, **kwargs)
        return spectral_convergence(vocoder, vocoder.griffin_lim(magnitude), clip)

    # Measured: 0.095 with momentum 0.99 against 0.160 without (16
    # iterations, a ratio of 0.59); 0.031 after 32, against 0.084 without
    # momentum. The bounds allow about a quarter more (0.75 ratio) and twice
    # the error (0.06), still below plain Griffin-Lim's 0.084.
    assert convergence(num_iterations=16) < 0.75 * convergence(num_iterations=16, momentum=0.0)
    assert convergence(num_iterations=32) < 0.06


def test_pseudo_inverse_magnitude_is_non_negative():
    vocoder = vocoder_from_config(audio_config("flite16k"))
    speech_log_mel = log_mel_of(speech(0.5), "flite16k")
    random_log_mel = np.random.default_rng(1).uniform(np.log(1e-5), 3.0, (2, 20, 80))
    for log_mel in (speech_log_mel, random_log_mel.astype(np.float32)):
        mel = np.exp(log_mel)
        # The plain least-squares solution does go negative (on the speech
        # clip, in 4.8% of bins, down to -25.6)...
        assert np.min(mel @ vocoder._mel_pseudo_inverse.numpy()) < 0
        # ...the magnitude the layer uses does not.
        magnitude = vocoder.linear_magnitude(log_mel).numpy()
        assert magnitude.shape == (*log_mel.shape[:2], 513)
        assert np.all(np.isfinite(magnitude)) and np.min(magnitude) > 0
    # It is the inverse of the right matrix: projected back onto the mel
    # bands it gives the speech mel again, but for the clipping (5.0% measured;
    # the bound is twice that).
    matrix = mel_weight_matrix(80, 513, 16000, 0.0, 8000.0).numpy()
    mel = np.exp(speech_log_mel)
    projected = vocoder.linear_magnitude(speech_log_mel).numpy() @ matrix
    assert np.linalg.norm(projected - mel) / np.linalg.norm(mel) < 0.1


def test_magnitude_power_sharpens_but_keeps_each_frames_level():
    config = audio_config("flite16k")
    log_mel = log_mel_of(speech(0.5), "flite16k")
    plain = vocoder_from_config(config).linear_magnitude(log_mel).numpy()
    sharp = vocoder_from_config(config, magnitude_power=1.5).linear_magnitude(log_mel).numpy()
    np.testing.assert_allclose(  # 2.1e-7 measured: float32 norms over 513 bins
        np.linalg.norm(sharp, axis=-1), np.linalg.norm(plain, axis=-1), rtol=1e-4
    )
    peakiness = lambda m: np.max(m, axis=-1) / np.mean(m, axis=-1)  # noqa: E731
    assert np.all(peakiness(sharp) > peakiness(plain))


def test_power_mel_features_are_inverted_too():
    config = AudioConfig(**GEOMETRIES["flite16k"], power=2.0)
    vocoder = vocoder_from_config(config)
    clip = speech(0.5)
    log_mel = MelSpectrogram.from_config_dataclass(config)(clip[np.newaxis])
    convergence = spectral_convergence(vocoder, vocoder(log_mel).numpy(), clip)
    # Measured 0.425, against 0.287 for magnitude features on the same half
    # second: the pseudo-inverse of a power mel is a worse magnitude estimate
    # (0.415 before any phase, against 0.273). Without the square root it
    # would be about 116. The limit is 0.045 above, as the limits at the top.
    assert convergence < 0.47
    # 0.69 of the random-phase score measured (0.425 / 0.613); 0.8 allows the
    # same 0.07 rise as the ratio bound above.
    assert convergence < 0.8 * spectral_convergence(
        vocoder, random_phase_baseline(vocoder, log_mel), clip
    )


def test_config_round_trip_and_keras_save(tmp_path):
    vocoder = GriffinLim(
        **GEOMETRIES["short_window"],
        mel_scale="htk",
        power=2.0,
        num_iterations=3,
        momentum=0.5,
        magnitude_power=1.3,
        name="vocoder",
    )
    config = vocoder.get_config()
    restored = GriffinLim.from_config(config)
    assert restored.get_config() == config
    arguments = set(GEOMETRIES["short_window"]) | {
        "mel_scale",
        "power",
        "num_iterations",
        "momentum",
        "magnitude_power",
    }
    for name in arguments:
        assert config[name] == getattr(restored, name) == getattr(vocoder, name)

    model = keras.Sequential([keras.Input(shape=(None, 80)), vocoder])
    log_mel = log_mel_of(speech(0.3), "short_window")
    expected = model(log_mel).numpy()
    path = str(tmp_path / "vocoder.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.layers[-1], GriffinLim)
    np.testing.assert_allclose(loaded(log_mel).numpy(), expected, atol=1e-6)  # equal measured


def test_exported_in_a_saved_model_with_variable_length_input(tmp_path):
    vocoder = vocoder_from_config(audio_config("flite16k"), num_iterations=2)
    module = tf.Module()
    module.vocoder = vocoder
    module.synthesize = tf.function(
        lambda log_mel, num_frames: vocoder(log_mel, num_frames=num_frames),
        input_signature=[
            tf.TensorSpec([None, None, 80], tf.float32),
            tf.TensorSpec([None], tf.int32),
        ],
    )
    tf.saved_model.save(module, str(tmp_path / "saved"))
    loaded = tf.saved_model.load(str(tmp_path / "saved"))
    for seconds in (0.2, 0.45):
        log_mel = log_mel_of(speech(seconds), "flite16k")
        num_frames = tf.constant([log_mel.shape[1]])
        np.testing.assert_allclose(
            loaded.synthesize(log_mel, num_frames).numpy(),
            vocoder(log_mel, num_frames=num_frames).numpy(),
            atol=1e-5,  # equal when measured: the same kernels in a graph
        )


def test_float32_under_mixed_precision():
    with global_dtype_policy("mixed_float16"):
        vocoder = vocoder_from_config(audio_config("flite16k"), num_iterations=2)
        assert vocoder.compute_dtype == "float32"
        log_mel = log_mel_of(speech(0.3), "flite16k")
        waveform = vocoder(tf.constant(log_mel, tf.float16))
        assert waveform.dtype == tf.float32
        expected = vocoder(log_mel.astype(np.float16).astype(np.float32)).numpy()
        # Equal when measured: the layer casts its input to float32 first.
        np.testing.assert_allclose(waveform.numpy(), expected, atol=1e-6)


def test_vocoder_from_config():
    config = AudioConfig(**GEOMETRIES["short_window"])
    vocoder = vocoder_from_config(config, num_iterations=7)
    assert isinstance(vocoder, GriffinLim) and isinstance(vocoder, Vocoder)
    assert "griffin_lim" in VOCODERS
    assert (vocoder.sample_rate, vocoder.frame_step, vocoder.frame_length) == (16000, 200, 800)
    assert (vocoder.num_iterations, vocoder.mel_scale, vocoder.power) == (7, "slaney", 1.0)
    with pytest.raises(ValueError, match="Unknown vocoder"):
        vocoder_from_config(config, kind="wavenet")
    with pytest.raises(ValueError, match="center=True"):
        vocoder_from_config(AudioConfig(center=False))


@pytest.mark.parametrize(
    "overrides",
    [
        {"fft_length": 1023},
        {"frame_length": 2048},
        {"frame_step": 1024},
        {"mel_scale": "bark"},
        {"momentum": -0.1},
        {"num_iterations": -1},
        {"magnitude_power": 0.0},
    ],
)
def test_rejects_bad_arguments(overrides):
    with pytest.raises(ValueError):
        GriffinLim(**{**GEOMETRIES["flite16k"], **overrides})
