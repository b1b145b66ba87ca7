"""Discriminators for adversarial vocoder training.

Two views of a waveform, after HiFi-GAN and Vocos:

- `MultiPeriodDiscriminator` (HiFi-GAN, Kong et al. 2020): for each period
  `p`, the waveform folded into `[samples / p, p]` and read by 2-D
  convolutions along time only, so each sees every `p`-th sample: periodic
  structure (pitch, its harmonics) that a smooth waveform gets wrong.
- `MultiResolutionDiscriminator` (UnivNet, Jang et al. 2021; used by Vocos):
  for each FFT size, the linear magnitude spectrogram read by 2-D
  convolutions over time and frequency: over-smoothed spectra and phase
  artefacts show up as texture there.

Each returns, per sub-discriminator, its logits and its intermediate feature
maps (for feature matching). They are small by default: on two CPU cores
the discriminators, not the generator, set the cost of an adversarial step.
"""

import keras
import tensorflow as tf

_LEAK = 0.1


class _Stack(keras.layers.Layer):
    """Conv2D layers with leaky ReLUs, then a one-channel output conv; returns (logits, features)."""

    def __init__(self, convs, **kwargs):
        super().__init__(**kwargs)
        policy = self.dtype_policy
        self.convs = [
            keras.layers.Conv2D(
                filters, kernel, strides=strides, padding="same", dtype=policy, name=f"conv_{i}"
            )
            for i, (filters, kernel, strides) in enumerate(convs[:-1])
        ]
        filters, kernel, strides = convs[-1]
        self.output_conv = keras.layers.Conv2D(
            filters, kernel, strides=strides, padding="same", dtype=policy, name="output"
        )

    def call(self, inputs):
        features = []
        hidden = inputs
        for conv in self.convs:
            hidden = keras.activations.leaky_relu(conv(hidden), _LEAK)
            features.append(hidden)
        logits = self.output_conv(hidden)
        features.append(logits)
        return tf.cast(logits, tf.float32), [tf.cast(f, tf.float32) for f in features]


@keras.saving.register_keras_serializable(package="mmae")
class PeriodDiscriminator(keras.layers.Layer):
    """One period of `MultiPeriodDiscriminator`.

    Args:
        period: samples between the rows the convolutions read together.
        channels: filters of the strided convolutions.
        **kwargs: forwarded to `keras.layers.Layer`.
    """

    def __init__(self, period, channels=(16, 32, 64, 128), **kwargs):
        super().__init__(**kwargs)
        self.period = period
        self.channels = list(channels)
        convs = [(c, (5, 1), (3, 1)) for c in self.channels]
        convs += [(self.channels[-1], (5, 1), (1, 1)), (1, (3, 1), (1, 1))]
        self.stack = _Stack(convs, dtype=self.dtype_policy, name="stack")

    def call(self, waveform):
        samples = tf.shape(waveform)[1]
        padding = (self.period - samples % self.period) % self.period
        waveform = tf.pad(waveform, [[0, 0], [0, padding]])
        folded = tf.reshape(waveform, [tf.shape(waveform)[0], -1, self.period, 1])
        return self.stack(tf.cast(folded, self.compute_dtype))

    def get_config(self):
        config = super().get_config()
        config.update({"period": self.period, "channels": self.channels})
        return config


@keras.saving.register_keras_serializable(package="mmae")
class ResolutionDiscriminator(keras.layers.Layer):
    """One FFT size of `MultiResolutionDiscriminator`: reads `|STFT|`, hop `fft_length // 4`.

    Args:
        fft_length: FFT and Hann window size.
        channels: filters of every convolution.
        **kwargs: forwarded to `keras.layers.Layer`.
    """

    def __init__(self, fft_length, channels=32, **kwargs):
        super().__init__(**kwargs)
        self.fft_length = fft_length
        self.channels = channels
        convs = [(channels, (3, 9), (1, 1))]
        convs += [(channels, (3, 9), (1, 2))] * 3
        convs += [(channels, (3, 3), (1, 1)), (1, (3, 3), (1, 1))]
        self.stack = _Stack(convs, dtype=self.dtype_policy, name="stack")

    def call(self, waveform):
        magnitude = stft_magnitude(waveform, self.fft_length)
        return self.stack(tf.cast(magnitude[..., tf.newaxis], self.compute_dtype))

    def get_config(self):
        config = super().get_config()
        config.update({"fft_length": self.fft_length, "channels": self.channels})
        return config


class _Ensemble(keras.layers.Layer):
    """Sub-discriminators side by side: `call(waveform)` gives `[(logits, features), ...]`."""

    members = ()

    def call(self, waveform):
        waveform = tf.cast(waveform, tf.float32)
        return [member(waveform) for member in self.members]


@keras.saving.register_keras_serializable(package="mmae")
class MultiPeriodDiscriminator(_Ensemble):
    """HiFi-GAN's discriminator: one `PeriodDiscriminator` per period.

    Args:
        periods: the periods, in samples (HiFi-GAN's primes 2, 3, 5, 7, 11).
        channels: filters of each one's strided convolutions.
        **kwargs: forwarded to `keras.layers.Layer`.
    """

    def __init__(self, periods=(2, 3, 5, 7, 11), channels=(16, 32, 64, 128), **kwargs):
        super().__init__(**kwargs)
        self.periods = list(periods)
        self.channels = list(channels)
        self.members = [
            PeriodDiscriminator(p, self.channels, dtype=self.dtype_policy, name=f"period_{p}")
            for p in self.periods
        ]

    def get_config(self):
        config = super().get_config()
        config.update({"periods": self.periods, "channels": self.channels})
        return config


@keras.saving.register_keras_serializable(package="mmae")
class MultiResolutionDiscriminator(_Ensemble):
    """Vocos's (UnivNet's) discriminator: one `ResolutionDiscriminator` per FFT size.

    Args:
        fft_lengths: the FFT sizes.
        channels: filters of every convolution.
        **kwargs: forwarded to `keras.layers.Layer`.
    """

    def __init__(self, fft_lengths=(512, 1024, 2048), channels=32, **kwargs):
        super().__init__(**kwargs)
        self.fft_lengths = list(fft_lengths)
        self.channels = channels
        self.members = [
            ResolutionDiscriminator(n, channels, dtype=self.dtype_policy, name=f"fft_{n}")
            for n in self.fft_lengths
        ]

    def get_config(self):
        config = super().get_config()
        config.update({"fft_lengths": self.fft_lengths, "channels": self.channels})
        return config


def stft_magnitude(waveform, fft_length, floor=1e-7):
    """`|STFT|` `[batch, frames, fft_length // 2 + 1]`, hop `fft_length // 4`, centred, float32."""
    waveform = tf.cast(waveform, tf.float32)
    pad = fft_length // 2
    waveform = tf.pad(waveform, [[0, 0], [pad, pad]])
    stft = tf.signal.stft(
        waveform,
        frame_length=fft_length,
        frame_step=fft_length // 4,
        fft_length=fft_length,
        window_fn=tf.signal.hann_window,
    )
    # sqrt(re^2 + im^2 + floor) keeps the gradient finite at zero magnitude.
    return tf.sqrt(tf.square(tf.math.real(stft)) + tf.square(tf.math.imag(stft)) + floor)
