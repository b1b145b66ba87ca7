"""A run's checkpoints while it trains: resume, periodic saves, snapshots.

Each checkpoint holds the model's weights by layer path (`mmae.weights`),
the optimizer of each of the stage's updates, and the step. Resume takes the
newest checkpoint that reads in full; a damaged one (truncated, no index, a
weight of the wrong shape) is moved to `checkpoints/damaged/` with a warning
that names it, before anything is written. `tf.train.CheckpointManager`
writes atomically, so a `kill -9` loses at most the steps since the last one.
"""

import logging
import os
import shutil
import tempfile

import numpy as np
import tensorflow as tf

from mmae import runs
from mmae.weights import CheckpointError, verify_checkpoint, weight_paths

logger = logging.getLogger(__name__)


class NonFiniteLossError(RuntimeError):
    """Training produced only NaN/Inf losses or gradients for too many steps in a row."""


class RunCheckpoints:
    """Where one training run's checkpoints and snapshots go.

    Every worker saves (saving may involve collectives); only the chief's
    files are kept.
    """

    def __init__(self, run_dir, model, keep, chief):
        self.run_dir = run_dir
        self.directory = os.path.join(run_dir, "checkpoints")
        self.chief = chief
        self.keep = keep
        self.save_dir = self.directory if chief else tempfile.mkdtemp(prefix="mmae-worker-")
        self.model = model
        self.weights = weight_paths(model)
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.manager = None

    def close(self):
        if not self.chief:
            shutil.rmtree(self.save_dir, ignore_errors=True)

    @property
    def latest(self):
        return self.manager.latest_checkpoint if self.manager else self.resumed_from

    def resume(self):
        """Loads the newest whole checkpoint's weights; returns its prefix, or None for a new run."""
        self.resumed_from = None
        if not runs.checkpoints(self.directory):
            return None
        try:
            self.resumed_from = runs.restore_weights(
                self.model, self.directory, verify=verify_checkpoint
            )
        except CheckpointError as error:
            raise CheckpointError(
                f"{error}\nMove them away (or train into another --run-dir) to start afresh."
            ) from error
        skipped = [
            p for p in runs.checkpoints(self.directory) if runs.checkpoint_step(p) > self.step_of()
        ]
        if self.chief:
            for prefix in skipped:
                _move_aside(prefix)
        return self.resumed_from

    def step_of(self, prefix=None):
        prefix = prefix or self.resumed_from
        return runs.checkpoint_step(prefix) if prefix else 0

    def start_stage(self, optimizers):
        """A checkpoint of the weights, `optimizers` ({update key: optimizer}) and the step."""
        self.optimizers = optimizers
        checkpoint = tf.train.Checkpoint(
            weights=self.weights, optimizers=optimizers, step=self.step
        )
        self.manager = tf.train.CheckpointManager(
            checkpoint, self.save_dir, max_to_keep=self.keep, checkpoint_name="ckpt"
        )

    def restore_optimizers(self, prefix):
        """The optimizers' state from `prefix` (a checkpoint of the same stage)."""
        reader = tf.train.load_checkpoint(prefix)
        if any(key.startswith("optimizer/") for key in reader.get_variable_to_shape_map()):
            # Before the one weight format: a single optimizer under "optimizer".
            (optimizer,) = self.optimizers.values()
            status = tf.train.Checkpoint(optimizer=optimizer).read(prefix)
        else:
            status = tf.train.Checkpoint(optimizers=self.optimizers).read(prefix)
        try:
            status.assert_existing_objects_matched()
        except AssertionError as error:
            raise CheckpointError(
                f"{prefix}: the optimizer state does not match this stage: {error}"
            ) from error
        status.expect_partial()  # the weights and the step are restored elsewhere

    def save(self, step):
        self._check_finite(step)
        self.step.assign(step)
        self.manager.save(checkpoint_number=step)

    def snapshot(self, step):
        """Writes the weights to snapshots/ckpt-STEP (never deleted); returns its relative path."""
        self._check_finite(step)
        self.step.assign(step)
        relative = os.path.join("snapshots", f"ckpt-{step}")
        path = os.path.join(self.run_dir, relative)
        if not self.chief:
            path = os.path.join(self.save_dir, f"snapshot-{step}")
        tf.train.Checkpoint(weights=self.weights, step=self.step).write(path)
        return relative

    def _check_finite(self, step):
        for key, variable in self.weights.items():
            floating = "float" in str(variable.dtype)
            if floating and not np.isfinite(np.asarray(variable.numpy(), np.float32)).all():
                raise NonFiniteLossError(
                    f"Not saving step {step}: {key} holds NaN/Inf. The last checkpoint "
                    f"is {self.latest}."
                )


def _move_aside(prefix):
    """Moves a damaged checkpoint's files to `damaged/` beside it, so no save overwrites them."""
    directory = os.path.join(os.path.dirname(prefix), "damaged")
    tf.io.gfile.makedirs(directory)
    for path in tf.io.gfile.glob(prefix + ".*"):
        target = os.path.join(directory, os.path.basename(path))
        tf.io.gfile.rename(path, target, overwrite=True)
    logger.warning("Moved the damaged %s to %s.", prefix, directory)
