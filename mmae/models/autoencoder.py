"""The cross-modal autoencoder: text and audio into one latent space, one decoder out.

    tokens --TextEncoder--> token latents --(durations)--> frame latents --+
                                                                           +--Decoder--> mel
    mel ----AudioEncoder--> frame latents ---------------------------------+

During training the durations come from the model's own aligner (soft
alignment, forward-sum loss, monotonic alignment search), so no external
aligner or teacher model is needed; at inference the duration predictor
supplies them.
"""

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from mmae import alignment, losses
from mmae.config import LossConfig
from mmae.layers import (
    LengthRegulator,
    SpeakerEmbedding,
    alignment_from_durations,
    frame_mask_from_durations,
    serializable,
)
from mmae.models.parts import Aligner, AudioEncoder, Decoder, DurationPredictor, TextEncoder


@serializable
class CrossModalAutoencoder(keras.Model):
    """Text and audio encoders sharing one latent space and one decoder.

    Args:
        vocab_size: number of text symbols.
        num_mels: mel channels.
        mel_mean, mel_std: per-channel statistics of the training data
            (dataset.json); the model works on normalized mels and returns
            log-mels in the data's own scale.
        num_speakers: > 1 adds a speaker embedding of `speaker_dim`.
        loss: the `LossConfig` (or its dict) that weighs the losses.

    Training (see `mmae.training`): `parts` names the model's parts, and
    `compute_losses(batch, objective=...)` computes one of its objectives:

    - "joint": every loss at once (both paths, consistency, alignment, durations);
    - "audio": the audio autoencoder alone (audio encoder, decoder);
    - "masked_audio": the same, reconstructing `mask_ratio` of the frames
      from the rest (self-supervised pretraining);
    - "text": the text side into the audio encoder's latent space, which
      only gives targets.

    Which parts an objective trains is the training regime's choice.
    """

    OBJECTIVES = ("joint", "audio", "masked_audio", "text")
    # What synthesis from text needs: the audio encoder and the aligner only train.
    inference_parts = (
        "text_encoder",
        "length_regulator",
        "duration_predictor",
        "decoder",
        "speakers",
    )

    def __init__(
        self,
        vocab_size,
        num_mels,
        mel_mean,
        mel_std,
        num_speakers=1,
        latent_dim=128,
        hidden_dim=192,
        num_heads=2,
        text_encoder_layers=4,
        audio_encoder_layers=3,
        decoder_layers=6,
        kernel_size=5,
        dropout=0.1,
        speaker_dim=64,
        aligner_dim=80,
        prior_scaling=1.0,
        duration_predictor_layers=2,
        duration_predictor_kernel_size=3,
        text_encoder_convs=2,
        ffn_multiplier=2,
        decoder_dilation_rates=(1, 2, 4),
        aligner_temperature=0.0005,
        aligner_kernel_size=3,
        position_harmonics=4,
        decoder_reduction=1,
        loss=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.num_mels = num_mels
        self.mel_mean = [float(x) for x in mel_mean]
        self.mel_std = [float(x) for x in mel_std]
        self.num_speakers = num_speakers
        self.latent_dim = latent_dim
        self.hidden_dim = hidden_dim
        self.num_heads = num_heads
        self.text_encoder_layers = text_encoder_layers
        self.audio_encoder_layers = audio_encoder_layers
        self.decoder_layers = decoder_layers
        self.kernel_size = kernel_size
        self.dropout = dropout
        self.speaker_dim = speaker_dim
        self.aligner_dim = aligner_dim
        self.prior_scaling = prior_scaling
        self.duration_predictor_layers = duration_predictor_layers
        self.duration_predictor_kernel_size = duration_predictor_kernel_size
        self.text_encoder_convs = text_encoder_convs
        self.ffn_multiplier = ffn_multiplier
        self.aligner_kernel_size = aligner_kernel_size
        self.decoder_dilation_rates = list(decoder_dilation_rates)
        self.aligner_temperature = aligner_temperature
        self.position_harmonics = position_harmonics
        self.decoder_reduction = decoder_reduction
        if loss is None:
            loss = LossConfig()
        self.loss = loss if isinstance(loss, LossConfig) else LossConfig(**loss)

        # What every convolutional part shares.
        blocks = dict(kernel_size=kernel_size, dropout=dropout, dtype=self.dtype_policy)
        self.text_encoder = TextEncoder(
            vocab_size,
            hidden_dim,
            latent_dim,
            num_layers=text_encoder_layers,
            num_heads=num_heads,
            num_convs=text_encoder_convs,
            ffn_multiplier=ffn_multiplier,
            name="text_encoder",
            **blocks,
        )
        self.length_regulator = LengthRegulator(
            latent_dim,
            num_harmonics=position_harmonics,
            name="length_regulator",
            dtype=self.dtype_policy,
        )
        self.audio_encoder = AudioEncoder(
            hidden_dim, latent_dim, num_layers=audio_encoder_layers, name="audio_encoder", **blocks
        )
        self.decoder = Decoder(
            hidden_dim,
            num_mels,
            num_layers=decoder_layers,
            dilation_rates=decoder_dilation_rates,
            reduction=decoder_reduction,
            name="decoder",
            **blocks,
        )
        # The aligner computes in float32 whatever the policy (see Aligner).
        self.aligner = Aligner(
            hidden_dim,
            aligner_dim,
            temperature=aligner_temperature,
            prior_scaling=prior_scaling,
            kernel_size=aligner_kernel_size,
            name="aligner",
        )
        self.duration_predictor = DurationPredictor(
            hidden_dim,
            num_layers=duration_predictor_layers,
            name="duration_predictor",
            **{**blocks, "kernel_size": duration_predictor_kernel_size},
        )
        # A speaker vector conditions the decoder only, so the shared latent
        # space itself stays speaker-independent.
        self.speakers = (
            SpeakerEmbedding(
                num_speakers, speaker_dim, hidden_dim, name="speakers", dtype=self.dtype_policy
            )
            if num_speakers > 1
            else None
        )

    def build(self, input_shape=None):
        """Creates every part's weights by running all losses on a one-clip dummy batch.

        The parts are used along several paths (text, audio, aligner), so no
        single call builds them all; saving and stage variable lists need them
        all to exist.
        """
        if self.built:
            return
        tokens, frames = 4, 8
        dummy = {
            "tokens": tf.ones([1, tokens], tf.int32),
            "num_tokens": tf.constant([tokens]),
            "mel": tf.zeros([1, frames, self.num_mels]),
            "num_frames": tf.constant([frames]),
            "speaker_id": tf.zeros([1], tf.int32),
            "token_mask": tf.ones([1, tokens]),
            "frame_mask": tf.ones([1, frames]),
        }
        self.compute_losses(dummy, objective="joint", training=False)
        self.built = True

    # -- the two encoders, the decoder ------------------------------------

    def normalize(self, mel):
        # In float32 whatever the policy: Keras casts a float16 model's inputs.
        return (tf.cast(mel, tf.float32) - tf.constant(self.mel_mean)) / tf.constant(self.mel_std)

    def denormalize(self, mel):
        return tf.cast(mel, tf.float32) * tf.constant(self.mel_std) + tf.constant(self.mel_mean)

    def encode_text(self, tokens, token_mask, training=False):
        """Returns (encoder states [B, T, H], latents [B, T, latent_dim])."""
        return self.text_encoder(tokens, token_mask, training=training)

    def encode_audio(self, mel, frame_mask, training=False):
        """Log-mels [B, F, M] -> latents [B, F, latent_dim]."""
        return self.audio_encoder(self.normalize(mel), frame_mask, training=training)

    def decode(self, latent, frame_mask, speaker_id=None, training=False):
        """Latents [B, F, latent_dim] -> normalized log-mels [B, F, M]."""
        condition = self.speakers(speaker_id) if self.speakers is not None else None
        return self.decoder(latent, frame_mask, condition, training=training)

    def align(self, batch):
        """log p(token | frame) [B, F, T] from the aligner.

        Its keys are the token embeddings, not the encoder's states (as in
        FastPitch): the alignment then depends on what each token is, not on
        a context the text encoder is still learning for the mel losses, and
        the two objectives do not pull the encoder against each other.
        """
        embedded = self.text_encoder.embedding(batch["tokens"])
        return self.aligner(embedded, batch["mel"], batch["num_tokens"], batch["num_frames"])

    def call(self, inputs, training=False):
        """Autoencodes `inputs["mel"]` (for Keras build/summary); see compute_losses."""
        latent = self.encode_audio(inputs["mel"], inputs["frame_mask"], training)
        return self.denormalize(
            self.decode(latent, inputs["frame_mask"], inputs.get("speaker_id"), training)
        )

    # -- training ----------------------------------------------------------

    @property
    def parts(self):
        """{name: layer} of every part (None for the speaker table of a one-speaker model)."""
        names = ("text_encoder", "length_regulator", "audio_encoder", "decoder", "aligner")
        return {name: getattr(self, name) for name in names + ("duration_predictor", "speakers")}

    def compute_losses(self, batch, *, objective="joint", step=0, training=True, mask_ratio=0.0):
        """The losses of one objective on a padded batch; "loss" is their weighted sum.

        Args:
            batch: a padded batch of `mmae.datasets.make_dataset`.
            objective: one of `OBJECTIVES`.
            step: steps since the objective's training began (ramps the
                binarization loss in).
            mask_ratio: the fraction of frames hidden by "masked_audio".
        """
        if objective not in self.OBJECTIVES:
            raise ValueError(f"Unknown objective {objective!r}; this model has {self.OBJECTIVES}.")
        weights = self.loss
        frame_mask, token_mask = batch["frame_mask"], batch["token_mask"]
        speaker_id = batch["speaker_id"]
        target = self.normalize(batch["mel"]) * frame_mask[..., None]
        results = {}
        total = tf.constant(0.0)
        # The audio path of a joint training step may take only the batch's first clips.
        clips = None
        if objective == "joint" and training and weights.audio_fraction < 1.0:
            batch_size = tf.cast(tf.shape(frame_mask)[0], tf.float32)
            clips = tf.cast(tf.math.ceil(batch_size * weights.audio_fraction), tf.int32)

        def audio_part(tensor):
            return tensor if clips is None else tensor[:clips]

        audio_mask = audio_part(frame_mask)

        if objective != "text":
            audio_in = audio_part(batch["mel"])
            if objective == "masked_audio" and training:
                audio_in = self._mask_frames(audio_in, frame_mask, mask_ratio)
            audio_latent = self.encode_audio(audio_in, audio_mask, training)
            audio_mel = self.decode(audio_latent, audio_mask, audio_part(speaker_id), training)
            results["mel_audio"] = losses.masked_l1(audio_mel, audio_part(target), audio_mask)
            total += weights.mel_audio_weight * results["mel_audio"]
            if objective != "joint":
                results["loss"] = total
                return results
        else:  # The audio side only gives targets.
            audio_latent = tf.stop_gradient(self.encode_audio(batch["mel"], frame_mask, False))

        hidden, text_latent = self.encode_text(batch["tokens"], token_mask, training)
        log_attention = self.align(batch)
        hard = tf.stop_gradient(
            alignment.monotonic_alignment_search(
                log_attention, batch["num_frames"], batch["num_tokens"]
            )
        )
        durations = alignment.durations_from_alignment(hard, batch["num_tokens"])
        frame_text_latent = self.length_regulator(text_latent, hard)
        text_mel = self.decode(frame_text_latent, frame_mask, speaker_id, training)

        results["mel_text"] = losses.masked_l1(text_mel, target, frame_mask)
        results["consistency"] = losses.latent_consistency(
            audio_part(frame_text_latent), audio_latent, audio_mask
        )
        results["forward_sum"] = alignment.forward_sum_loss(
            log_attention, batch["num_frames"], batch["num_tokens"]
        )
        results["binarization"] = alignment.binarization_loss(
            hard, log_attention, batch["num_frames"]
        )
        predicted = self.duration_predictor(tf.stop_gradient(hidden), token_mask, training=training)
        results["duration"] = losses.duration_loss(predicted, durations, token_mask)
        ramp = tf.clip_by_value(
            (tf.cast(step, tf.float32) - weights.binarization_start)
            / max(1.0, weights.binarization_ramp),
            0.0,
            1.0,
        )
        total += weights.mel_text_weight * results["mel_text"]
        total += weights.consistency_weight * results["consistency"]
        total += weights.forward_sum_weight * results["forward_sum"]
        total += ramp * weights.binarization_weight * results["binarization"]
        total += weights.duration_weight * results["duration"]
        results["loss"] = total
        return results

    def _mask_frames(self, mel, frame_mask, mask_ratio):
        """Replaces a random `mask_ratio` of frames with the data mean (zero once normalized)."""
        drop = tf.random.uniform(tf.shape(frame_mask)) < mask_ratio
        mean = tf.broadcast_to(tf.constant(self.mel_mean), tf.shape(mel))
        return tf.where(drop[..., None], mean, mel)

    # -- inference -----------------------------------------------------------

    def predict_durations(self, hidden, token_mask, speaking_rate=1.0):
        """Integer frames per token (>= 1 on real tokens) at a speaking-rate scale."""
        log_durations = self.duration_predictor(hidden, token_mask, training=False)
        frames = tf.round(tf.maximum(tf.exp(log_durations) - 1.0, 0.0) / speaking_rate)
        return tf.cast(tf.maximum(frames, 1.0) * token_mask, tf.int32)

    def synthesize_mel(
        self, tokens, num_tokens, speaker_id=None, speaking_rate=1.0, max_frames=None
    ):
        """Token ids [B, T] -> (log-mels [B, F, M], num_frames [B]).

        Args:
            max_frames: static output length (for XLA and export); by default
                the longest predicted duration in the batch.
        """
        token_mask = tf.sequence_mask(num_tokens, tf.shape(tokens)[1], dtype=tf.float32)
        hidden, latent = self.encode_text(tokens, token_mask)
        durations = self.predict_durations(hidden, token_mask, speaking_rate)
        num_frames = tf.reduce_sum(durations, axis=1)
        if max_frames is None:
            max_frames = tf.reduce_max(num_frames)
        else:
            num_frames = tf.minimum(num_frames, max_frames)
        expand = alignment_from_durations(durations, max_frames)
        frame_mask = frame_mask_from_durations(durations, max_frames)
        if speaker_id is None:
            speaker_id = tf.zeros(tf.shape(tokens)[:1], tf.int32)
        mel = self.decode(self.length_regulator(latent, expand), frame_mask, speaker_id)
        return self.denormalize(mel) * frame_mask[..., None], num_frames

    def teacher_forced_mel(self, batch):
        """Log-mels `[batch, frames, num_mels]` of the text path, lined up with `batch["mel"]`.

        The text is spoken with the durations the aligner finds in the
        recording (monotonic alignment search), so every frame matches the
        recording's: what a vocoder fine-tuned on this model's output learns
        from. Frames past an item's length are zero.
        """
        return self._teacher_forced(batch)[0] * batch["frame_mask"][..., None]

    def _teacher_forced(self, batch):
        _, text_latent = self.encode_text(batch["tokens"], batch["token_mask"])
        log_attention = self.align(batch)
        hard = alignment.monotonic_alignment_search(
            log_attention, batch["num_frames"], batch["num_tokens"]
        )
        latent = self.length_regulator(text_latent, hard)
        mel = self.denormalize(self.decode(latent, batch["frame_mask"], batch["speaker_id"]))
        return mel, log_attention, hard

    def display(self, batch):
        """First example's target, predictions from both paths, and alignment (eager)."""
        results = {}
        first = {k: v[:1] for k, v in batch.items()}
        frames, tokens = int(first["num_frames"][0]), int(first["num_tokens"][0])
        mel_text, log_attention, hard = self._teacher_forced(first)
        mel_audio = self(first)
        results["mel_target"] = first["mel"][0, :frames].numpy()
        results["mel_text"] = mel_text[0, :frames].numpy()
        results["mel_audio"] = mel_audio[0, :frames].numpy()
        results["alignment"] = np.exp(log_attention[0, :frames, :tokens].numpy())
        results["hard_alignment"] = hard[0, :frames, :tokens].numpy()
        return results

    def get_config(self):
        config = super().get_config()
        config.update(
            vocab_size=self.vocab_size,
            num_mels=self.num_mels,
            mel_mean=self.mel_mean,
            mel_std=self.mel_std,
            num_speakers=self.num_speakers,
            latent_dim=self.latent_dim,
            hidden_dim=self.hidden_dim,
            num_heads=self.num_heads,
            text_encoder_layers=self.text_encoder_layers,
            audio_encoder_layers=self.audio_encoder_layers,
            decoder_layers=self.decoder_layers,
            kernel_size=self.kernel_size,
            dropout=self.dropout,
            speaker_dim=self.speaker_dim,
            aligner_dim=self.aligner_dim,
            prior_scaling=self.prior_scaling,
            duration_predictor_layers=self.duration_predictor_layers,
            duration_predictor_kernel_size=self.duration_predictor_kernel_size,
            text_encoder_convs=self.text_encoder_convs,
            ffn_multiplier=self.ffn_multiplier,
            aligner_kernel_size=self.aligner_kernel_size,
            decoder_dilation_rates=self.decoder_dilation_rates,
            aligner_temperature=self.aligner_temperature,
            position_harmonics=self.position_harmonics,
            decoder_reduction=self.decoder_reduction,
            loss=dataclasses.asdict(self.loss),
        )
        return config
