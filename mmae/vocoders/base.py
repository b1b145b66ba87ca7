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
"""

import keras
import tensorflow as tf


class Vocoder(keras.layers.Layer):
    """Log-mel `[batch, frames, num_mels]` to float32 waveforms `[batch, samples]`.

    Subclasses implement `call(log_mel, num_frames=None)` and the class method
    `from_config_dataclass(audio_config, **kwargs)`, and return
    `samples_for_frames(frames)` samples for `frames` input frames. The layer
    always computes in float32: its dtype defaults to `"float32"` whatever the
    global policy (FFTs have no float16 kernels, and waveforms need the
    precision).

    Args:
        sample_rate: rate of the returned waveforms, in Hz.
        frame_step: hop between mel frames in samples.
        **kwargs: forwarded to `keras.layers.Layer` (`name`, `dtype`, ...).
    """

    def __init__(self, sample_rate, frame_step, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if frame_step <= 0:
            raise ValueError(f"frame_step must be positive, got {frame_step}.")
        self.sample_rate = sample_rate
        self.frame_step = frame_step

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
        raise NotImplementedError(f"{type(self).__name__} must implement call().")

    def compute_output_shape(self, log_mel_shape, num_frames_shape=None):
        *batch, num_frames, _ = log_mel_shape
        return (*batch, None if num_frames is None else self.samples_for_frames(num_frames))

    def get_config(self):
        config = super().get_config()
        config.update({"sample_rate": self.sample_rate, "frame_step": self.frame_step})
        return config
