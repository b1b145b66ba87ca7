"""Configs of runs that train a side model on a prepared directory: its config, a preset over it.

A vocoder run (`mmae train-vocoder`) and a G2P run (`mmae train-g2p`) keep
the features of their data (audio features, symbol set) and take their
model and training settings from a preset laid over the data's config.
"""

import copy
import os

import tensorflow as tf

from mmae.config import Config, _read_mapping, _resolve_source
from mmae.datasets.prepare import load_dataset_info

__all__ = ["layered_config"]


def layered_config(data_dir, default_preset, preset=None, overrides=(), run_dir=None):
    """The data's config, a preset over it, then overrides; a resumed run's own config.

    Args:
        data_dir: a prepared directory (its `dataset.json` holds its config).
        default_preset: the preset used when `preset` is None and the run is new.
        preset: a preset name or YAML/JSON file (any section may appear; later wins).
            Default: the stored config of the run in `run_dir` if there is one
            (a resume), else `default_preset`.
        overrides: `"section.key=value"` strings.
        run_dir: the run directory, to resume with its stored config.
    """
    stored = os.path.join(str(run_dir), "config.yaml") if run_dir else None
    if preset is None and stored and tf.io.gfile.exists(stored):
        return Config.load(stored, overrides=overrides)
    values = copy.deepcopy(load_dataset_info(data_dir)["config"])
    layer = _read_mapping(_resolve_source(str(preset or default_preset)))
    for section, settings in layer.items():
        values.setdefault(section, {}).update(settings or {})
    return Config.from_dict(values).with_overrides(overrides)
