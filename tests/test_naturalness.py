"""mmae.evaluation.naturalness: DNSMOS ranks recordings above degraded copies of them."""

import sys

import numpy as np
import pytest

from conftest import sample_rows

pytest.importorskip("speechmos")
pytest.importorskip("onnxruntime")

from mmae.evaluation import Naturalness  # noqa: E402

NUM_CLIPS = 4
NOISE_SNR_DB = 5.0


@pytest.fixture(scope="module")
def naturalness():
    return Naturalness()


@pytest.fixture(scope="module")
def audio_config():
    from mmae.config import Config

    return Config.load("flite16k").audio


@pytest.fixture(scope="module")
def recordings(audio_config):
    from mmae.audio.io import load_clip

    return [load_clip(path, audio_config) for _, _, path in sample_rows(NUM_CLIPS)]


def _griffin_lim(waveforms, audio_config):
    """Copy-synthesis: each clip's true log-mel through Griffin-Lim."""
    import tensorflow as tf

    from mmae.audio.features import MelSpectrogram
    from mmae.vocoders import vocoder_from_config

    features = MelSpectrogram.from_config_dataclass(audio_config)
    vocoder = vocoder_from_config(audio_config)
    return [vocoder(features(tf.constant(w[None])))[0].numpy() for w in waveforms]


def _with_noise(waveforms, snr_db, seed=0):
    """White noise added to each clip at `snr_db` below its mean power."""
    rng = np.random.default_rng(seed)
    noisy = []
    for waveform in waveforms:
        noise = rng.standard_normal(len(waveform))
        noise *= np.sqrt(np.mean(waveform**2) / np.mean(noise**2) / 10 ** (snr_db / 10))
        noisy.append((waveform + noise).astype(np.float32))
    return noisy


def _mean_scores(naturalness, waveforms):
    scores = [naturalness.score(w, 16000) for w in waveforms]
    return {key: float(np.mean([s[key] for s in scores])) for key in scores[0]}


def test_recordings_rank_above_griffin_lim_and_noise(naturalness, recordings, audio_config):
    original = _mean_scores(naturalness, recordings)
    griffin_lim = _mean_scores(naturalness, _griffin_lim(recordings, audio_config))
    noisy = _mean_scores(naturalness, _with_noise(recordings, NOISE_SNR_DB))
    print(f"\nDNSMOS means of {NUM_CLIPS} sample clips:")
    for name, scores in (("recordings", original), ("griffin_lim", griffin_lim), ("noisy", noisy)):
        print(f"  {name:<12}" + " ".join(f"{key} {value:.2f}" for key, value in scores.items()))
    # Measured means (P.808, SIG, BAK, OVRL): recordings 3.13 3.05 3.78 2.71,
    # Griffin-Lim 2.66 1.75 2.69 1.51, noise at 5 dB SNR 2.32 1.59 1.20 1.21.
    # A margin of half a point fails a scorer that cannot tell them apart.
    assert original["ovrl"] > griffin_lim["ovrl"] + 0.5
    assert original["ovrl"] > noisy["ovrl"] + 0.5
    assert original["mos_p808"] > max(griffin_lim["mos_p808"], noisy["mos_p808"])
    # What each degradation hurts most: Griffin-Lim's phase the speech (SIG),
    # the noise the background (BAK).
    assert original["sig"] > griffin_lim["sig"] + 0.5
    assert original["bak"] > noisy["bak"] + 1.0
    for scores in (original, griffin_lim, noisy):
        assert all(1.0 <= value <= 5.0 for value in scores.values())


def test_scores_do_not_depend_on_level_or_rate(naturalness, recordings):
    import soxr

    # slt_00002: 2.4 s, repeated to 9.6 s, so a single DNSMOS window.
    waveform = recordings[1]
    scores = naturalness.score(waveform, 16000)
    assert set(scores) == {"mos_p808", "sig", "bak", "ovrl"}
    for key, value in naturalness.score(0.3 * waveform, 16000).items():
        assert value == pytest.approx(scores[key], abs=1e-3)
    resampled = soxr.resample(waveform, 16000, 22050, quality="HQ")
    for key, value in naturalness.score(resampled, 22050).items():
        assert value == pytest.approx(scores[key], abs=0.05)


def test_empty_and_silent_audio_have_no_scores(naturalness):
    expected = {"mos_p808": None, "sig": None, "bak": None, "ovrl": None}
    assert naturalness.score(np.zeros(0, np.float32), 16000) == expected
    assert naturalness.score(np.zeros(8000, np.float32), 16000) == expected
    with pytest.raises(ValueError, match="1-D"):
        naturalness.score(np.zeros((2, 100), np.float32), 16000)


def test_missing_packages_name_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "speechmos", None)
    with pytest.raises(ImportError, match=r"mmae\[eval\]"):
        Naturalness()
