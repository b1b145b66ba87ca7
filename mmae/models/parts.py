"""The parts of the cross-modal autoencoder: two encoders into one latent
space, one decoder out of it, the aligner and the duration predictor."""

import keras
import tensorflow as tf

from mmae import alignment
from mmae.layers import ConvBlock, TransformerBlock, serializable, sinusoidal_positions


@serializable
class TextEncoder(keras.layers.Layer):
    """Token ids -> one latent vector per token.

    Embedding plus sinusoidal positions, two convolution blocks for local
    context (letters -> sounds), then Transformer blocks for the sentence.
    """

    def __init__(
        self,
        vocab_size,
        hidden_dim,
        latent_dim,
        num_layers=4,
        num_heads=2,
        kernel_size=5,
        dropout=0.1,
        num_convs=2,
        ffn_multiplier=2,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_convs = num_convs
        self.ffn_multiplier = ffn_multiplier
        self.vocab_size = vocab_size
        self.hidden_dim = hidden_dim
        self.latent_dim = latent_dim
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.kernel_size = kernel_size
        self.dropout = dropout
        self.embedding = keras.layers.Embedding(vocab_size, hidden_dim, dtype=self.dtype_policy)
        self.convs = [
            ConvBlock(hidden_dim, kernel_size, dropout, dtype=self.dtype_policy)
            for _ in range(num_convs)
        ]
        self.blocks = [
            TransformerBlock(
                hidden_dim, num_heads, kernel_size, dropout, ffn_multiplier, dtype=self.dtype_policy
            )
            for _ in range(num_layers)
        ]
        self.to_latent = keras.layers.Dense(latent_dim, dtype=self.dtype_policy)

    def call(self, tokens, mask, training=False):
        """Returns (hidden [B, T, hidden_dim], latent [B, T, latent_dim])."""
        hidden = self.embedding(tokens)
        positions = sinusoidal_positions(tf.shape(tokens)[1], self.hidden_dim)
        hidden = hidden + tf.cast(positions, hidden.dtype)[None]
        for block in self.convs + self.blocks:
            hidden = block(hidden, mask, training=training)
        latent = self.to_latent(hidden) * tf.cast(mask, hidden.dtype)[..., None]
        return hidden, latent

    def get_config(self):
        config = super().get_config()
        config.update(
            vocab_size=self.vocab_size,
            hidden_dim=self.hidden_dim,
            latent_dim=self.latent_dim,
            num_layers=self.num_layers,
            num_heads=self.num_heads,
            kernel_size=self.kernel_size,
            dropout=self.dropout,
            num_convs=self.num_convs,
            ffn_multiplier=self.ffn_multiplier,
        )
        return config


@serializable
class AudioEncoder(keras.layers.Layer):
    """Normalized log-mel frames -> one latent vector per frame."""

    def __init__(self, hidden_dim, latent_dim, num_layers=3, kernel_size=5, dropout=0.1, **kwargs):
        super().__init__(**kwargs)
        self.hidden_dim = hidden_dim
        self.latent_dim = latent_dim
        self.num_layers = num_layers
        self.kernel_size = kernel_size
        self.dropout = dropout
        self.project = keras.layers.Dense(hidden_dim, dtype=self.dtype_policy)
        self.blocks = [
            ConvBlock(hidden_dim, kernel_size, dropout, dtype=self.dtype_policy)
            for _ in range(num_layers)
        ]
        self.to_latent = keras.layers.Dense(latent_dim, dtype=self.dtype_policy)

    def call(self, mel, mask, training=False):
        hidden = self.project(mel)
        for block in self.blocks:
            hidden = block(hidden, mask, training=training)
        return self.to_latent(hidden) * tf.cast(mask, hidden.dtype)[..., None]

    def get_config(self):
        config = super().get_config()
        config.update(
            hidden_dim=self.hidden_dim,
            latent_dim=self.latent_dim,
            num_layers=self.num_layers,
            kernel_size=self.kernel_size,
            dropout=self.dropout,
        )
        return config


@serializable
class Decoder(keras.layers.Layer):
    """A latent sequence at frame rate -> normalized log-mel frames.

    The same decoder reads text latents (repeated over each token's frames)
    and audio latents: that is what makes the model a cross-modal
    autoencoder. Dilated convolutions see about half a second of context, so
    it can shape the frames within a token from where the token's edges are.

    With `reduction` r > 1 the decoder reads r frames' latents as one
    position and writes r frames from it (Tacotron's reduction factor): its
    blocks run at 1/r of the frame rate, for 1/r of the arithmetic, and see r
    times as far. The frames are padded to a multiple of r and cut back.
    """

    def __init__(
        self,
        hidden_dim,
        num_mels,
        num_layers=6,
        kernel_size=5,
        dropout=0.1,
        dilation_rates=(1, 2, 4),
        reduction=1,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.reduction = int(reduction)
        self.dilation_rates = tuple(dilation_rates)
        self.hidden_dim = hidden_dim
        self.num_mels = num_mels
        self.num_layers = num_layers
        self.kernel_size = kernel_size
        self.dropout = dropout
        self.project = keras.layers.Dense(hidden_dim, dtype=self.dtype_policy)
        self.blocks = [
            ConvBlock(
                hidden_dim,
                kernel_size,
                dropout,
                dilation_rate=self.dilation_rates[i % len(self.dilation_rates)],
                dtype=self.dtype_policy,
            )
            for i in range(num_layers)
        ]
        self.to_mel = keras.layers.Dense(self.reduction * num_mels, dtype=self.dtype_policy)

    def call(self, latent, mask, condition=None, training=False):
        frame_mask = mask
        if self.reduction > 1:
            latent, mask = self._group(latent), self._group_mask(mask)
        hidden = self.project(latent)
        if condition is not None:
            hidden = hidden + condition[:, None, :]
        for block in self.blocks:
            hidden = block(hidden, mask, training=training)
        mel = self.to_mel(hidden)
        if self.reduction > 1:
            frames = tf.shape(frame_mask)[1]
            mel = tf.reshape(mel, [tf.shape(mel)[0], -1, self.num_mels])[:, :frames]
        return mel * tf.cast(frame_mask, mel.dtype)[..., None]

    def _pad_frames(self, tensor):
        """Pads axis 1 with zeros to a multiple of the reduction factor."""
        frames = tf.shape(tensor)[1]
        extra = (-frames) % self.reduction
        paddings = [[0, 0], [0, extra]] + [[0, 0]] * (len(tensor.shape) - 2)
        return tf.pad(tensor, paddings)

    def _group(self, latent):
        """[B, F, D] -> [B, ceil(F / r), r * D]."""
        grouped = self._pad_frames(latent)
        return tf.reshape(grouped, [tf.shape(grouped)[0], -1, self.reduction * latent.shape[-1]])

    def _group_mask(self, mask):
        """[B, F] -> [B, ceil(F / r)]: a position is real when any of its frames is."""
        grouped = self._pad_frames(mask)
        return tf.reduce_max(
            tf.reshape(grouped, [tf.shape(grouped)[0], -1, self.reduction]), axis=-1
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            hidden_dim=self.hidden_dim,
            num_mels=self.num_mels,
            num_layers=self.num_layers,
            kernel_size=self.kernel_size,
            dropout=self.dropout,
            dilation_rates=list(self.dilation_rates),
            reduction=self.reduction,
        )
        return config


@serializable
class Aligner(keras.layers.Layer):
    """Soft text-to-frame alignment from distances between two small encoders.

    As in "One TTS Alignment To Rule Them All" (Badlani et al. 2021): tokens
    and mel frames are embedded by their own small conv stacks, the
    alignment score is the negative squared distance, and a static
    beta-binomial prior keeps early training near the diagonal.
    """

    def __init__(
        self,
        hidden_dim,
        aligner_dim=80,
        temperature=0.0005,
        prior_scaling=1.0,
        kernel_size=3,
        **kwargs,
    ):
        # Distances, log-softmax and the forward-sum recursion need float32
        # whatever the global mixed-precision policy.
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.hidden_dim = hidden_dim
        self.aligner_dim = aligner_dim
        self.temperature = temperature
        self.prior_scaling = prior_scaling
        self.kernel_size = kernel_size
        self.text_convs = [
            keras.layers.Conv1D(
                2 * aligner_dim,
                kernel_size,
                padding="same",
                activation="relu",
                dtype=self.dtype_policy,
            ),
            keras.layers.Conv1D(aligner_dim, 1, dtype=self.dtype_policy),
        ]
        self.mel_convs = [
            keras.layers.Conv1D(
                2 * aligner_dim,
                kernel_size,
                padding="same",
                activation="relu",
                dtype=self.dtype_policy,
            ),
            keras.layers.Conv1D(aligner_dim, 1, activation="relu", dtype=self.dtype_policy),
            keras.layers.Conv1D(aligner_dim, 1, dtype=self.dtype_policy),
        ]

    def call(self, text_embedding, mel, num_tokens, num_frames):
        """Returns log_attention [B, F, T]: log p(token | frame), prior included."""
        keys = tf.cast(text_embedding, tf.float32)
        for conv in self.text_convs:
            keys = conv(keys)
        queries = tf.cast(mel, tf.float32)
        for conv in self.mel_convs:
            queries = conv(queries)
        # Squared distance |q|^2 - 2 q.k + |k|^2, [B, F, T].
        distance = (
            tf.reduce_sum(queries**2, -1)[:, :, None]
            - 2.0 * tf.matmul(queries, keys, transpose_b=True)
            + tf.reduce_sum(keys**2, -1)[:, None, :]
        )
        log_prior = alignment.beta_binomial_prior(
            num_frames,
            num_tokens,
            tf.shape(mel)[1],
            tf.shape(text_embedding)[1],
            self.prior_scaling,
        )
        return alignment.soft_alignment(
            -self.temperature * distance, num_frames, num_tokens, log_prior=log_prior
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            hidden_dim=self.hidden_dim,
            aligner_dim=self.aligner_dim,
            temperature=self.temperature,
            prior_scaling=self.prior_scaling,
            kernel_size=self.kernel_size,
        )
        return config


@serializable
class DurationPredictor(keras.layers.Layer):
    """Text encoder states -> log(1 + frames) per token."""

    def __init__(self, hidden_dim, num_layers=2, kernel_size=3, dropout=0.1, **kwargs):
        super().__init__(**kwargs)
        self.hidden_dim = hidden_dim
        self.num_layers = num_layers
        self.kernel_size = kernel_size
        self.dropout = dropout
        self.blocks = [
            ConvBlock(hidden_dim, kernel_size, dropout, dtype=self.dtype_policy)
            for _ in range(num_layers)
        ]
        self.out = keras.layers.Dense(1, dtype="float32")

    def call(self, hidden, mask, training=False):
        for block in self.blocks:
            hidden = block(hidden, mask, training=training)
        return self.out(hidden)[..., 0] * tf.cast(mask, tf.float32)

    def get_config(self):
        config = super().get_config()
        config.update(
            hidden_dim=self.hidden_dim,
            num_layers=self.num_layers,
            kernel_size=self.kernel_size,
            dropout=self.dropout,
        )
        return config
