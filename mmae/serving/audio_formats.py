"""The response formats of `mmae serve`: WAV (whole or streamed), raw PCM, FLAC."""

import io
import struct

import numpy as np

# response_format -> media type. PCM is 16-bit signed little-endian mono.
MEDIA_TYPES = {"wav": "audio/wav", "pcm": "audio/pcm", "flac": "audio/flac"}
# Formats whose bytes can be sent sentence by sentence.
STREAMABLE = ("wav", "pcm")
_UNKNOWN_SIZE = 0xFFFFFFFF


def pcm16(audio):
    """float32 samples in [-1, 1] -> 16-bit little-endian PCM bytes."""
    samples = np.clip(np.asarray(audio, np.float32), -1.0, 1.0)
    return (samples * 32767.0).round().astype("<i2").tobytes()


def wav_header(sample_rate, num_samples=None):
    """A 44-byte WAV header for 16-bit mono PCM.

    `num_samples=None` writes the sizes as 0xFFFFFFFF, the convention for a
    WAV whose length is not known when it starts (a stream): browsers,
    ffmpeg and soundfile read it to the end of the data.
    """
    if num_samples is None:
        data_size = riff_size = _UNKNOWN_SIZE
    else:
        data_size = 2 * num_samples
        riff_size = 36 + data_size
    return (
        b"RIFF"
        + struct.pack("<I", riff_size)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, 2 * sample_rate, 2, 16)
        + b"data"
        + struct.pack("<I", data_size)
    )


def encode(audio, sample_rate, response_format):
    """A whole waveform as the bytes of `response_format`."""
    if response_format == "pcm":
        return pcm16(audio)
    if response_format == "wav":
        return wav_header(sample_rate, len(audio)) + pcm16(audio)
    if response_format == "flac":
        import soundfile

        buffer = io.BytesIO()
        soundfile.write(buffer, np.asarray(audio, np.float32), sample_rate, format="FLAC")
        return buffer.getvalue()
    raise ValueError(f"Unknown response format {response_format!r}.")
