"""A Vocos-style neural vocoder: ConvNeXt blocks at frame rate, then an inverse STFT.

Vocos (Siuzdak, 2023) never upsamples inside the network: a stack of
ConvNeXt blocks runs at the mel frame rate and predicts, for every frame, the
log-magnitude and phase of a one-sided STFT frame; a fixed inverse STFT turns
them into samples. All the learned computation happens at 1/`frame_step` of
the sample rate, which is what makes it cheap on a CPU, where HiFi-GAN's
transposed-convolution upsamplers spend most of their time at audio rate.

The inverse STFT is `MelSpectrogram`'s own (`mmae.vocoders.stft`): the same
window, frame centres and least-squares overlap normalization, synthesized by
a matrix product with an inverse-DFT basis rather than an inverse FFT, so the
whole layer is real-valued and runs under mixed precision, XLA and TFLite
builtin ops. A network that predicted the recording's exact STFT would give
back the recording sample for sample.

Padded items: hidden states at or past an item's length are held at zero
after every block, which is what zero "same" padding gives an item alone, so
an item's waveform does not depend on what it is batched with.

Example:

>>> from mmae.config import Config
>>> vocoder = Vocos.from_config_dataclass(Config.load("flite16k").audio, dim=192, num_blocks=8)
>>> vocoder(tf.zeros([2, 63, 80])).shape  # (63 - 1) * 256 samples
TensorShape([2, 15872])
"""

import math

import keras
import tensorflow as tf

from mmae.audio.features import centred_window
from mmae.vocoders.base import Vocoder
from mmae.vocoders.stft import (
    centre_span,
    inverse_dft_basis,
    overlap_and_add,
    overlap_normalizer,
)


@keras.saving.register_keras_serializable(package="mmae")
class ConvNeXtBlock(keras.layers.Layer):
    """A 1-D ConvNeXt block: depthwise conv, LayerNorm, pointwise MLP, scaled residual.

    Args:
        dim: channels in and out.
        intermediate_dim: the MLP's hidden width.
        kernel_size: the depthwise convolution's width, odd.
        layer_scale: initial value of the per-channel residual scale.
        **kwargs: forwarded to `keras.layers.Layer`.
    """

    def __init__(self, dim, intermediate_dim, kernel_size=7, layer_scale=0.125, **kwargs):
        super().__init__(**kwargs)
        self.dim = dim
        self.intermediate_dim = intermediate_dim
        self.kernel_size = kernel_size
        self.layer_scale = layer_scale
        policy = self.dtype_policy
        self.depthwise = keras.layers.DepthwiseConv1D(
            kernel_size, padding="same", dtype=policy, name="depthwise"
        )
        self.norm = keras.layers.LayerNormalization(epsilon=1e-6, dtype=policy, name="norm")
        self.expand = keras.layers.Dense(intermediate_dim, dtype=policy, name="expand")
        self.project = keras.layers.Dense(dim, dtype=policy, name="project")

    def build(self, input_shape):
        self.depthwise.build(input_shape)
        self.norm.build(input_shape)
        self.expand.build(input_shape)
        self.project.build((*input_shape[:-1], self.intermediate_dim))
        self.scale = self.add_weight(
            shape=(self.dim,),
            initializer=keras.initializers.Constant(self.layer_scale),
            name="scale",
        )

    def call(self, inputs, frame_mask=None):
        hidden = self.norm(self.depthwise(inputs))
        hidden = self.project(keras.activations.gelu(self.expand(hidden)))
        outputs = inputs + hidden * keras.ops.cast(self.scale, hidden.dtype)
        if frame_mask is not None:
            outputs *= keras.ops.expand_dims(keras.ops.cast(frame_mask, outputs.dtype), -1)
        return outputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "dim": self.dim,
                "intermediate_dim": self.intermediate_dim,
                "kernel_size": self.kernel_size,
                "layer_scale": self.layer_scale,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="mmae")
class Vocos(Vocoder):
    """Log-mel `[batch, frames, num_mels]` to waveforms `[batch, (frames - 1) * frame_step]`.

    Unlike Griffin-Lim it follows the dtype policy it is given (the ConvNeXt
    trunk computes in float16 or bfloat16 under mixed precision); the STFT
    head always computes in float32.

    Args:
        sample_rate: waveform sample rate in Hz.
        fft_length: the STFT size of the features (even).
        frame_length: their Hann window length.
        frame_step: their hop.
        num_mels: mel bands in.
        dim: the ConvNeXt width.
        intermediate_dim: the blocks' MLP width (default 3 x dim).
        num_blocks: ConvNeXt blocks.
        kernel_size: their depthwise kernel width.
        **kwargs: forwarded to `Vocoder` (`min_log_mel`, `max_log_mel`) and
            `keras.layers.Layer` (`name`, `dtype`, ...).
    """

    def __init__(
        self,
        sample_rate,
        fft_length,
        frame_length,
        frame_step,
        num_mels,
        dim=192,
        intermediate_dim=None,
        num_blocks=8,
        kernel_size=7,
        **kwargs,
    ):
        kwargs.setdefault("dtype", keras.mixed_precision.global_policy())
        super().__init__(sample_rate=sample_rate, frame_step=frame_step, **kwargs)
        if fft_length % 2 or not frame_step < frame_length <= fft_length:
            raise ValueError(
                f"Need an even fft_length ({fft_length}) and frame_step ({frame_step}) < "
                f"frame_length ({frame_length}) <= fft_length."
            )
        self.fft_length = fft_length
        self.frame_length = frame_length
        self.num_mels = num_mels
        self.dim = dim
        self.intermediate_dim = intermediate_dim or 3 * dim
        self.num_blocks = num_blocks
        self.kernel_size = kernel_size
        policy = self.dtype_policy
        self.embed = keras.layers.Conv1D(
            dim, kernel_size, padding="same", dtype=policy, name="embed"
        )
        self.embed_norm = keras.layers.LayerNormalization(
            epsilon=1e-6, dtype=policy, name="embed_norm"
        )
        self.blocks = [
            ConvNeXtBlock(
                dim,
                self.intermediate_dim,
                kernel_size,
                layer_scale=1.0 / num_blocks,
                dtype=policy,
                name=f"block_{i}",
            )
            for i in range(num_blocks)
        ]
        self.final_norm = keras.layers.LayerNormalization(
            epsilon=1e-6, dtype=policy, name="final_norm"
        )
        # Log-magnitude and phase of every bin; float32, as the waveform is.
        self.head = keras.layers.Dense(fft_length + 2, dtype="float32", name="head")
        # A full-scale sinusoid has magnitude fft_length / 4; nothing real is
        # louder than fft_length.
        self.max_log_magnitude = math.log(fft_length)
        with tf.init_scope():
            self._window = centred_window(frame_length, fft_length)
            self._basis_real, self._basis_imag = inverse_dft_basis(self._window.numpy(), fft_length)

    def build(self, input_shape=None):
        shape = (None, None, self.num_mels)
        self.embed.build(shape)
        hidden = (None, None, self.dim)
        self.embed_norm.build(hidden)
        for block in self.blocks:
            block.build(hidden)
        self.final_norm.build(hidden)
        self.head.build(hidden)
        self.built = True

    def vocode(self, log_mel, num_frames=None):
        spectrum = self.spectrum(log_mel, num_frames)
        return self.inverse_stft(*spectrum, num_frames)

    def spectrum(self, log_mel, num_frames=None):
        """Real and imaginary STFT frames `[batch, frames, fft_length // 2 + 1]`, float32."""
        mask = None
        if num_frames is not None:
            mask = tf.sequence_mask(num_frames, tf.shape(log_mel)[1], self.compute_dtype)
        # Centre the log-mel range (about -11.5 to 2.2) near zero.
        hidden = tf.cast((log_mel + 5.0) / 4.0, self.compute_dtype)
        if mask is not None:
            hidden *= tf.expand_dims(mask, -1)
        hidden = self.embed_norm(self.embed(hidden))
        if mask is not None:
            hidden *= tf.expand_dims(mask, -1)
        for block in self.blocks:
            hidden = block(hidden, frame_mask=mask)
        outputs = self.head(tf.cast(self.final_norm(hidden), tf.float32))
        bins = self.fft_length // 2 + 1
        log_magnitude, phase = tf.split(outputs, [bins, bins], axis=-1)
        magnitude = tf.exp(tf.minimum(log_magnitude, self.max_log_magnitude))
        return magnitude * tf.cos(phase), magnitude * tf.sin(phase)

    def inverse_stft(self, real, imag, num_frames=None):
        """Waveforms `[batch, samples_for_frames(frames)]` of one-sided STFT frames."""
        frames = real.shape[1] if real.shape[1] is not None else tf.shape(real)[1]
        windowed = tf.matmul(real, self._basis_real) + tf.matmul(imag, self._basis_imag)
        frame_mask = None
        if num_frames is not None:
            frame_mask = tf.sequence_mask(num_frames, frames, tf.float32)
            windowed *= tf.expand_dims(frame_mask, -1)
        overlapped = overlap_and_add(windowed, self.frame_step)
        waveform = centre_span(overlapped, self.fft_length, self.frame_step, frames)
        return waveform * overlap_normalizer(self._window, self.frame_step, frames, frame_mask)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "fft_length": self.fft_length,
                "frame_length": self.frame_length,
                "num_mels": self.num_mels,
                "dim": self.dim,
                "intermediate_dim": self.intermediate_dim,
                "num_blocks": self.num_blocks,
                "kernel_size": self.kernel_size,
            }
        )
        return config
