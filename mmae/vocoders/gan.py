"""A neural vocoder with its discriminators and losses, as a model the trainer can train.

`VocoderGAN` follows the trainer's model protocol (`mmae.training.trainer`):
its parts are the generator and the discriminators, and `compute_losses`
has three objectives, which `vocoder_stages` puts in two stages:

    reconstruction  (generator)      mel L1 + multi-resolution STFT loss
    adversarial     discriminator    least-squares GAN loss on real and generated audio
                    generator        reconstruction + adversarial + feature matching

Batches hold aligned windows of a recording: `mel` `[batch, frames, mels]`,
`audio` `[batch, (frames - 1) * frame_step]` (the samples from the first frame
centre to the last, which is what the vocoder returns) and `num_frames`
(`mmae.datasets.segments`).

The losses, after HiFi-GAN (Kong et al. 2020) and Parallel WaveGAN (Yamamoto
et al. 2020):
- mel: mean |log-mel(output) - log-mel(recording)|, both computed by the
  features' own `MelSpectrogram`;
- STFT: for each FFT size, spectral convergence `||S - S'|| / ||S||` plus the
  mean |log S - log S'| of magnitudes;
- adversarial (least squares): the discriminator pushes real logits to 1 and
  generated ones to 0; the generator pushes generated logits to 1;
- feature matching: mean |features(real) - features(generated)| over every
  discriminator layer.
"""

import keras
import numpy as np
import tensorflow as tf

from mmae.audio.features import MelSpectrogram
from mmae.vocoders import build_vocoder
from mmae.vocoders.discriminators import (
    MultiPeriodDiscriminator,
    MultiResolutionDiscriminator,
    stft_magnitude,
)

OBJECTIVES = ("reconstruction", "discriminator", "generator")


class VocoderGAN(keras.Model):
    """A generator (`Vocoder`) with the discriminators and losses of `config.vocoder`.

    Args:
        config: a `mmae.config.Config`; its `audio` and `vocoder` sections are used.
        generator: the vocoder to train (default: `build_vocoder(config)`).
        **kwargs: forwarded to `keras.Model`.
    """

    def __init__(self, config, generator=None, **kwargs):
        super().__init__(**kwargs)
        self.settings = config.vocoder
        self.audio_config = config.audio
        self.generator = generator or build_vocoder(config)
        settings = self.settings
        self.period_discriminator = (
            MultiPeriodDiscriminator(settings.periods, settings.period_channels, name="mpd")
            if settings.periods
            else None
        )
        self.resolution_discriminator = (
            MultiResolutionDiscriminator(
                settings.resolution_fft_lengths, settings.resolution_channels, name="mrd"
            )
            if settings.resolution_fft_lengths
            else None
        )
        self.mel = MelSpectrogram.from_config_dataclass(config.audio, dtype="float32", name="mel")

    # {part name (as stages name it): attribute (as checkpoints key its weights)}.
    PART_ATTRIBUTES = {
        "generator": "generator",
        "mpd": "period_discriminator",
        "mrd": "resolution_discriminator",
    }

    @property
    def parts(self):
        return {part: getattr(self, attribute) for part, attribute in self.PART_ATTRIBUTES.items()}

    @property
    def discriminators(self):
        return [d for d in (self.period_discriminator, self.resolution_discriminator) if d]

    def call(self, log_mel, num_frames=None):
        return self.generator(log_mel, num_frames=num_frames)

    def compute_losses(self, batch, *, objective, step=0, training=False):
        if objective not in OBJECTIVES:
            raise ValueError(f"Unknown objective {objective!r}; choose from {OBJECTIVES}.")
        real = tf.cast(batch["audio"], tf.float32)
        fake = self.generator(batch["mel"], training=training)
        if objective == "discriminator":
            return self.discriminator_losses(real, tf.stop_gradient(fake))
        losses = self.reconstruction_losses(real, fake)
        if objective == "generator":
            losses.update(self.adversarial_losses(real, fake))
        settings = self.settings
        losses["loss"] = (
            settings.mel_weight * losses["mel_l1"]
            + settings.stft_weight * losses["stft"]
            + settings.adversarial_weight * losses.get("adversarial", 0.0)
            + settings.feature_matching_weight * losses.get("feature_matching", 0.0)
        )
        return losses

    def reconstruction_losses(self, real, fake):
        """`mel_l1`, `stft` (summed over FFT sizes), `spectral_convergence`, `log_stft_l1`."""
        mel_l1 = tf.reduce_mean(tf.abs(self.mel(fake) - self.mel(real)))
        convergence, log_l1 = 0.0, 0.0
        for fft_length in self.settings.stft_loss_fft_lengths:
            real_magnitude = stft_magnitude(real, fft_length)
            fake_magnitude = stft_magnitude(fake, fft_length)
            convergence += tf.norm(real_magnitude - fake_magnitude) / tf.norm(real_magnitude)
            log_l1 += tf.reduce_mean(tf.abs(tf.math.log(real_magnitude / fake_magnitude)))
        scale = 1.0 / max(1, len(self.settings.stft_loss_fft_lengths))
        return {
            "mel_l1": mel_l1,
            "stft": (convergence + log_l1) * scale,
            "spectral_convergence": convergence * scale,
            "log_stft_l1": log_l1 * scale,
        }

    def adversarial_losses(self, real, fake):
        """The generator's `adversarial` and `feature_matching` losses."""
        adversarial, matching = 0.0, 0.0
        for discriminator in self.discriminators:
            for (_, real_features), (fake_logits, fake_features) in zip(
                discriminator(real), discriminator(fake), strict=True
            ):
                adversarial += tf.reduce_mean(tf.square(1.0 - fake_logits))
                for real_map, fake_map in zip(real_features, fake_features, strict=True):
                    matching += tf.reduce_mean(tf.abs(tf.stop_gradient(real_map) - fake_map))
        return {"adversarial": adversarial, "feature_matching": matching}

    def discriminator_losses(self, real, fake):
        """Least-squares losses of every sub-discriminator, summed: `loss`, `real`, `fake`."""
        real_loss, fake_loss = 0.0, 0.0
        for discriminator in self.discriminators:
            for (real_logits, _), (fake_logits, _) in zip(
                discriminator(real), discriminator(fake), strict=True
            ):
                real_loss += tf.reduce_mean(tf.square(1.0 - real_logits))
                fake_loss += tf.reduce_mean(tf.square(fake_logits))
        return {"loss": real_loss + fake_loss, "real": real_loss, "fake": fake_loss}

    def mel_to_audio(self, log_mel):
        """The generator's waveform for one `[frames, mels]` log-mel (for TensorBoard)."""
        return self.generator(tf.constant(log_mel, tf.float32)).numpy()

    def display(self, batch):
        """The first example's input log-mel and the log-mel of the generated audio."""
        mel = batch["mel"][:1]
        frames = int(batch["num_frames"][0])
        fake = self.generator(mel)
        vocoded = self.mel(fake)[0].numpy()
        return {
            "mel_input": np.asarray(mel[0, :frames]),
            "vocoded_log_mel": vocoded[:frames],
            "vocoded_error": np.abs(vocoded[:frames] - np.asarray(mel[0, : vocoded.shape[0]])),
        }

    def build(self, input_shape=None):
        if not self.generator.built:
            self.generator.build()
        # One short window makes every discriminator's variables.
        waveform = tf.zeros([1, 4096])
        for discriminator in self.discriminators:
            discriminator(waveform)
        self.built = True
