"""The seed document's system, kept as the floor every quality benchmark compares against.

The seed trains a dense Encoder(128, 64) / Decoder(64, 128, out) with a
mean-squared-error GradientTape step. Here it runs frame by frame on real
features: each mel frame's input is the one-hot symbol found by stretching
the text uniformly over the frames (no alignment is learned), and at
inference every token lasts the training data's mean frames per token.
"""

import keras
import tensorflow as tf

from mmae import losses
from mmae.layers import serializable


@serializable
class SeedBaseline(keras.Model):
    """Dense frame-by-frame text-to-mel model of the seed document."""

    # One voice: the seed's model has no speaker input.
    num_speakers = 1
    OBJECTIVES = ("joint",)
    inference_parts = ("encoder", "decoder")

    def __init__(self, vocab_size, num_mels, mel_mean, mel_std, frames_per_token=5.0, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.num_mels = num_mels
        self.mel_mean = [float(x) for x in mel_mean]
        self.mel_std = [float(x) for x in mel_std]
        self.frames_per_token = float(frames_per_token)
        # The seed's Encoder(128, 64) and Decoder(64, 128, out), as written there.
        self.encoder = keras.Sequential(
            [
                keras.layers.Dense(128, activation="relu", dtype=self.dtype_policy),
                keras.layers.Dense(64, activation="relu", dtype=self.dtype_policy),
            ],
            name="encoder",
        )
        self.decoder = keras.Sequential(
            [
                keras.layers.Dense(64, activation="relu", dtype=self.dtype_policy),
                keras.layers.Dense(128, activation="relu", dtype=self.dtype_policy),
                keras.layers.Dense(num_mels, dtype=self.dtype_policy),
            ],
            name="decoder",
        )

    def build(self, input_shape=None):
        self.encoder.build((None, None, self.vocab_size))
        self.decoder.build((None, None, 64))
        self.built = True

    def stretched_text(self, tokens, num_tokens, num_frames, max_frames):
        """One-hot [B, F, vocab]: frame f reads token floor(f * T_b / F_b)."""
        frames = tf.cast(tf.range(max_frames), tf.float32)[None, :]
        ratio = (
            tf.cast(num_tokens, tf.float32)[:, None]
            / tf.cast(tf.maximum(num_frames, 1), tf.float32)[:, None]
        )
        index = tf.minimum(
            tf.cast(frames * ratio, tf.int32), tf.maximum(num_tokens, 1)[:, None] - 1
        )
        symbols = tf.gather(tokens, index, batch_dims=1)
        return tf.one_hot(symbols, self.vocab_size)

    def call(self, inputs, training=False):
        one_hot = self.stretched_text(
            inputs["tokens"], inputs["num_tokens"], inputs["num_frames"], tf.shape(inputs["mel"])[1]
        )
        return self.decoder(self.encoder(one_hot))

    @property
    def parts(self):
        return {"encoder": self.encoder, "decoder": self.decoder}

    def compute_losses(self, batch, *, objective="joint", step=0, training=True):
        if objective not in self.OBJECTIVES:
            raise ValueError(f"The seed baseline has one objective ('joint'), not {objective!r}.")
        target = (batch["mel"] - tf.constant(self.mel_mean)) / tf.constant(self.mel_std)
        predicted = self(batch, training=training)
        target = target * batch["frame_mask"][..., None]
        mse = losses.masked_mse(predicted, target, batch["frame_mask"])
        # The seed's loss is the MSE; the L1 is logged to compare with mmae's mel_text.
        l1 = losses.masked_l1(predicted, target, batch["frame_mask"])
        return {"loss": mse, "mel_text_mse": mse, "mel_text": l1}

    def synthesize_mel(
        self, tokens, num_tokens, speaker_id=None, speaking_rate=1.0, max_frames=None
    ):
        num_frames = tf.cast(
            tf.round(tf.cast(num_tokens, tf.float32) * self.frames_per_token / speaking_rate),
            tf.int32,
        )
        if max_frames is None:
            max_frames = tf.reduce_max(num_frames)
        num_frames = tf.minimum(num_frames, max_frames)
        one_hot = self.stretched_text(tokens, num_tokens, num_frames, max_frames)
        mask = tf.sequence_mask(num_frames, max_frames, dtype=tf.float32)[..., None]
        mel = tf.cast(self.decoder(self.encoder(one_hot)), tf.float32)
        mel = mel * tf.constant(self.mel_std) + tf.constant(self.mel_mean)
        return mel * mask, num_frames

    def display(self, batch):
        first = {k: v[:1] for k, v in batch.items()}
        frames = int(first["num_frames"][0])
        predicted = tf.cast(self(first), tf.float32) * tf.constant(self.mel_std)
        predicted += tf.constant(self.mel_mean)
        return {
            "mel_target": first["mel"][0, :frames].numpy(),
            "mel_text": predicted[0, :frames].numpy(),
        }

    def get_config(self):
        config = super().get_config()
        config.update(
            vocab_size=self.vocab_size,
            num_mels=self.num_mels,
            mel_mean=self.mel_mean,
            mel_std=self.mel_std,
            frames_per_token=self.frames_per_token,
        )
        return config
