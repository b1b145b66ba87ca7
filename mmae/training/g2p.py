"""`mmae train-g2p`: the grapheme-to-phoneme model, trained by the same trainer as the others.

The run is an ordinary run directory (config, checkpoints with exact-step
resume, metrics, TensorBoard with the CTC posteriors of a held-out word,
budgets, the non-finite guard); only the model (`mmae.text.g2p.G2P`), its
one stage and its batches (`mmae.datasets.words`) differ. The config is the
prepared lexicon's (symbol set, voice), with a G2P preset
(`mmae/configs/g2p.yaml`) laid over it, then `--set` overrides. Validation
logs the greedy decoding's phoneme and word error rates on the held-out
words.

Example:

>>> config = g2p_config("prepared/lexicon")
>>> summary = train_g2p(config, "prepared/lexicon", "runs/g2p")
>>> summary["validation"]["phoneme_error_rate"]
"""

from mmae.datasets.words import make_word_dataset
from mmae.text.g2p import G2P
from mmae.training.presets import layered_config
from mmae.training.regimes import Stage, Update
from mmae.training.trainer import train

__all__ = ["g2p_config", "train_g2p"]

DEFAULT_PRESET = "g2p"


def g2p_config(data_dir, preset=None, overrides=(), run_dir=None):
    """The config of a G2P run on a prepared lexicon (see `presets.layered_config`)."""
    return layered_config(data_dir, DEFAULT_PRESET, preset, overrides, run_dir)


def build_g2p(config, dataset_info=None):
    """The `G2P` model of a config, built."""
    del dataset_info  # the model needs only the symbol set
    return G2P.from_run_config(config)


def train_g2p(config, data_dir, run_dir, **kwargs):
    """Trains (or resumes) a G2P run; returns `mmae.training.train`'s summary.

    Args:
        config: from `g2p_config` (a stored run's own config wins on resume).
        data_dir: written by `mmae prepare-lexicon`.
        run_dir: the run directory.
        **kwargs: forwarded to `train` (`progress`, `max_steps`,
            `time_budget_s`, `cpu_budget_s`, `strategy`, `tpu`, ...).
    """

    def stages(config):
        return [Stage("g2p", 0, config.train.steps, (Update("ctc"),))]

    return train(
        config,
        data_dir,
        run_dir,
        model_fn=build_g2p,
        stages=stages,
        dataset_fn=make_word_dataset,
        **kwargs,
    )
