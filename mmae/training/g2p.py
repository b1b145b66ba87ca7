"""`mmae train-g2p`: the grapheme-to-phoneme model, trained by the same trainer as the others.

The run is an ordinary run directory (config, checkpoints with exact-step
resume, metrics, TensorBoard with the CTC posteriors of a held-out word,
budgets, the non-finite guard); only the model (`mmae.text.g2p.G2P`), its
one stage and its batches (`mmae.datasets.words`) differ. `init_from` starts
it from a trained G2P (a run, or a packed frontend such as the bundled one),
to fine-tune on a larger lexicon instead of training from nothing. The config is the
prepared lexicon's (symbol set, voice), with a G2P preset
(`mmae/configs/g2p.yaml`) laid over it, then `--set` overrides. Validation
logs the greedy decoding's phoneme and word error rates on the held-out
words.

Example:

>>> config = g2p_config("prepared/lexicon")
>>> summary = train_g2p(config, "prepared/lexicon", "runs/g2p")
>>> summary["validation"]["phoneme_error_rate"]
"""

import dataclasses
import os

from mmae import pretrained, runs
from mmae.config import Config, setting_differences
from mmae.datasets.words import make_word_dataset
from mmae.text.g2p import G2P
from mmae.training.presets import layered_config
from mmae.training.regimes import Stage, Update
from mmae.training.trainer import train
from mmae.weights import load_weights

__all__ = ["g2p_config", "train_g2p"]

DEFAULT_PRESET = "g2p"


def g2p_config(data_dir, preset=None, overrides=(), run_dir=None):
    """The config of a G2P run on a prepared lexicon (see `presets.layered_config`)."""
    return layered_config(data_dir, DEFAULT_PRESET, preset, overrides, run_dir)


def build_g2p(config, dataset_info=None):
    """The `G2P` model of a config, built."""
    del dataset_info  # the model needs only the symbol set
    return G2P.from_run_config(config)


def train_g2p(config, data_dir, run_dir, init_from=None, **kwargs):
    """Trains (or resumes) a G2P run; returns `mmae.training.train`'s summary.

    Args:
        config: from `g2p_config` (a stored run's own config wins on resume).
        data_dir: written by `mmae prepare-lexicon`.
        run_dir: the run directory.
        init_from: a G2P run, a packed text frontend, or a bundled frontend's
            language ("en-us") to start from; it must have `config`'s symbol
            set and `g2p` sizes. Neither read nor needed once the run
            has a checkpoint of its own.
        **kwargs: forwarded to `train` (`progress`, `max_steps`,
            `time_budget_s`, `cpu_budget_s`, `strategy`, `tpu`, ...).
    """
    resuming = bool(runs.checkpoints(os.path.join(run_dir, "checkpoints")))
    source = _resolve(init_from) if init_from and not resuming else None

    def build(config, dataset_info):
        model = build_g2p(config, dataset_info)
        if source:
            _initialize(model, config, source)
        return model

    def stages(config):
        return [Stage("g2p", 0, config.train.steps, (Update("ctc"),))]

    return train(
        config,
        data_dir,
        run_dir,
        model_fn=build,
        stages=stages,
        dataset_fn=make_word_dataset,
        **kwargs,
    )


def _resolve(source):
    """The directory of `source`: a G2P run, a frontend pack, or a bundled frontend's language."""
    if os.path.exists(os.path.join(source, "config.yaml")):
        return source
    try:
        return pretrained.frontend_path(source)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"--init-from {source}: neither a G2P run, a text frontend pack, nor a "
            "bundled frontend's language (en-us)."
        ) from None


def _initialize(model, config, source):
    """Loads `source`'s G2P weights into the new run's model, after checking that they fit."""
    theirs = Config.load(os.path.join(source, "config.yaml"))
    sizes = [f.name for f in dataclasses.fields(config.g2p) if f.name != "dropout"]
    differences = setting_differences(theirs.g2p, config.g2p, "g2p", sizes)
    differences += setting_differences(theirs.text, config.text, "text", ("symbol_set",))
    if differences:
        raise ValueError(
            f"{source} cannot start this G2P run: {'; '.join(differences)} (the source's "
            "value first)."
        )
    if runs.is_frontend(source):
        load_weights(model, os.path.join(source, runs.PRETRAINED_WEIGHTS))
    else:
        runs.restore_weights(model, source)
