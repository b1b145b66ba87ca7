"""Models: the cross-modal autoencoder, its parts, and the seed baseline.

`build_model(config, dataset_info)` makes the model a config asks for, with
the data's vocabulary, speakers and mel statistics.
"""

import dataclasses

from mmae.models.autoencoder import CrossModalAutoencoder
from mmae.models.baseline import SeedBaseline
from mmae.models.parts import Aligner, AudioEncoder, Decoder, DurationPredictor, TextEncoder

__all__ = [
    "Aligner",
    "AudioEncoder",
    "CrossModalAutoencoder",
    "Decoder",
    "DurationPredictor",
    "SeedBaseline",
    "TextEncoder",
    "build_model",
]


def build_model(config, dataset_info):
    """Builds the model of `config.model` for a prepared dataset.

    Args:
        config: a `mmae.config.Config`.
        dataset_info: the prepared directory's `dataset.json` contents
            (speakers, mel statistics, clip lengths).
    """
    model = config.model
    common = dict(
        vocab_size=config.text.vocab_size,
        num_mels=config.audio.num_mels,
        mel_mean=dataset_info["mel_mean"],
        mel_std=dataset_info["mel_std"],
    )
    if model.architecture == "seed_baseline":
        lengths = dataset_info["splits"]["train"]["lengths"]
        frames = sum(row[1] for row in lengths)
        tokens = sum(row[2] for row in lengths)
        baseline = SeedBaseline(frames_per_token=frames / max(tokens, 1), **common)
        baseline.build()
        return baseline
    sizes = dataclasses.asdict(model)
    sizes.pop("architecture")
    autoencoder = CrossModalAutoencoder(
        num_speakers=max(1, len(dataset_info["speakers"])),
        loss=config.loss,
        **common,
        **sizes,
    )
    autoencoder.build()
    return autoencoder
