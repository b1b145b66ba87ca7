"""Losses: pure functions of tensors, masked so padding never counts.

Each returns a scalar mean over the real (unpadded) entries of the batch.
The alignment losses (forward-sum, binarization) live in mmae.alignment.
"""

import tensorflow as tf


def masked_l1(predicted, target, frame_mask):
    """Mean absolute error over real frames and all channels.

    Args:
        predicted, target: [B, F, M].
        frame_mask: [B, F], 1 on real frames.
    """
    predicted, target = tf.cast(predicted, tf.float32), tf.cast(target, tf.float32)
    mask = tf.cast(frame_mask, tf.float32)[..., None]
    total = tf.reduce_sum(tf.abs(predicted - target) * mask)
    return total / tf.maximum(tf.reduce_sum(mask) * tf.cast(tf.shape(target)[-1], tf.float32), 1.0)


def masked_mse(predicted, target, frame_mask):
    """Mean squared error over real frames and all channels."""
    predicted, target = tf.cast(predicted, tf.float32), tf.cast(target, tf.float32)
    mask = tf.cast(frame_mask, tf.float32)[..., None]
    total = tf.reduce_sum(tf.square(predicted - target) * mask)
    return total / tf.maximum(tf.reduce_sum(mask) * tf.cast(tf.shape(target)[-1], tf.float32), 1.0)


def latent_consistency(text_latent, audio_latent, frame_mask, commitment=0.25):
    """Pulls the frame-rate text latent and the audio latent together.

    The text side moves toward the audio latent at full weight; the audio side
    moves toward the text latent at `commitment` weight (as in VQ-VAE), so the
    shared space is shaped by both without collapsing to what text alone
    predicts.
    """
    toward_audio = masked_mse(text_latent, tf.stop_gradient(audio_latent), frame_mask)
    toward_text = masked_mse(tf.stop_gradient(text_latent), audio_latent, frame_mask)
    return toward_audio + commitment * toward_text


def duration_loss(predicted_log_durations, durations, token_mask):
    """MSE between predicted log(1 + d) and the aligner's durations, over real tokens."""
    target = tf.math.log1p(tf.cast(durations, tf.float32))
    mask = tf.cast(token_mask, tf.float32)
    error = tf.square(tf.cast(predicted_log_durations, tf.float32) - target) * mask
    return tf.reduce_sum(error) / tf.maximum(tf.reduce_sum(mask), 1.0)
