"""`mmae train-vocoder`: a neural vocoder trained by the same trainer as the acoustic model.

The run is an ordinary run directory (config, checkpoints with exact-step
resume, metrics, TensorBoard, budgets, the non-finite guard): only the
model (`mmae.vocoders.gan.VocoderGAN`), its stages and its batches
(`mmae.datasets.segments`) differ. The config is the prepared data's, with a
vocoder preset (`mmae/configs/vocoder.yaml` by default) laid over it, then
`--set` overrides; so the vocoder always matches the data's features.

Stages (`vocoder_stages`):

    reconstruction  steps [0, vocoder.adversarial_start): the generator alone
    adversarial     the rest: a discriminator update, then a generator update

Example:

>>> config = vocoder_config("prepared/slt1600", overrides=["train.steps=20000"])
>>> summary = train_vocoder(config, "prepared/slt1600", "runs/vocoder")
"""

import os

import tensorflow as tf

from mmae.config import Config
from mmae.datasets.segments import make_segment_dataset
from mmae.training.presets import layered_config
from mmae.training.regimes import Stage, Update
from mmae.training.trainer import train
from mmae.vocoders.gan import VocoderGAN

__all__ = ["train_vocoder", "vocoder_config", "vocoder_stages"]

DEFAULT_PRESET = "vocoder"


def vocoder_config(data_dir, preset=None, overrides=(), run_dir=None):
    """The config of a vocoder run on `data_dir`: the data's, the preset over it, then overrides.

    Args:
        data_dir: a prepared directory (its `dataset.json` holds its config).
        preset: a preset name or YAML/JSON file of `train:` and `vocoder:`
            settings. Default: the stored config of the run in `run_dir` if
            there is one (a resume), else `DEFAULT_PRESET`.
        overrides: `"section.key=value"` strings.
        run_dir: the run directory, to resume with its stored config.
    """
    return layered_config(data_dir, DEFAULT_PRESET, preset, overrides, run_dir)


def vocoder_stages(config):
    """The reconstruction and adversarial stages of `config.vocoder` over `train.steps`."""
    steps, settings = config.train.steps, config.vocoder
    start = min(max(0, settings.adversarial_start), steps)
    adversarial = bool(settings.periods or settings.resolution_fft_lengths)
    if not adversarial:
        start = steps
    stages = []
    if start > 0:
        stages.append(
            Stage("reconstruction", 0, start, (Update("reconstruction", ("generator",)),))
        )
    if start < steps:
        discriminators = tuple(
            name
            for name, present in (
                ("mpd", settings.periods),
                ("mrd", settings.resolution_fft_lengths),
            )
            if present
        )
        stages.append(
            Stage(
                "adversarial",
                start,
                steps,
                (Update("discriminator", discriminators), Update("generator", ("generator",))),
            )
        )
    return stages


def train_vocoder(config, data_dir, run_dir, init_from=None, **kwargs):
    """Trains (or resumes) a vocoder run; returns `mmae.training.train`'s summary.

    Args:
        config: from `vocoder_config` (a stored run's own config wins on resume).
        data_dir: prepared with `data.store_audio=true` (or by
            `mmae.datasets.predicted.predict_mels`, to fine-tune on an
            acoustic model's output).
        run_dir: the run directory.
        init_from: a vocoder run (generator and discriminators) or pack
            (generator) to start from, for fine-tuning; its architecture must
            be `config`'s. Ignored when the run resumes from its own checkpoint.
        **kwargs: forwarded to `train` (`progress`, `max_steps`,
            `time_budget_s`, `cpu_budget_s`, `strategy`, `tpu`, ...).
    """

    def build(config, dataset_info):
        del dataset_info  # the vocoder needs only the features
        model = VocoderGAN(config, name="vocoder_gan")
        model.build()
        if init_from:
            _initialize(model, config, init_from)
        return model

    return train(
        config,
        data_dir,
        run_dir,
        model_fn=build,
        stages=vocoder_stages,
        dataset_fn=make_segment_dataset,
        **kwargs,
    )


def _initialize(model, config, source):
    """Loads `source`'s weights into the new run's model (a resume overwrites them)."""
    from mmae import runs
    from mmae.config import audio_differences

    source_config = Config.load(os.path.join(source, "config.yaml"))
    if source_config.vocoder.architecture != config.vocoder.architecture or any(
        getattr(source_config.vocoder, key) != getattr(config.vocoder, key)
        for key in ("dim", "intermediate_dim", "num_blocks", "kernel_size")
    ):
        raise ValueError(
            f"{source} is a vocoder of another architecture or size than this run's "
            "(vocoder.dim, intermediate_dim, num_blocks, kernel_size)."
        )
    differences = audio_differences(source_config.audio, config.audio)
    if differences:
        raise ValueError(f"{source} was trained on other features: " + "; ".join(differences))
    if runs.is_vocoder(source) and not tf.io.gfile.exists(
        os.path.join(source, runs.PRETRAINED_WEIGHTS + ".index")
    ):
        # Checkpoints key weights by attribute path ("period_discriminator/..."),
        # not by the part names the stages use ("mpd").
        parts = [
            attribute
            for attribute in VocoderGAN.PART_ATTRIBUTES.values()
            if getattr(model, attribute) is not None
        ]
        runs.restore_weights(model, source, parts=parts)
    else:
        model.generator.set_weights(runs.load_vocoder(source)[1].get_weights())
