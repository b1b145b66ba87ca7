"""The inverse of `MelSpectrogram`'s centred STFT, shared by every vocoder.

`MelSpectrogram` pads a waveform by `fft_length // 2` on both sides and
weights each `fft_length` frame by a periodic Hann window; frame `t` is
centred on sample `t * frame_step`. Inverting it means: synthesize each frame,
weight it by the same window, overlap-add, divide by the summed squared
windows (least-squares inverse, as `librosa.istft`), and keep the span from
the first frame centre to the last, `(frames - 1) * frame_step` samples.

Two ways to synthesize the frames:
- `tf.signal.inverse_stft` of a complex STFT (Griffin-Lim);
- `real_frames`: a matrix product with a fixed inverse-DFT basis, the window
  folded in. Real tensors only, so it runs under mixed precision, XLA and
  TFLite's builtin ops (which have no inverse FFT), at a cost that is small
  beside a network's (about a million multiply-adds per frame for 1024-point
  frames).

Overlap-add and slicing are written out in reshapes, pads, sums and slices
of explicit rank (`overlap_and_add`, `centre_span`) rather than with
`tf.signal.overlap_and_add` and `[..., a:b]`: the TFLite converter cannot
lower a strided slice whose ellipsis stands for no dimension at all, and
`tf.signal.overlap_and_add` slices that way on `[frames, frame_length]`.
"""

import math

import numpy as np
import tensorflow as tf


def inverse_dft_basis(window, fft_length):
    """`(real, imag)` bases `[bins, fft_length]` with the window folded in, float32.

    `real_part @ real + imag_part @ imag` of a one-sided spectrum `[..., bins]`
    is `window * irfft(spectrum)`: the windowed time frame.
    """
    bins = fft_length // 2 + 1
    k = np.arange(bins)[:, None]
    n = np.arange(fft_length)[None, :]
    angle = 2.0 * math.pi * k * n / fft_length
    # One-sided spectrum: every bin but DC and Nyquist stands for two.
    weight = np.full([bins, 1], 2.0 / fft_length)
    weight[0] = weight[-1] = 1.0 / fft_length
    window = np.asarray(window, np.float64)[None, :]
    real = weight * np.cos(angle) * window
    imag = -weight * np.sin(angle) * window
    return tf.constant(real, tf.float32), tf.constant(imag, tf.float32)


def overlap_and_add(frames, frame_step):
    """`tf.signal.overlap_and_add` of `[batch, frames, frame_length]`, in TFLite builtin ops.

    Frame `t` is added at sample `t * frame_step`; the result has
    `(frames - 1) * frame_step + frame_length` samples. `frame_length` must
    be static; it need not be a multiple of `frame_step`.

    Example:

    >>> overlap_and_add(tf.ones([1, 3, 4]), 2).numpy()
    array([[1., 1., 2., 2., 2., 2., 1., 1.]], dtype=float32)
    """
    if frames.shape.rank != 3 or frames.shape[2] is None:
        raise ValueError(
            f"overlap_and_add needs [batch, frames, frame_length] with a static frame_length, "
            f"got shape {frames.shape}."
        )
    batch, num_frames, frame_length = _dimension(frames, 0), _dimension(frames, 1), frames.shape[2]
    # Each frame is `segments` hops long (zero-padded up to a whole number of them).
    segments = -(-frame_length // frame_step)
    padding = segments * frame_step - frame_length
    if padding:
        frames = tf.pad(frames, [[0, 0], [0, 0], [0, padding]])
    # [batch, segments, frames, frame_step]: segment `r` of frame `t` belongs at hop `t + r`.
    parts = tf.reshape(frames, [batch, num_frames, segments, frame_step])
    parts = tf.transpose(parts, [0, 2, 1, 3])
    # Padded to `frames + segments` hops a row and read back in rows one hop
    # shorter, row `r` comes out shifted by `r` hops (what wraps round is padding).
    hops = num_frames + segments - 1
    parts = tf.pad(parts, [[0, 0], [0, 0], [0, segments], [0, 0]])
    parts = tf.reshape(parts, [batch, segments * (num_frames + segments), frame_step])
    parts = tf.reshape(parts[:, : segments * hops], [batch, segments, hops, frame_step])
    signal = tf.reshape(tf.reduce_sum(parts, axis=1), [batch, hops * frame_step])
    if padding:
        signal = signal[:, : hops * frame_step - padding]
    return signal


def overlap_normalizer(window, frame_step, frames, frame_mask=None):
    """`1 / sum_t window(n - t * frame_step) ** 2` over the output span.

    Args:
        window: `[fft_length]` float32 analysis window.
        frame_step: hop in samples.
        frames: number of frames (int or scalar tensor).
        frame_mask: optional `[batch, frames]`: sum only an item's own frames.

    Returns:
        `[samples]` (or `[batch, samples]`), `samples = (frames - 1) * frame_step`;
        positive everywhere when `frame_step` is shorter than the window.
    """
    fft_length = window.shape[0]
    squares = tf.tile(tf.reshape(tf.square(window), [1, 1, fft_length]), tf.stack([1, frames, 1]))
    if frame_mask is not None:
        squares = tf.expand_dims(frame_mask, -1) * squares
    window_sum = overlap_and_add(squares, frame_step)
    if frame_mask is None:
        window_sum = tf.squeeze(window_sum, 0)
    return tf.math.reciprocal_no_nan(centre_span(window_sum, fft_length, frame_step, frames))


def centre_span(overlapped, fft_length, frame_step, frames):
    """The samples from the first frame centre to the last of an overlap-added signal.

    `overlapped` is `[..., samples]` of static rank.
    """
    start = fft_length // 2
    if isinstance(frames, int):  # keeps the static shape
        samples = max(0, (frames - 1) * frame_step)
    else:
        samples = tf.maximum(0, (frames - 1) * frame_step)
    # Every axis spelled out: an ellipsis standing for no axis (a 1-D input)
    # is a strided slice the TFLite converter rejects.
    leading = (slice(None),) * (overlapped.shape.rank - 1)
    return overlapped[(*leading, slice(start, start + samples))]


def _dimension(tensor, axis):
    """`tensor`'s size along `axis`: a Python int when static, else a scalar tensor."""
    size = tensor.shape[axis]
    return size if size is not None else tf.shape(tensor)[axis]
