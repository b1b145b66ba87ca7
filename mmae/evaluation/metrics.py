"""Pure metric functions: error rates, mel-cepstral distortion, F0 errors and mel L1.

Nothing here loads a model or touches files; every function takes arrays or
strings and returns numbers, so each can be checked on small inputs.

Error rates: `jiwer` over texts normalized by `score_text` on both sides.

Mel-cepstral distortion (Kubichek 1993), as ESPnet and most TTS papers compute
it: WORLD spectral envelopes (`pyworld.harvest` F0 from 71 to 800 Hz,
`pyworld.cheaptrick`, 5 ms frames) turned into mel-cepstra exactly as SPTK's
`sp2mc` does (real cepstrum of the log power spectrum, then `freqt`
frequency warping with all-pass constant `alpha`), coefficients 1..order
compared (c0, the energy, is left out), frames paired by dynamic time
warping on those coefficients:

    MCD = mean over aligned frame pairs of 10 / ln 10 * sqrt(2 * sum_d (c_d - c'_d)^2)   [dB]

`mel_cepstrum_settings` gives SPTK's recommended order and alpha per sample
rate (order 23, alpha 0.42 at 16 kHz, 34 and 0.45 at 22.05 kHz).

F0: RMSE in Hz (and in cents) over the DTW-aligned frame pairs voiced in
both, and the voicing decision error: the fraction of aligned pairs whose
voiced/unvoiced decisions differ.

Example (slt_00001 of data/sample against its log-mel through the flite16k
preset's Griffin-Lim vocoder):

>>> reference = world_features(recording, 16000)
>>> synthesized = world_features(vocoded, 16000)
>>> compare_features(reference, synthesized)
{'mcd': 4.53, 'f0_rmse_hz': 18.2, 'f0_rmse_cents': 194.9, 'voicing_error': 0.106, 'num_frames': 434}

MCD counts every aligned frame, pauses and quiet ones included, so it is
sensitive to noise: white noise 40 dB below the peak of slt_00001 gives
13.0 dB against the clean clip, more than a different sentence (9.1 dB).
"""

import dataclasses
import functools
import math
import re

import numpy as np

__all__ = [
    "WorldFeatures",
    "character_error_rate",
    "compare_features",
    "dtw_path",
    "f0_errors",
    "frequency_warp",
    "mel_cepstral_distortion",
    "mel_cepstrum_settings",
    "mel_l1",
    "score_text",
    "spectrum_to_mel_cepstrum",
    "word_error_rate",
    "world_features",
]

# -- error rates -------------------------------------------------------------

_NOT_A_WORD_CHARACTER = re.compile(r"[^a-z']+")


def score_text(text):
    """Text as it is scored: `normalize_text`, lowercase, only letters and apostrophes.

    The same function is applied to references and to recognizer output, so
    that "Dr. Smith paid $5." and "doctor smith paid five dollars" score as
    equal; punctuation and hyphens become word breaks.
    """
    return score_texts([text])[0]


def score_texts(texts):
    """`score_text` of every text, normalized in one call of the text frontend."""
    from mmae.text.normalize import normalize_texts

    scored = []
    for normalized in normalize_texts(texts):
        words = _NOT_A_WORD_CHARACTER.sub(" ", normalized.lower()).split()
        scored.append(" ".join(word.strip("'") for word in words if word.strip("'")))
    return scored


def word_error_rate(references, hypotheses, normalize=True):
    """Corpus-level word error rate: total edits over total reference words.

    Args:
        references: a string or a list of strings.
        hypotheses: as many hypotheses (an empty string counts every
            reference word as deleted).
        normalize: pass both sides through `score_text` first.
    """
    import jiwer

    references, hypotheses = _scored_pair(references, hypotheses, normalize)
    return float(jiwer.wer(references, hypotheses))


def character_error_rate(references, hypotheses, normalize=True):
    """Corpus-level character error rate (spaces count as characters), as `word_error_rate`."""
    import jiwer

    references, hypotheses = _scored_pair(references, hypotheses, normalize)
    return float(jiwer.cer(references, hypotheses))


def _scored_pair(references, hypotheses, normalize):
    references = [references] if isinstance(references, str) else list(references)
    hypotheses = [hypotheses] if isinstance(hypotheses, str) else list(hypotheses)
    if len(references) != len(hypotheses):
        raise ValueError(
            f"{len(references)} references but {len(hypotheses)} hypotheses; they must pair up."
        )
    if not references:
        raise ValueError("No sentences to score.")
    if normalize:
        references = score_texts(references)
        hypotheses = score_texts(hypotheses)
    empty = [i for i, text in enumerate(references) if not text.strip()]
    if empty:
        raise ValueError(f"References {empty} have no words to score once normalized.")
    return references, hypotheses


# -- mel-cepstra -------------------------------------------------------------

# SPTK's recommended (order, alpha) for mel-cepstral analysis
# (sp-nitech.github.io/sptk, mgcep), the values ESPnet's MCD script uses.
_MEL_CEPSTRUM_SETTINGS = {
    8000: (13, 0.31),
    16000: (23, 0.42),
    22050: (34, 0.45),
    24000: (34, 0.46),
    44100: (39, 0.53),
    48000: (39, 0.55),
}


def mel_cepstrum_settings(sample_rate):
    """(order, alpha) of the mel-cepstrum for `sample_rate`.

    SPTK's table where it has the rate; otherwise order 24 and the alpha whose
    all-pass warping best fits the mel scale (the search of
    `pysptk.util.mcepalpha`).
    """
    if int(sample_rate) in _MEL_CEPSTRUM_SETTINGS:
        return _MEL_CEPSTRUM_SETTINGS[int(sample_rate)]
    return 24, _best_alpha(sample_rate)


def _best_alpha(sample_rate, num_points=1000):
    frequencies = np.arange(num_points) * (sample_rate / 2.0) / num_points
    mel = np.log1p(frequencies / 1000.0)
    mel /= mel[-1]
    omega = np.arange(num_points) * np.pi / num_points
    best, best_distance = 0.0, math.inf
    for alpha in np.arange(0.0, 1.0, 0.001):
        warped = np.arctan2(
            (1 - alpha**2) * np.sin(omega), (1 + alpha**2) * np.cos(omega) - 2 * alpha
        )
        warped = np.where(warped < 0, warped + np.pi, warped)
        warped /= warped[-1]
        distance = np.sqrt(np.mean((mel - warped) ** 2))
        if distance < best_distance:
            best, best_distance = float(alpha), distance
    return round(best, 3)


def spectrum_to_mel_cepstrum(power_spectrum, order, alpha):
    """Mel-cepstra `[..., order + 1]` of power spectra `[..., fft_length // 2 + 1]`.

    The same numbers as `pysptk.sp2mc` (checked against pysptk 1.0.1 to 1e-10):
    the real cepstrum of the log power spectrum with c0 halved, frequency
    warped by `frequency_warp`.
    """
    power_spectrum = np.asarray(power_spectrum, np.float64)
    cepstrum = np.fft.irfft(np.log(power_spectrum), axis=-1)
    cepstrum[..., 0] /= 2.0
    return frequency_warp(cepstrum, order, alpha)


def frequency_warp(cepstrum, order, alpha):
    """SPTK's `freqt`: cepstra `[..., n]` to all-pass-warped cepstra `[..., order + 1]`.

    `freqt` is linear in its input, so the recursion is run once on the
    identity to get the warping matrix (cached per shape and alpha) and every
    frame is then one matrix product.
    """
    cepstrum = np.asarray(cepstrum, np.float64)
    matrix = _warping_matrix(cepstrum.shape[-1], int(order), float(alpha))
    return cepstrum @ matrix


@functools.lru_cache(maxsize=8)
def _warping_matrix(input_length, order, alpha):
    # SPTK freqt.c: the input coefficients are fed from the last to the first
    # through a chain of first-order all-pass sections.
    basis = np.eye(input_length)
    beta = 1.0 - alpha * alpha
    state = np.zeros([input_length, order + 1])
    for i in range(input_length - 1, -1, -1):
        previous = state
        state = np.empty_like(previous)
        state[:, 0] = basis[:, i] + alpha * previous[:, 0]
        if order >= 1:
            state[:, 1] = beta * previous[:, 0] + alpha * previous[:, 1]
        for j in range(2, order + 1):
            state[:, j] = previous[:, j - 1] + alpha * (previous[:, j] - state[:, j - 1])
    state.setflags(write=False)
    return state


@dataclasses.dataclass(frozen=True)
class WorldFeatures:
    """Per-frame analysis of one waveform: `mel_cepstrum` [frames, order + 1], `f0` [frames] in Hz (0 = unvoiced)."""

    mel_cepstrum: np.ndarray
    f0: np.ndarray
    frame_period: float


def world_features(
    waveform,
    sample_rate,
    frame_period=5.0,
    f0_floor=71.0,
    f0_ceil=800.0,
    order=None,
    alpha=None,
):
    """WORLD analysis of a waveform: mel-cepstra and F0, one frame every `frame_period` ms.

    F0 is `pyworld.harvest` between `f0_floor` and `f0_ceil` Hz (WORLD's
    defaults; a lower floor finds sub-harmonics in Griffin-Lim speech); the envelope is `pyworld.cheaptrick` at its default FFT size;
    mel-cepstra are `spectrum_to_mel_cepstrum` with `mel_cepstrum_settings`
    unless `order`/`alpha` are given.

    Raises:
        ValueError: the waveform is shorter than two frames.
    """
    import pyworld

    waveform = np.ascontiguousarray(waveform, dtype=np.float64)
    if waveform.ndim != 1:
        raise ValueError(f"Expected a 1-D waveform, got shape {waveform.shape}.")
    if waveform.size < 2 * frame_period * sample_rate / 1000.0:
        raise ValueError(f"Waveform of {waveform.size} samples is too short to analyze.")
    default_order, default_alpha = mel_cepstrum_settings(sample_rate)
    order = default_order if order is None else order
    alpha = default_alpha if alpha is None else alpha
    f0, times = pyworld.harvest(
        waveform, sample_rate, f0_floor=f0_floor, f0_ceil=f0_ceil, frame_period=frame_period
    )
    envelope = pyworld.cheaptrick(waveform, f0, times, sample_rate)
    # Digital silence gives a zero envelope, whose log is -inf.
    envelope = np.maximum(envelope, 1e-16)
    return WorldFeatures(spectrum_to_mel_cepstrum(envelope, order, alpha), f0, frame_period)


# -- alignment and distances -------------------------------------------------


def dtw_path(reference, synthesized):
    """Dynamic time warping of two frame sequences `[frames, dims]` by Euclidean distance.

    Standard symmetric steps (diagonal, down, right; all of weight 1), the
    whole of both sequences aligned end to end.

    Returns:
        (reference_indices, synthesized_indices): int arrays of the path's
        frame pairs, from the first frames to the last.
    """
    import librosa
    from scipy.spatial.distance import cdist

    reference = np.atleast_2d(np.asarray(reference, np.float64))
    synthesized = np.atleast_2d(np.asarray(synthesized, np.float64))
    if not len(reference) or not len(synthesized):
        raise ValueError("Cannot align an empty sequence.")
    cost = cdist(reference, synthesized, "euclidean")
    _, path = librosa.sequence.dtw(C=cost, backtrack=True)
    path = path[::-1]
    return path[:, 0].astype(np.int64), path[:, 1].astype(np.int64)


_MCD_SCALE = 10.0 / math.log(10.0) * math.sqrt(2.0)


def mel_cepstral_distortion(reference, synthesized, path=None):
    """MCD in dB between mel-cepstra `[frames, order + 1]`, over coefficients 1..order.

    Args:
        reference, synthesized: mel-cepstra (column 0, the energy, is ignored).
        path: `(reference_indices, synthesized_indices)` frame pairs; by
            default `dtw_path` on coefficients 1..order. With equal-length
            inputs and `path=False`, frames are paired one to one.
    """
    reference = np.asarray(reference, np.float64)[:, 1:]
    synthesized = np.asarray(synthesized, np.float64)[:, 1:]
    if path is False:
        if len(reference) != len(synthesized):
            raise ValueError(
                f"Frame counts differ ({len(reference)} vs {len(synthesized)}); align with DTW."
            )
        path = (np.arange(len(reference)), np.arange(len(reference)))
    elif path is None:
        path = dtw_path(reference, synthesized)
    difference = reference[path[0]] - synthesized[path[1]]
    return float(np.mean(_MCD_SCALE * np.sqrt(np.sum(difference**2, axis=-1))))


def f0_errors(reference_f0, synthesized_f0, path):
    """F0 RMSE (Hz and cents) over pairs voiced in both, and the voicing decision error.

    Args:
        reference_f0, synthesized_f0: per-frame F0 in Hz, 0 where unvoiced.
        path: `(reference_indices, synthesized_indices)` frame pairs.

    Returns:
        {"f0_rmse_hz", "f0_rmse_cents", "voicing_error"}; the RMSEs are None
        when no pair is voiced in both.
    """
    reference = np.asarray(reference_f0, np.float64)[path[0]]
    synthesized = np.asarray(synthesized_f0, np.float64)[path[1]]
    reference_voiced, synthesized_voiced = reference > 0, synthesized > 0
    both = reference_voiced & synthesized_voiced
    errors = {"voicing_error": float(np.mean(reference_voiced != synthesized_voiced))}
    if not np.any(both):
        return {"f0_rmse_hz": None, "f0_rmse_cents": None, **errors}
    hertz = synthesized[both] - reference[both]
    cents = 1200.0 * np.log2(synthesized[both] / reference[both])
    return {
        "f0_rmse_hz": float(np.sqrt(np.mean(hertz**2))),
        "f0_rmse_cents": float(np.sqrt(np.mean(cents**2))),
        **errors,
    }


def compare_features(reference, synthesized):
    """MCD and F0 errors of `synthesized` against `reference` (`WorldFeatures`), on one DTW path.

    The path is found on mel-cepstral coefficients 1..order, so F0 is
    compared between frames that carry the same sounds.
    """
    path = dtw_path(reference.mel_cepstrum[:, 1:], synthesized.mel_cepstrum[:, 1:])
    return {
        "mcd": mel_cepstral_distortion(reference.mel_cepstrum, synthesized.mel_cepstrum, path),
        **f0_errors(reference.f0, synthesized.f0, path),
        "num_frames": len(path[0]),
    }


def mel_l1(reference_mel, synthesized_mel, align=True):
    """Mean absolute difference of log-mel frames `[frames, num_mels]`.

    With `align`, frames are paired by `dtw_path` on the log-mel frames
    themselves (needed when durations were predicted); otherwise the two
    must have the same number of frames.
    """
    reference = np.asarray(reference_mel, np.float64)
    synthesized = np.asarray(synthesized_mel, np.float64)
    if align:
        path = dtw_path(reference, synthesized)
        reference, synthesized = reference[path[0]], synthesized[path[1]]
    elif reference.shape != synthesized.shape:
        raise ValueError(f"Shapes differ: {reference.shape} vs {synthesized.shape}.")
    return float(np.mean(np.abs(reference - synthesized)))
