"""Reading what training wrote: a run directory or a bundled model, for inference.

Synthesis, export, evaluation and the pretrained models load through here
and never import `mmae.training`, which writes these files.

A run directory (`mmae train --run-dir`) holds `config.yaml`, `dataset.json`
(vocabulary, speakers, mel statistics), `checkpoints/ckpt-STEP.*`,
`snapshots/ckpt-STEP.*` and `metrics.jsonl`. A pretrained model's directory
holds the same `config.yaml` and `dataset.json` beside `weights.*`: the
weights synthesis needs, in the same format (`mmae.weights`).

A damaged checkpoint (truncated data, a missing index, a weight of the wrong
shape) is skipped with a warning that names it, and the newest one that reads
is used instead.

Example:

>>> config, model = load_run("runs/sample")            # the newest checkpoint that reads
>>> config, model = load("mmae/assets/flite_slt")       # a run or a pretrained directory
>>> read_metrics("runs/sample", "validation")[-1]["mel_text"]
"""

import json
import logging
import os
import re

import tensorflow as tf

from mmae.config import Config
from mmae.weights import LEGACY_NPZ, CheckpointError, checkpoint_key, load_weights

__all__ = [
    "CheckpointError",
    "checkpoint_step",
    "checkpoints",
    "is_pretrained",
    "is_frontend",
    "is_vocoder",
    "load",
    "load_pretrained",
    "load_run",
    "load_frontend",
    "load_vocoder",
    "read_jsonl",
    "read_metrics",
    "restore_weights",
]

logger = logging.getLogger(__name__)

PRETRAINED_WEIGHTS = "weights"
_STEP = re.compile(r"ckpt-(\d+)$")


def load(path, checkpoint=None):
    """(config, model) of a training run or of a pretrained model's directory."""
    if is_pretrained(path):
        if checkpoint:
            raise ValueError(f"{path} is a pretrained model: it has no checkpoints to choose.")
        return load_pretrained(path)
    return load_run(path, checkpoint)


def load_run(run_dir, checkpoint=None, data_dir=None):
    """Rebuilds a training run's model with its weights: returns `(config, model)`.

    Args:
        run_dir: a directory written by `mmae.training.train`.
        checkpoint: a checkpoint prefix to load instead of the newest that reads.
        data_dir: the prepared data, only for runs older than the
            `dataset.json` copy in the run directory.
    """
    config_path = os.path.join(run_dir, "config.yaml")
    if not tf.io.gfile.exists(config_path):
        raise FileNotFoundError(f"{run_dir} is not a training run (no config.yaml).")
    config = Config.load(config_path)
    info_path = os.path.join(run_dir, "dataset.json")
    if tf.io.gfile.exists(info_path):
        info = _read_json(info_path)
    elif data_dir is not None:
        from mmae.datasets.prepare import load_dataset_info

        info = load_dataset_info(data_dir)
    else:
        raise FileNotFoundError(f"{run_dir} has no dataset.json; pass the run's data_dir.")
    from mmae.models import build_model

    model = build_model(config, info)
    restore_weights(model, checkpoint or run_dir)
    return config, model


def is_pretrained(path):
    """Whether `path` is a packed acoustic model (`mmae.pretrained`)."""
    return tf.io.gfile.exists(os.path.join(path, "dataset.json")) and any(
        tf.io.gfile.exists(os.path.join(path, name))
        for name in (PRETRAINED_WEIGHTS + ".index", LEGACY_NPZ)
    )


# A vocoder's weights, in its runs and packs alike, are its training model's
# "generator" part.
VOCODER_PART = "generator"


def is_vocoder(path):
    """Whether `path` is a packed vocoder or a vocoder training run (`mmae train-vocoder`)."""
    if not tf.io.gfile.exists(os.path.join(path, "config.yaml")) or is_pretrained(path):
        return False
    if is_frontend(path):
        return False
    if tf.io.gfile.exists(os.path.join(path, PRETRAINED_WEIGHTS + ".index")):
        return True
    for prefix in checkpoints(os.path.join(path, "checkpoints")):
        try:
            names = [name for name, _ in tf.train.list_variables(prefix)]
        except (tf.errors.OpError, ValueError):
            continue
        marker = checkpoint_key(f"{VOCODER_PART}/")[: -len("/.ATTRIBUTES/VARIABLE_VALUE")]
        return any(name.startswith(marker) for name in names)
    return False


def load_vocoder(path, checkpoint=None):
    """`(config, vocoder)` of a packed vocoder or a vocoder training run.

    Args:
        path: a directory of `python -m mmae.pretrained --vocoder-run` or of
            `mmae train-vocoder`.
        checkpoint: a run's checkpoint prefix instead of its newest that reads.
    """
    from mmae.vocoders import build_vocoder

    if not is_vocoder(path):
        raise FileNotFoundError(
            f"{path} is not a vocoder (a `mmae train-vocoder` run with checkpoints, or a "
            "directory packed by `python -m mmae.pretrained --vocoder-run`)."
        )
    config = Config.load(os.path.join(path, "config.yaml"))
    holder = _VocoderHolder(build_vocoder(config))
    packed = os.path.join(path, PRETRAINED_WEIGHTS)
    if checkpoint is None and tf.io.gfile.exists(packed + ".index"):
        load_weights(holder, packed, parts=[VOCODER_PART])
    else:
        restore_weights(holder, checkpoint or path, parts=[VOCODER_PART])
    return config, holder.generator


class _VocoderHolder:
    """Puts a vocoder where its training model has it, for `mmae.weights`' layer paths."""

    def __init__(self, generator):
        setattr(self, VOCODER_PART, generator)


# A text frontend pack (`python -m mmae.pretrained --g2p-run`): the lexicon
# beside the G2P's config and weights.
FRONTEND_LEXICON = "lexicon.tsv.gz"
FRONTEND_REPORT = "report.json"


def is_frontend(path):
    """Whether `path` is a packed text frontend (lexicon and G2P)."""
    return all(
        tf.io.gfile.exists(os.path.join(path, name))
        for name in ("config.yaml", FRONTEND_LEXICON, PRETRAINED_WEIGHTS + ".index")
    )


def load_frontend(path):
    """`(config, lexicon, g2p)` of a packed text frontend.

    Raises:
        FileNotFoundError: `path` is not a frontend pack.
    """
    from mmae.text.g2p import G2P
    from mmae.text.lexicon import PhonemeLexicon

    if not is_frontend(path):
        raise FileNotFoundError(
            f"{path} is not a text frontend (a directory packed by "
            "`python -m mmae.pretrained --g2p-run RUN --lexicon DIR`)."
        )
    config = Config.load(os.path.join(path, "config.yaml"))
    g2p = G2P.from_run_config(config)
    load_weights(g2p, os.path.join(path, PRETRAINED_WEIGHTS))
    lexicon = PhonemeLexicon.load(os.path.join(path, FRONTEND_LEXICON))
    return config, lexicon, g2p


def load_pretrained(path):
    """(config, model) of a pretrained model's directory (see `mmae.pretrained`).

    Only the weights synthesis needs are stored; the other parts keep their
    initial values.
    """
    config = Config.load(os.path.join(path, "config.yaml"))
    info = _read_json(os.path.join(path, "dataset.json"))
    from mmae.models import build_model

    model = build_model(config, info)
    prefix = os.path.join(path, PRETRAINED_WEIGHTS)
    if not tf.io.gfile.exists(prefix + ".index"):
        prefix = os.path.join(path, LEGACY_NPZ)
        logger.warning(
            "%s is in the old npz format; `python -m mmae.pretrained --convert %s` rewrites it.",
            path,
            path,
        )
    load_weights(model, prefix, parts=model.inference_parts)
    return config, model


def checkpoints(directory):
    """Checkpoint prefixes in `directory`, newest step first, damaged ones included.

    The `checkpoint` state file is not trusted alone: a prefix whose index
    or data file is present counts too, so a lost index is seen (and
    reported) rather than silently passed over.
    """
    found = set()
    try:
        state = tf.train.get_checkpoint_state(directory)
    except (tf.errors.OpError, ValueError):
        state = None
    if state is not None:
        found.update(
            os.path.join(directory, os.path.basename(p)) for p in state.all_model_checkpoint_paths
        )
    for pattern in ("ckpt-*.index", "ckpt-*.data-*"):
        for path in tf.io.gfile.glob(os.path.join(directory, pattern)):
            found.add(path[: path.index(".", len(os.path.join(directory, "ckpt-")))])
    prefixes = [p for p in found if _STEP.search(p)]
    return sorted(prefixes, key=checkpoint_step, reverse=True)


def checkpoint_step(prefix):
    """The global step of a checkpoint prefix (`.../ckpt-STEP`)."""
    match = _STEP.search(str(prefix))
    if match is None:
        raise ValueError(f"{prefix} is not a checkpoint prefix (ckpt-STEP).")
    return int(match.group(1))


def restore_weights(model, path, parts=None, verify=None):
    """Loads a checkpoint's weights into `model` (built from the run's config).

    Args:
        model: e.g. `build_model(Config.load(run_dir + "/config.yaml"), info)`.
        path: a checkpoint prefix (`.../checkpoints/ckpt-1000`: that one, or a
            `CheckpointError`), or a run or checkpoint directory: its newest
            checkpoint that reads, with a warning naming each one skipped.
        parts: only these parts of the model (see `mmae.weights.weight_paths`).
        verify: `verify(prefix)` may raise `CheckpointError` to skip a
            checkpoint for a reason of the caller's (e.g. unreadable optimizer
            state); it runs after the weights loaded.

    Returns:
        The prefix that was loaded.
    """
    if not tf.io.gfile.isdir(path):
        _load_checkpoint(model, path, parts, verify)
        return path
    directory = os.path.join(path, "checkpoints")
    if not tf.io.gfile.isdir(directory):
        directory = path
    candidates = checkpoints(directory)
    if not candidates:
        raise FileNotFoundError(f"No checkpoint in {path}.")
    failures = []
    for prefix in candidates:
        try:
            _load_checkpoint(model, prefix, parts, verify)
        except CheckpointError as error:
            failures.append(str(error))
            continue
        for failure in failures:
            logger.warning("Skipped a damaged checkpoint: %s Using %s instead.", failure, prefix)
        return prefix
    raise CheckpointError(f"No checkpoint in {directory} can be used:\n  " + "\n  ".join(failures))


def _load_checkpoint(model, prefix, parts, verify):
    if not tf.io.gfile.exists(prefix + ".index") and tf.io.gfile.glob(prefix + ".data-*"):
        raise CheckpointError(f"{prefix} cannot be read: {prefix}.index is missing.")
    load_weights(model, prefix, parts)
    if verify:
        verify(prefix)


def read_metrics(run_dir, split=None):
    """The records of `run_dir/metrics.jsonl`, optionally of one split ("train", "validation").

    Each record has `split`, `step`, `stage`, `wall_time`, `train_seconds`
    (time spent in training steps over all sessions of the run) and the
    losses; training records also have `learning_rate`, `grad_norm`,
    `steps_per_second`, `frames_per_second` and `nonfinite_steps`. Each
    training call ends with a "timing" record: its wall time and where it
    went (`phase_seconds`, `phase_shares`: setup, input, tracing, step,
    guard, logging, validation, display, checkpoints, snapshots, other).
    """
    records = read_jsonl(os.path.join(run_dir, "metrics.jsonl"))
    return [r for r in records if split is None or r.get("split") == split]


def read_jsonl(path):
    """The JSON objects of a JSON-lines file; a torn last line (a killed writer) is skipped."""
    if not tf.io.gfile.exists(path):
        return []
    with tf.io.gfile.GFile(path) as f:
        lines = f.read().split("\n")
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except ValueError:
            continue  # An empty line, or the last line of a killed run.
    return records


def _read_json(path):
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)
