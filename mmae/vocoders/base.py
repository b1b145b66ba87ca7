"""The interface every vocoder implements: log-mel frames in, waveforms out.

The synthesizer only ever talks to a `Vocoder`, so Griffin-Lim can later be
swapped for a neural vocoder without touching it.

Length relation (the same for every vocoder): the features are
`MelSpectrogram` frames with `center=True`, where frame `t` is centred on
sample `t * frame_step` and a waveform of `n` samples gives
`1 + n // frame_step` frames. A vocoder returns, for `frames` frames,

    samples = (frames - 1) * frame_step

samples: the span from the first frame centre to the last one, as
`librosa.istft(..., center=True)` does. A clip of `n` samples comes back as
its first `frame_step * (n // frame_step)` samples, that is with up to
`frame_step - 1` samples missing from its end.

Bad input has a defined output, item by item, in every vocoder (the base
class does it around `vocode`): a frame holding NaN or Inf is silence, values
are clipped to `[min_log_mel, max_log_mel]`, zero or one frame give zero
samples, and the waveform is never NaN. Other items of the batch are not
affected.
"""

import math

import keras
import tensorflow as tf

# `MelSpectrogram`'s default floor: the log-mel of silence.
SILENCE_LOG_MEL = math.log(1e-5)
# The loudest frames of peak-normalized speech reach a log-mel of about 2.2
# (flite16k features); 4.0 is some seven times louder.
MAX_LOG_MEL = 4.0


class Vocoder(keras.layers.Layer):
    """Log-mel `[batch, frames, num_mels]` to float32 waveforms `[batch, samples]`.

    Subclasses implement `vocode(log_mel, num_frames=None)` (and name in
    `FEATURE_ARGUMENTS` any feature settings their constructor takes beyond
    the STFT geometry, for `from_config_dataclass`), and return
    `samples_for_frames(frames)` samples for `frames` input frames. The layer
    always computes in float32: its dtype defaults to `"float32"` whatever the
    global policy (FFTs have no float16 kernels, and waveforms need the
    precision).

    Args:
        sample_rate: rate of the returned waveforms, in Hz.
        frame_step: hop between mel frames in samples.
        min_log_mel: the log-mel of silence (`log(audio.log_floor)`); lower
            values, and frames holding NaN or Inf, become this.
        max_log_mel: higher values are clipped to this.
        **kwargs: forwarded to `keras.layers.Layer` (`name`, `dtype`, ...).
    """

    def __init__(
        self,
        sample_rate,
        frame_step,
        min_log_mel=SILENCE_LOG_MEL,
        max_log_mel=MAX_LOG_MEL,
        **kwargs,
    ):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if frame_step <= 0:
            raise ValueError(f"frame_step must be positive, got {frame_step}.")
        if not min_log_mel < max_log_mel:
            raise ValueError(f"Need min_log_mel ({min_log_mel}) < max_log_mel ({max_log_mel}).")
        self.sample_rate = sample_rate
        self.frame_step = frame_step
        self.min_log_mel = min_log_mel
        self.max_log_mel = max_log_mel

    @classmethod
    def from_config_dataclass(cls, audio_config, **kwargs):
        """Builds the vocoder for the features of an `mmae.config.AudioConfig`.

        Passes the STFT geometry and the log floor; a subclass that needs more
        of the features names them in `FEATURE_ARGUMENTS`.
        """
        if not audio_config.center:
            raise ValueError(f"{cls.__name__} needs features made with center=True.")
        features = {name: getattr(audio_config, name) for name in cls.FEATURE_ARGUMENTS}
        return cls(
            sample_rate=audio_config.sample_rate,
            fft_length=audio_config.fft_length,
            frame_length=audio_config.frame_length,
            frame_step=audio_config.frame_step,
            num_mels=audio_config.num_mels,
            min_log_mel=math.log(audio_config.log_floor),
            **features,
            **kwargs,
        )

    # `AudioConfig` fields a subclass takes besides the STFT geometry.
    FEATURE_ARGUMENTS = ()

    def samples_for_frames(self, num_frames):
        """Waveform length for `num_frames` mel frames: `max(0, (num_frames - 1) * frame_step)`.

        Works on Python ints and on integer tensors (e.g. a batch's lengths),
        so a caller can cut each padded item of a batched output to its own
        length.
        """
        if isinstance(num_frames, int):
            return max(0, (num_frames - 1) * self.frame_step)
        return tf.maximum(0, (num_frames - 1) * self.frame_step)

    def call(self, log_mel, num_frames=None):
        """Returns the waveforms for `log_mel`.

        Args:
            log_mel: `[batch, frames, num_mels]` (or `[frames, num_mels]`),
                exactly the features `MelSpectrogram` computes with the same
                `AudioConfig`.
            num_frames: optional `[batch]` integer lengths of padded items.
                Frames at or past an item's length are ignored and its samples
                from `samples_for_frames(num_frames)` on are zero.

        Returns:
            float32 `[batch, samples_for_frames(frames)]` (or `[samples]`).
        """
        log_mel = tf.cast(log_mel, tf.float32)
        unbatched = log_mel.shape.rank == 2
        if unbatched:
            log_mel = tf.expand_dims(log_mel, 0)
            if num_frames is not None:
                num_frames = tf.reshape(num_frames, [1])
        frames = log_mel.shape[1] if log_mel.shape[1] is not None else tf.shape(log_mel)[1]
        log_mel = self.sanitize(log_mel)
        if num_frames is not None:
            num_frames = tf.cast(num_frames, tf.int32)
        if log_mel.shape[1] is None or log_mel.shape[1] < 2:
            # Zero or one frame span no samples: vocode two frames of silence
            # and keep none of them (no branch, so XLA and TFLite take it).
            # Two frames padded, then a cut: padding by a computed amount
            # would leave the mel channels unknown to the TFLite converter,
            # and its Conv2D needs them.
            padded = tf.pad(log_mel, [[0, 0], [0, 2], [0, 0]], constant_values=self.min_log_mel)
            kept = max(frames, 2) if isinstance(frames, int) else tf.maximum(frames, 2)
            log_mel = padded[:, :kept]
        waveform = self.vocode(log_mel, num_frames)
        waveform = waveform[:, : self.samples_for_frames(frames)]
        if num_frames is not None:
            lengths = self.samples_for_frames(num_frames)
            waveform *= tf.sequence_mask(lengths, tf.shape(waveform)[1], waveform.dtype)
        waveform = tf.where(tf.math.is_finite(waveform), waveform, tf.zeros_like(waveform))
        return waveform[0] if unbatched else waveform

    def sanitize(self, log_mel):
        """`[batch, frames, mels]` with non-finite frames silent and values in range."""
        finite = tf.reduce_all(tf.math.is_finite(log_mel), axis=-1, keepdims=True)
        log_mel = tf.where(finite, log_mel, tf.fill(tf.shape(log_mel), self.min_log_mel))
        return tf.clip_by_value(log_mel, self.min_log_mel, self.max_log_mel)

    def vocode(self, log_mel, num_frames=None):
        """The waveforms of sanitized `[batch, frames >= 2, mels]` float32 log-mels.

        Subclasses implement this; `call` wraps it.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement vocode().")

    def compute_output_shape(self, log_mel_shape, num_frames_shape=None):
        *batch, num_frames, _ = log_mel_shape
        return (*batch, None if num_frames is None else self.samples_for_frames(num_frames))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "sample_rate": self.sample_rate,
                "frame_step": self.frame_step,
                "min_log_mel": self.min_log_mel,
                "max_log_mel": self.max_log_mel,
            }
        )
        return config
