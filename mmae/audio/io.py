"""Reading and writing audio files, with no TensorFlow at import.

This module runs in the dataset preparer's worker processes, which decode
thousands of clips and must stay light: TensorFlow is imported only to reach
`gs://` paths (through `tf.io.gfile`), and librosa only when a clip needs
resampling, trimming or a fallback decoder.

Every problem with a clip raises `AudioError` with a short message that names
the file, so the preparer can skip the clip and record why.

Example:

>>> waveform = load_audio("clip.flac", 22050, trim_silence=True, peak_normalize=True)
>>> save_audio("clip.wav", waveform, 22050)
"""

import importlib.util
import io
import os
import tempfile
import typing
import warnings

import numpy as np
import soundfile


class AudioInfo(typing.NamedTuple):
    sample_rate: int
    frames: int
    channels: int
    duration: float


class AudioError(ValueError):
    """A clip that cannot be used: missing, unreadable, empty, silent or at the wrong rate."""


def load_audio(
    path,
    sample_rate,
    *,
    resample=True,
    allow_upsampling=False,
    trim_silence=False,
    trim_top_db=40.0,
    peak_normalize=False,
    peak_level=0.95,
):
    """Reads an audio file as a float32 mono waveform at `sample_rate`.

    Decoders are tried in order: soundfile (WAV, FLAC, OGG, MP3 and the other
    libsndfile formats); librosa.load, which falls back to audioread; and
    tensorflow-io, only if it is installed *and* its ops load. tensorflow-io is
    strictly optional because its wheels are built against one TensorFlow
    release: 0.37.1 imports beside TF 2.21 but its custom ops fail to load
    with undefined symbols, so any exception from importing or first using it
    just means "not available".

    Args:
        path: a local path or a `gs://` URL.
        sample_rate: the rate the waveform is returned at, in Hz.
        resample: resample other rates (soxr_hq); if False, a different rate
            is an error.
        allow_upsampling: accept a source rate below `sample_rate`. Off by
            default because upsampling cannot restore the missing bandwidth.
        trim_silence: cut leading and trailing audio quieter than
            `trim_top_db` below the peak (`librosa.effects.trim`).
        trim_top_db: threshold for `trim_silence`, in dB below the peak.
        peak_normalize: scale so the largest absolute sample is `peak_level`.
        peak_level: target peak for `peak_normalize`.

    Returns:
        A 1-D float32 NumPy array.

    Raises:
        AudioError: the file is missing, unreadable, empty or silent, or its
            rate is not acceptable.
    """
    path = os.fspath(path)
    name = os.path.basename(path)
    waveform, source_rate = _decode(path)
    if waveform.size == 0:
        raise AudioError(f"{name}: empty audio (0 samples)")
    if not np.all(np.isfinite(waveform)):
        raise AudioError(f"{name}: non-finite samples (NaN or inf)")
    # Averaging, not summing, keeps a downmix of full-scale channels in [-1, 1].
    waveform = waveform.mean(axis=1) if waveform.ndim == 2 else waveform
    # Before the rate checks: a silent clip is useless at any rate.
    if not np.any(waveform):
        raise AudioError(f"{name}: silent audio (all samples are zero)")
    if source_rate != sample_rate:
        if not resample:
            raise AudioError(
                f"{name}: wrong sample rate: {source_rate} Hz, expected {sample_rate} Hz"
            )
        if source_rate < sample_rate and not allow_upsampling:
            raise AudioError(
                f"{name}: sample rate {source_rate} Hz is below {sample_rate} Hz "
                "and upsampling is not allowed"
            )
        import librosa

        waveform = librosa.resample(
            waveform, orig_sr=source_rate, target_sr=sample_rate, res_type="soxr_hq"
        )
    if trim_silence:
        import librosa

        waveform, _ = librosa.effects.trim(waveform, top_db=trim_top_db)
        if waveform.size == 0 or not np.any(waveform):
            raise AudioError(f"{name}: silent audio after trimming")
    if peak_normalize:
        peak = np.max(np.abs(waveform))
        if peak == 0:  # a resampled clip of denormals can round to zeros
            raise AudioError(f"{name}: silent audio (all samples are zero)")
        waveform = waveform * (peak_level / peak)
    return np.ascontiguousarray(waveform, dtype=np.float32)


def load_clip(path, audio_config):
    """`load_audio` with every loading setting taken from an `AudioConfig`.

    The one way `mmae prepare`, benchmarks and evaluation read a clip, so
    they always agree on rate, trimming and normalization.
    """
    return load_audio(
        path,
        audio_config.sample_rate,
        resample=audio_config.resample,
        allow_upsampling=audio_config.allow_upsampling,
        trim_silence=audio_config.trim_silence,
        trim_top_db=audio_config.trim_top_db,
        peak_normalize=audio_config.peak_normalize,
        peak_level=audio_config.peak_level,
    )


def save_audio(path, waveform, sample_rate):
    """Writes float32 audio in [-1, 1] as 16-bit PCM WAV or FLAC (chosen by extension).

    Args:
        path: a local path or `gs://` URL ending in `.wav` or `.flac`.
        waveform: `[samples]` or `[samples, channels]`; values outside
            [-1, 1] are clipped rather than wrapped.
        sample_rate: in Hz.
    """
    path = os.fspath(path)
    extension = os.path.splitext(path)[1].lower()
    formats = {".wav": "WAV", ".flac": "FLAC"}
    if extension not in formats:
        raise ValueError(f"{path}: cannot save audio as {extension!r}; use .wav or .flac")
    waveform = np.clip(np.asarray(waveform, dtype=np.float32), -1.0, 1.0)
    if _is_remote(path):
        buffer = io.BytesIO()
        soundfile.write(buffer, waveform, sample_rate, format=formats[extension], subtype="PCM_16")
        _gfile_write(path, buffer.getvalue())
        return
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    soundfile.write(path, waveform, sample_rate, format=formats[extension], subtype="PCM_16")


def audio_info(path):
    """Reads only the header: `AudioInfo(sample_rate, frames, channels, duration)`.

    Formats libsndfile cannot parse fall back to audioread, whose frame count
    is derived from its duration.

    Raises:
        AudioError: the file is missing or its header cannot be read.
    """
    path = os.fspath(path)
    name = os.path.basename(path)
    if _is_remote(path):
        # soundfile seeks and reads through the GFile, so only the header is
        # fetched for most formats.
        import tensorflow as tf

        if not tf.io.gfile.exists(path):
            raise AudioError(f"{name}: file not found")
        try:
            with tf.io.gfile.GFile(path, "rb") as f:
                info = soundfile.info(f)
        except Exception as error:
            raise AudioError(f"{name}: unreadable audio ({_first_line(error)})") from error
        return AudioInfo(info.samplerate, info.frames, info.channels, info.duration)
    if not os.path.isfile(path):
        raise AudioError(f"{name}: file not found")
    try:
        info = soundfile.info(path)
        return AudioInfo(info.samplerate, info.frames, info.channels, info.duration)
    except Exception as error:
        first_error = error
    try:
        import audioread

        with audioread.audio_open(path) as f:
            frames = int(round(f.duration * f.samplerate))
            return AudioInfo(f.samplerate, frames, f.channels, f.duration)
    except Exception:
        pass
    raise AudioError(f"{name}: unreadable audio ({_first_line(first_error)})") from first_error


def _decode(path):
    """Returns (`[samples]` or `[samples, channels]` float32, sample rate)."""
    name = os.path.basename(path)
    if _is_remote(path):
        return _decode_remote(path)
    if not os.path.isfile(path):
        raise AudioError(f"{name}: file not found")
    try:
        waveform, rate = soundfile.read(path, dtype="float32", always_2d=True)
        return waveform, rate
    except Exception as error:
        first_error = error
    try:
        import librosa

        with warnings.catch_warnings():
            # librosa warns that soundfile failed and that audioread is
            # deprecated; both are the expected path here.
            warnings.simplefilter("ignore")
            waveform, rate = librosa.load(path, sr=None, mono=False, dtype=np.float32)
        # librosa puts channels first.
        return (waveform.T if waveform.ndim == 2 else waveform), rate
    except Exception:
        pass
    decoded = _decode_with_tensorflow_io(path)
    if decoded is not None:
        return decoded
    raise AudioError(f"{name}: unreadable audio ({_first_line(first_error)})") from first_error


def _decode_remote(path):
    import tensorflow as tf

    name = os.path.basename(path)
    if not tf.io.gfile.exists(path):
        raise AudioError(f"{name}: file not found")
    with tf.io.gfile.GFile(path, "rb") as f:
        data = f.read()
    try:
        waveform, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
        return waveform, rate
    except Exception:
        pass
    # audioread and tensorflow-io need a real file.
    suffix = os.path.splitext(path)[1]
    with tempfile.TemporaryDirectory() as directory:
        local = os.path.join(directory, "clip" + suffix)
        with open(local, "wb") as f:
            f.write(data)
        try:
            return _decode(local)
        except AudioError as error:
            raise AudioError(str(error).replace(os.path.basename(local), name, 1)) from error


def _decode_with_tensorflow_io(path):
    """Decodes with tensorflow-io if it works here, else returns None."""
    # Checked first so that a missing tensorflow-io never costs a TF import.
    if importlib.util.find_spec("tensorflow_io") is None:
        return None
    try:
        import tensorflow as tf
        import tensorflow_io as tfio

        audio = tfio.audio.AudioIOTensor(path)
        waveform = tf.cast(audio.to_tensor(), tf.float32).numpy()
        if audio.dtype == tf.int16:
            waveform = waveform / 32768.0
        elif audio.dtype == tf.int32:
            waveform = waveform / 2147483648.0
        return waveform.astype(np.float32), int(audio.rate.numpy())
    except Exception:
        # Not installed, its ops failed to load against this TensorFlow, or it
        # cannot read the file either.
        return None


def _is_remote(path):
    # gs://, s3://, ram:// ...: anything tf.io.gfile has a filesystem for.
    return "://" in path


def _gfile_write(path, data):
    import tensorflow as tf

    with tf.io.gfile.GFile(path, "wb") as f:
        f.write(data)


def _first_line(error):
    # soundfile's message repeats the full path; its error_string is just the cause.
    text = getattr(error, "error_string", None) or str(error)
    lines = text.strip().splitlines()
    return lines[0].rstrip(".") if lines else type(error).__name__
