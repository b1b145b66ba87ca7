"""Starting an acoustic run from a trained model's weights: a new voice, fine-tuned.

`mmae train --init-from SOURCE` builds the run's model as usual and then
assigns it the weights of SOURCE: another training run (every part: text and
audio encoders, aligner, duration predictor, decoder) or a pretrained pack
such as the bundled `flite_slt` (the parts synthesis needs; the audio encoder
and the aligner start fresh). The new run then trains on its own data, with
its own mel statistics, schedule and steps, from that starting point: the
model already reads phonemes and speaks, and learns the new voice.

SOURCE must have the run's model sizes, symbol set and audio features. A
speaker table is taken only when both have the same number of speakers.
Resuming the new run restores its own checkpoint over these weights.
"""

import json
import logging
import os

import tensorflow as tf

from mmae import pretrained, runs
from mmae.config import Config, audio_differences, setting_differences
from mmae.weights import CheckpointError, load_weights

logger = logging.getLogger(__name__)


def warm_start_model_fn(source, run_dir=None, model_fn=None, report=logger.info):
    """A `model_fn` for `mmae.training.train` that starts the model from `source`.

    Args:
        source: an acoustic training run directory, a pretrained pack's
            directory, or the name of a bundled pack ("flite_slt").
        run_dir: the new run's directory; once it holds a checkpoint the run
            resumes from that, and `source` is neither read nor needed.
        model_fn: builds the model (default: `mmae.models.build_model`).
        report: called with a line saying what was taken (`print` in the CLI).
    """
    resuming = run_dir is not None and bool(runs.checkpoints(os.path.join(run_dir, "checkpoints")))
    if not resuming:
        source = resolve(source)  # a wrong path fails now, before the data is read

    def build(config, dataset_info):
        if model_fn is None:
            from mmae.models import build_model

            model = build_model(config, dataset_info)
        else:
            model = model_fn(config, dataset_info)
        if not resuming:
            initialize(model, config, source, report)
        return model

    return build


def resolve(source):
    """The directory of `source`: a run, a pack, or a bundled pack's name."""
    if tf.io.gfile.exists(os.path.join(source, "config.yaml")) and not runs.is_vocoder(source):
        return source
    try:
        return pretrained.path_of(source)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"--init-from {source}: not an acoustic training run nor a pretrained model "
            f"(bundled: {', '.join(pretrained.available()) or 'none'})."
        ) from None


def initialize(model, config, source, report=logger.info):
    """Assigns `source`'s weights to `model` (built from `config`); returns the parts taken.

    Raises:
        ValueError: `source` has another symbol set or other audio features.
        CheckpointError: its weights do not fit the model (another size);
            the message names the model settings that differ.
    """
    source_config = Config.load(os.path.join(source, "config.yaml"))
    problems = setting_differences(
        source_config.text, config.text, "text", ("tokenizer", "symbol_set", "vocab_size")
    )
    problems += audio_differences(source_config.audio, config.audio)
    if problems:
        raise ValueError(
            f"{source} cannot start this run: it reads other tokens or speaks other features "
            f"({'; '.join(problems)}; the source's value first)."
        )
    packed = runs.is_pretrained(source)
    model_parts = getattr(model, "parts", None)
    if model_parts is None:  # a model without named parts takes every weight
        parts = None
    else:
        parts = [name for name, layer in model_parts.items() if layer is not None]
        if packed:
            parts = [name for name in parts if name in model.inference_parts]
        if "speakers" in parts and _num_speakers(source) != getattr(model, "num_speakers", None):
            parts.remove("speakers")
    try:
        if packed:
            load_weights(model, os.path.join(source, runs.PRETRAINED_WEIGHTS), parts=parts)
        else:
            runs.restore_weights(model, source, parts=parts)
    except CheckpointError as error:
        sizes = setting_differences(source_config.model, config.model, "model")
        raise CheckpointError(
            f"{source} cannot start this run: its weights do not fit this model"
            + (f" ({'; '.join(sizes)}; the source's value first)" if sizes else "")
            + f". {error}"
        ) from None
    fresh = sorted(
        name
        for name, layer in (model_parts or {}).items()
        if layer is not None and name not in parts
    )
    report(
        f"Starting from {source}: "
        + (", ".join(parts) if parts is not None else "every weight")
        + (f" (the {', '.join(fresh)} start fresh)" if fresh else "")
        + "."
    )
    return parts


def _num_speakers(source):
    with tf.io.gfile.GFile(os.path.join(source, "dataset.json")) as f:
        return max(1, len(json.load(f)["speakers"]))
