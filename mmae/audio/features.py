"""Log-mel features as a Keras layer built only on TensorFlow ops.

The layer runs wherever the model runs: in a `tf.data` map, inside a
`tf.function` (with `jit_compile=True` too) and in an exported SavedModel, so
training data and synthesis never disagree on what a mel frame is. With the
default `mel_scale="slaney"` it reproduces

    librosa.feature.melspectrogram(y=y, sr=sample_rate, n_fft=fft_length,
        hop_length=frame_step, win_length=frame_length, window="hann",
        center=center, pad_mode="constant", power=power, n_mels=num_mels,
        fmin=lower_edge_hertz, fmax=upper_edge_hertz, htk=False, norm="slaney")

followed by `log(max(mel, log_floor))`, to about 1e-3 in log-mel (up to 5e-3
in the quietest bins of loud frames, where float32 FFT rounding matters; see
tests/test_audio.py and bench/data_bench/mel_features.py).

Example:

>>> import tensorflow as tf
>>> from mmae.audio.features import MelSpectrogram
>>> layer = MelSpectrogram(sample_rate=16000, fft_length=1024, frame_length=1024,
...                        frame_step=256, num_mels=80, lower_edge_hertz=0.0,
...                        upper_edge_hertz=8000.0)
>>> layer(tf.zeros([2, 16000])).shape
TensorShape([2, 63, 80])
"""

import math

import keras
import tensorflow as tf

# Slaney's Auditory Toolbox mel scale (librosa's default, htk=False): linear
# below 1 kHz, logarithmic above.
_SLANEY_HZ_PER_MEL = 200.0 / 3.0
_SLANEY_MIN_LOG_HZ = 1000.0
_SLANEY_MIN_LOG_MEL = _SLANEY_MIN_LOG_HZ / _SLANEY_HZ_PER_MEL
_SLANEY_LOG_STEP = math.log(6.4) / 27.0


def _hz_to_mel_slaney(hertz):
    linear = hertz / _SLANEY_HZ_PER_MEL
    # The maximum keeps log() finite in the branch tf.where discards.
    logarithmic = _SLANEY_MIN_LOG_MEL + (
        tf.math.log(tf.maximum(hertz, _SLANEY_MIN_LOG_HZ) / _SLANEY_MIN_LOG_HZ) / _SLANEY_LOG_STEP
    )
    return tf.where(hertz >= _SLANEY_MIN_LOG_HZ, logarithmic, linear)


def _mel_to_hz_slaney(mels):
    linear = mels * _SLANEY_HZ_PER_MEL
    logarithmic = _SLANEY_MIN_LOG_HZ * tf.exp(_SLANEY_LOG_STEP * (mels - _SLANEY_MIN_LOG_MEL))
    return tf.where(mels >= _SLANEY_MIN_LOG_MEL, logarithmic, linear)


def mel_weight_matrix(
    num_mels,
    num_spectrogram_bins,
    sample_rate,
    lower_edge_hertz,
    upper_edge_hertz,
    mel_scale="slaney",
    dtype=tf.float32,
):
    """Returns a `[num_spectrogram_bins, num_mels]` matrix mapping linear bins to mel bands.

    `"slaney"` equals `librosa.filters.mel(..., htk=False, norm="slaney").T`:
    triangles linear in Hz between band edges spaced evenly on the Slaney
    scale, each scaled by 2 / (bandwidth in Hz) so every band has the same
    area. It is computed in float64 with TF ops (no NumPy), then cast.

    `"htk"` is `tf.signal.linear_to_mel_weight_matrix` as is, which differs from
    librosa's `htk=True`: no area normalisation (peaks are 1), triangles linear
    in mel rather than in Hz, and the DC bin is always zeroed.

    Both assume an even FFT length, `num_spectrogram_bins = fft_length // 2 + 1`.

    Args:
        num_mels: number of mel bands.
        num_spectrogram_bins: `fft_length // 2 + 1`.
        sample_rate: waveform sample rate in Hz.
        lower_edge_hertz: lower edge of the lowest band.
        upper_edge_hertz: upper edge of the highest band.
        mel_scale: `"slaney"` or `"htk"`.
        dtype: float dtype of the result.
    """
    if mel_scale == "htk":
        return tf.signal.linear_to_mel_weight_matrix(
            num_mel_bins=num_mels,
            num_spectrogram_bins=num_spectrogram_bins,
            sample_rate=sample_rate,
            lower_edge_hertz=lower_edge_hertz,
            upper_edge_hertz=upper_edge_hertz,
            dtype=dtype,
        )
    if mel_scale != "slaney":
        raise ValueError(f"mel_scale must be 'slaney' or 'htk', got {mel_scale!r}.")
    # float64 so the matrix matches librosa's (also float64 until its final
    # cast) to ~1e-7 relative.
    nyquist = sample_rate / 2.0
    bin_hertz = tf.linspace(tf.constant(0.0, tf.float64), nyquist, num_spectrogram_bins)
    edge_mels = tf.linspace(
        _hz_to_mel_slaney(tf.constant(lower_edge_hertz, tf.float64)),
        _hz_to_mel_slaney(tf.constant(upper_edge_hertz, tf.float64)),
        num_mels + 2,
    )
    edge_hertz = _mel_to_hz_slaney(edge_mels)
    lower, center, upper = edge_hertz[:-2], edge_hertz[1:-1], edge_hertz[2:]
    # [num_spectrogram_bins, 1] against [num_mels]: one column per band.
    bins = bin_hertz[:, tf.newaxis]
    rising = (bins - lower) / (center - lower)
    falling = (upper - bins) / (upper - center)
    weights = tf.maximum(0.0, tf.minimum(rising, falling))
    weights *= 2.0 / (upper - lower)
    return tf.cast(weights, dtype)


def centred_window(frame_length, fft_length):
    """A periodic Hann window of `frame_length` centred in `fft_length` zeros, float32.

    Computed in float64 and rounded once: a float32 cosine is off by ~2e-7,
    enough to leak energy into the quietest bins and move their log-mel by
    ~1e-3.
    """
    window = tf.signal.hann_window(frame_length, periodic=True, dtype=tf.float64)
    left = (fft_length - frame_length) // 2
    window = tf.pad(window, [[left, fft_length - frame_length - left]])
    return tf.cast(window, tf.float32)


def frame_count(num_samples, frame_step, center=True, fft_length=None):
    """Number of frames `MelSpectrogram` (and librosa) give for `num_samples`.

    Args:
        num_samples: waveform length (a Python or NumPy int; with `center=True`
            an integer tensor works too).
        frame_step: hop between frames in samples.
        center: whether the waveform is padded by `fft_length // 2` each side.
        fft_length: needed only when `center=False`.
    """
    if center:
        # Padding fft_length // 2 on each side of an even fft_length adds
        # exactly one frame's worth, so only the hop matters.
        return 1 + num_samples // frame_step
    if fft_length is None:
        raise ValueError("frame_count needs fft_length when center=False.")
    return max(0, 1 + (num_samples - fft_length) // frame_step)


@keras.saving.register_keras_serializable(package="mmae")
class MelSpectrogram(keras.layers.Layer):
    """Waveform `[batch, samples]` (or `[samples]`) to log-mel `[batch, frames, num_mels]`.

    Frames are `fft_length` samples long, windowed by a periodic Hann window of
    `frame_length` samples centred in the frame (as librosa does when
    `win_length < n_fft`; `tf.signal.stft` would put the window at the start
    and pad at the end instead). The magnitude spectrum is raised to `power`,
    projected onto `num_mels` bands and `log(max(mel, log_floor))` is taken
    per element, so no example's floor depends on another in the batch.

    The layer always computes in float32: its dtype defaults to `"float32"`
    whatever the global policy, because in float16 the FFT is unsupported and
    low-energy bands lose most of their precision.

    Args:
        sample_rate: waveform sample rate in Hz.
        fft_length: FFT size (even); also the frame length before windowing.
        frame_length: Hann window length, `<= fft_length`.
        frame_step: hop between frames in samples.
        num_mels: number of mel bands.
        lower_edge_hertz: lower edge of the lowest mel band.
        upper_edge_hertz: upper edge of the highest mel band.
        mel_scale: `"slaney"` (librosa's default) or `"htk"`
            (`tf.signal.linear_to_mel_weight_matrix`); see `mel_weight_matrix`.
        power: 1.0 for magnitude, 2.0 for power.
        log_floor: smallest mel value before the log.
        center: zero-pad `fft_length // 2` samples on both sides, so frame `t`
            is centred on sample `t * frame_step` and there are
            `1 + samples // frame_step` frames.
        **kwargs: forwarded to `keras.layers.Layer` (`name`, `dtype`, ...).
    """

    def __init__(
        self,
        sample_rate,
        fft_length,
        frame_length,
        frame_step,
        num_mels,
        lower_edge_hertz,
        upper_edge_hertz,
        mel_scale="slaney",
        power=1.0,
        log_floor=1e-5,
        center=True,
        **kwargs,
    ):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if fft_length % 2:
            raise ValueError(f"fft_length must be even, got {fft_length}.")
        if not 0 < frame_length <= fft_length:
            raise ValueError(
                f"frame_length ({frame_length}) must be in [1, fft_length ({fft_length})]."
            )
        if mel_scale not in ("slaney", "htk"):
            raise ValueError(f"mel_scale must be 'slaney' or 'htk', got {mel_scale!r}.")
        if power <= 0:
            raise ValueError(f"power must be positive, got {power}.")
        self.sample_rate = sample_rate
        self.fft_length = fft_length
        self.frame_length = frame_length
        self.frame_step = frame_step
        self.num_mels = num_mels
        self.lower_edge_hertz = lower_edge_hertz
        self.upper_edge_hertz = upper_edge_hertz
        self.mel_scale = mel_scale
        self.power = power
        self.log_floor = log_floor
        self.center = center
        # Constants made eagerly even when the layer is built inside a
        # tf.function or a tf.data trace, so every later call can capture them.
        with tf.init_scope():
            self._window = centred_window(frame_length, fft_length)
            self._mel_matrix = mel_weight_matrix(
                num_mels,
                fft_length // 2 + 1,
                sample_rate,
                lower_edge_hertz,
                upper_edge_hertz,
                mel_scale,
            )

    @classmethod
    def from_config_dataclass(cls, audio_config, **kwargs):
        """Builds the layer from an `mmae.config.AudioConfig`; kwargs go to the layer."""
        return cls(
            sample_rate=audio_config.sample_rate,
            fft_length=audio_config.fft_length,
            frame_length=audio_config.frame_length,
            frame_step=audio_config.frame_step,
            num_mels=audio_config.num_mels,
            lower_edge_hertz=audio_config.lower_edge_hertz,
            upper_edge_hertz=audio_config.upper_edge_hertz,
            mel_scale=audio_config.mel_scale,
            power=audio_config.power,
            log_floor=audio_config.log_floor,
            center=audio_config.center,
            **kwargs,
        )

    def call(self, inputs):
        waveform = tf.cast(inputs, tf.float32)
        if self.center:
            # Zero padding, as librosa >= 0.10 with pad_mode="constant".
            pad = self.fft_length // 2
            rank = waveform.shape.rank
            waveform = tf.pad(waveform, [[0, 0]] * (rank - 1) + [[pad, pad]])
        frames = tf.signal.frame(waveform, self.fft_length, self.frame_step)
        spectrum = tf.signal.rfft(frames * self._window, fft_length=[self.fft_length])
        if self.power == 2.0:
            # Skips the square root that abs() takes and ** 2 undoes.
            magnitude = tf.math.square(tf.math.real(spectrum)) + tf.math.square(
                tf.math.imag(spectrum)
            )
        else:
            magnitude = tf.abs(spectrum)
            if self.power != 1.0:
                magnitude = magnitude**self.power
        mel = tf.tensordot(magnitude, self._mel_matrix, axes=1)
        return tf.math.log(tf.maximum(mel, self.log_floor))

    def compute_output_shape(self, input_shape):
        *batch, num_samples = input_shape
        if num_samples is None:
            num_frames = None
        else:
            num_frames = frame_count(num_samples, self.frame_step, self.center, self.fft_length)
        return (*batch, num_frames, self.num_mels)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "sample_rate": self.sample_rate,
                "fft_length": self.fft_length,
                "frame_length": self.frame_length,
                "frame_step": self.frame_step,
                "num_mels": self.num_mels,
                "lower_edge_hertz": self.lower_edge_hertz,
                "upper_edge_hertz": self.upper_edge_hertz,
                "mel_scale": self.mel_scale,
                "power": self.power,
                "log_floor": self.log_floor,
                "center": self.center,
            }
        )
        return config


def mel_layer_from_config(audio_config, **kwargs):
    """`MelSpectrogram.from_config_dataclass(audio_config, **kwargs)`, as a function."""
    return MelSpectrogram.from_config_dataclass(audio_config, **kwargs)
