"""Building blocks shared by the encoders, the decoder and the aligner.

Every block takes a `mask` ([batch, time] float, 1 on real steps) and keeps
padded steps at zero, so a padded batch gives each example the same result
it would get alone (up to the receptive field at the padding edge).
"""

import math

import keras
import tensorflow as tf


def serializable(cls):
    return keras.saving.register_keras_serializable(package="mmae")(cls)


def sinusoidal_positions(length, dim):
    """[length, dim] sinusoidal position encodings (Vaswani et al. 2017)."""
    positions = tf.cast(tf.range(length), tf.float32)[:, None]
    rates = tf.exp(-math.log(10000.0) * tf.range(0, dim, 2, dtype=tf.float32) / dim)
    angles = positions * rates[None, :]
    return tf.reshape(tf.stack([tf.sin(angles), tf.cos(angles)], axis=-1), [length, -1])[:, :dim]


@serializable
class Dropout(keras.layers.Dropout):
    """Keras's dropout with a mask at half the cost: 16 random bits an element.

    Keras draws a float32 uniform number for every element. Here each random
    32-bit word gives two 16-bit draws, each compared with the rate in units
    of 1/65536 (so the rate is the one asked for within 1.5e-5), and the kept
    elements are scaled by the inverse of the rate actually used: the same
    expectation as Keras's. The masks were a tenth of a training step's op
    time (bench/README.md, `profile_bench`).
    """

    def call(self, inputs, training=False):
        if not training or not 0 < self.rate < 1 or self.noise_shape is not None:
            return super().call(inputs, training=training)
        seed = self.seed_generator.next()
        if seed.dtype != tf.int32:  # the TensorFlow backend keeps int64 seed state
            seed = tf.cast(tf.math.floormod(seed, tf.int32.max - 1), tf.int32)
        size = tf.size(inputs)
        words = tf.random.stateless_uniform(
            [(size + 1) // 2], seed, minval=None, maxval=None, dtype=tf.uint32
        )
        draws = tf.reshape(tf.reshape(tf.bitcast(words, tf.uint16), [-1])[:size], tf.shape(inputs))
        threshold = min(max(round(self.rate * 65536), 1), 65535)
        keep = draws >= tf.constant(threshold, tf.uint16)
        scale = tf.cast(65536 / (65536 - threshold), inputs.dtype)
        return tf.where(keep, inputs * scale, tf.zeros_like(inputs))


@serializable
class ConvBlock(keras.layers.Layer):
    """Residual 1-D convolution -> ReLU -> layer norm -> dropout, masked."""

    def __init__(self, hidden_dim, kernel_size=5, dropout=0.1, dilation_rate=1, **kwargs):
        super().__init__(**kwargs)
        self.hidden_dim = hidden_dim
        self.kernel_size = kernel_size
        self.dropout = dropout
        self.dilation_rate = dilation_rate
        self.conv = keras.layers.Conv1D(
            hidden_dim,
            kernel_size,
            padding="same",
            dilation_rate=dilation_rate,
            dtype=self.dtype_policy,
        )
        self.norm = keras.layers.LayerNormalization(epsilon=1e-5, dtype=self.dtype_policy)
        self.drop = Dropout(dropout, dtype=self.dtype_policy)

    def build(self, input_shape):
        # tuple(): a shape read back from a saved build config is a list.
        self.conv.build(input_shape)
        self.norm.build(tuple(input_shape[:-1]) + (self.hidden_dim,))

    def call(self, inputs, mask, training=False):
        # expand_dims, not [..., None]: TFLite's builtin ops have no
        # StridedSlice with a new axis, which a mask of unknown shape (the
        # decoder's grouped one) would otherwise need.
        mask = tf.expand_dims(tf.cast(mask, inputs.dtype), -1)
        outputs = self.conv(inputs * mask)
        outputs = self.drop(self.norm(tf.nn.relu(outputs)), training=training)
        return (inputs + outputs) * mask

    def get_config(self):
        config = super().get_config()
        config.update(
            hidden_dim=self.hidden_dim,
            kernel_size=self.kernel_size,
            dropout=self.dropout,
            dilation_rate=self.dilation_rate,
        )
        return config


@serializable
class TransformerBlock(keras.layers.Layer):
    """FastSpeech's feed-forward Transformer block: self-attention, then a conv FFN."""

    def __init__(
        self, hidden_dim, num_heads=2, kernel_size=5, dropout=0.1, ffn_multiplier=2, **kwargs
    ):
        super().__init__(**kwargs)
        self.ffn_multiplier = ffn_multiplier
        self.hidden_dim = hidden_dim
        self.num_heads = num_heads
        self.kernel_size = kernel_size
        self.dropout = dropout
        self.attention = keras.layers.MultiHeadAttention(
            num_heads, hidden_dim // num_heads, dropout=dropout, dtype=self.dtype_policy
        )
        self.attention_norm = keras.layers.LayerNormalization(epsilon=1e-5, dtype=self.dtype_policy)
        self.ffn_in = keras.layers.Conv1D(
            ffn_multiplier * hidden_dim,
            kernel_size,
            padding="same",
            activation="relu",
            dtype=self.dtype_policy,
        )
        self.ffn_out = keras.layers.Conv1D(hidden_dim, 1, dtype=self.dtype_policy)
        self.ffn_norm = keras.layers.LayerNormalization(epsilon=1e-5, dtype=self.dtype_policy)
        self.drop = Dropout(dropout, dtype=self.dtype_policy)

    def build(self, input_shape):
        self.attention.build(input_shape, input_shape)
        self.attention_norm.build(input_shape)
        self.ffn_in.build(input_shape)
        self.ffn_out.build(tuple(input_shape[:-1]) + (self.ffn_multiplier * self.hidden_dim,))
        self.ffn_norm.build(input_shape)

    def call(self, inputs, mask, training=False):
        keep = tf.cast(mask, inputs.dtype)[..., None]
        attention_mask = tf.cast(mask[:, None, :], tf.bool)
        attended = self.attention(inputs, inputs, attention_mask=attention_mask, training=training)
        hidden = self.attention_norm(inputs + self.drop(attended, training=training)) * keep
        ffn = self.ffn_out(self.ffn_in(hidden))
        return self.ffn_norm(hidden + self.drop(ffn, training=training)) * keep

    def get_config(self):
        config = super().get_config()
        config.update(
            hidden_dim=self.hidden_dim,
            num_heads=self.num_heads,
            kernel_size=self.kernel_size,
            dropout=self.dropout,
            ffn_multiplier=self.ffn_multiplier,
        )
        return config


def alignment_from_durations(durations, max_frames):
    """One-hot frame-to-token alignment [batch, max_frames, tokens] from durations.

    The length regulator of FastSpeech as a matrix: `alignment @ latents`
    repeats each token's latent for its duration. `max_frames` may be a
    Python int (static, for XLA) or a scalar tensor.

    Args:
        durations: [batch, tokens] int32 frames per token (0 on padding).
        max_frames: number of output frames; frames past an example's total
            duration are all-zero rows.
    """
    durations = tf.cast(durations, tf.int32)
    ends = tf.cumsum(durations, axis=1)  # [B, T]
    starts = ends - durations
    frames = tf.range(max_frames, dtype=tf.int32)[None, :, None]  # [1, F, 1]
    inside = tf.logical_and(frames >= starts[:, None, :], frames < ends[:, None, :])
    return tf.cast(inside, tf.float32)


def frame_mask_from_durations(durations, max_frames):
    total = tf.reduce_sum(tf.cast(durations, tf.int32), axis=1)
    return tf.sequence_mask(total, max_frames, dtype=tf.float32)


@serializable
class LengthRegulator(keras.layers.Layer):
    """Token latents -> frame latents, each frame told where it sits within its token.

    FastSpeech's length regulator repeats a token's latent over its frames, so
    every frame of a token gets the same vector and the decoder must work out
    from the token edges how far into the sound it is. Here a learned
    projection of the frame's relative position within its token (a few
    sine/cosine harmonics of `(f - start + 0.5) / duration`) and of the
    token's log duration is added to the repeated latent, as durational
    HMM/parametric synthesizers feed frame position features to their
    acoustic models. The result lives in the shared latent space: the
    consistency loss pulls it toward the audio encoder's per-frame latents,
    which do vary within a token.

    The one-hot alignment `[B, F, T]` is the only input besides the latents,
    so training (hard MAS alignments) and inference (predicted durations)
    share the same code, and static shapes keep it XLA-friendly.
    """

    def __init__(self, latent_dim, num_harmonics=4, **kwargs):
        super().__init__(**kwargs)
        self.latent_dim = latent_dim
        self.num_harmonics = num_harmonics
        self.project = keras.layers.Dense(latent_dim, dtype=self.dtype_policy)

    def build(self, input_shape=None):
        self.project.build((None, None, 2 * self.num_harmonics + 1))

    def call(self, latent, hard_alignment):
        """latent [B, T, D], hard_alignment [B, F, T] 0/1 -> frame latents [B, F, D]."""
        hard = tf.cast(hard_alignment, tf.float32)
        durations = tf.reduce_sum(hard, axis=1)  # [B, T]
        starts = tf.cumsum(durations, axis=1, exclusive=True)
        frame_start = tf.linalg.matvec(hard, starts)  # [B, F]
        frame_duration = tf.linalg.matvec(hard, durations)
        inside = tf.cast(frame_duration > 0, tf.float32)
        frames = tf.cast(tf.range(tf.shape(hard)[1]), tf.float32)[None, :]
        position = (frames - frame_start + 0.5) / tf.maximum(frame_duration, 1.0)
        angles = (
            math.pi * position[..., None] * tf.range(1, self.num_harmonics + 1, dtype=tf.float32)
        )
        features = tf.concat(
            [tf.sin(angles), tf.cos(angles), tf.math.log1p(frame_duration)[..., None] / 3.0], -1
        )
        repeated = tf.matmul(tf.cast(hard, latent.dtype), latent)
        offset = (
            self.project(tf.cast(features, self.compute_dtype))
            * tf.cast(inside, self.compute_dtype)[..., None]
        )
        return repeated + tf.cast(offset, repeated.dtype)

    def get_config(self):
        config = super().get_config()
        config.update(latent_dim=self.latent_dim, num_harmonics=self.num_harmonics)
        return config


@serializable
class SpeakerEmbedding(keras.layers.Layer):
    """Speaker ids [B] -> a conditioning vector [B, hidden_dim]: an embedding, then a projection."""

    def __init__(self, num_speakers, speaker_dim, hidden_dim, **kwargs):
        super().__init__(**kwargs)
        self.num_speakers = num_speakers
        self.speaker_dim = speaker_dim
        self.hidden_dim = hidden_dim
        self.embedding = keras.layers.Embedding(num_speakers, speaker_dim, dtype=self.dtype_policy)
        self.project = keras.layers.Dense(hidden_dim, dtype=self.dtype_policy)

    def build(self, input_shape=None):
        self.embedding.build(input_shape)
        self.project.build((None, self.speaker_dim))

    def call(self, speaker_id):
        return self.project(self.embedding(speaker_id))

    def get_config(self):
        config = super().get_config()
        config.update(
            num_speakers=self.num_speakers,
            speaker_dim=self.speaker_dim,
            hidden_dim=self.hidden_dim,
        )
        return config
