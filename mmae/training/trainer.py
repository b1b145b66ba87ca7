"""The training loop: a custom step per stage, under any `tf.distribute` strategy.

A run trains one model through the stages of `train.regime` (`stages_for`).
Each stage has its own AdamW optimizer with a linear warm-up and a cosine
decay over the stage's steps, so a stage that trains other variables (the
text side of the "separate" regime) starts with fresh optimizer statistics.

Distribution: each step takes one global batch of `batch_size x replicas`
clips from one bucket and splits it evenly over the replicas. Each replica
takes the gradient of its loss divided by the number of replicas; the step
sums those once over replicas (the gradient of the global mean loss), then
measures the global norm, checks it and the loss for NaN/Inf, clips it and
applies the same update everywhere. The peak learning rate is
`learning_rate x replicas`: linear scaling with the global batch (Goyal et al.
2017), so a config tuned on one device keeps its per-clip step size on many.

Safety: a step whose loss or gradient norm is not finite leaves weights and
optimizer state as they were and is counted; `max_nonfinite_steps` in a row
stop the run with `NonFiniteLossError`. SIGINT and SIGTERM end the current
step, save a checkpoint and return. `tf.train.CheckpointManager` writes
checkpoints atomically, so a `kill -9` loses at most the steps since the last
one; calling `train` again on the same `run_dir` resumes at that exact step
(the data order after a resume is a fresh shuffle).

Files in `run_dir`: `config.yaml` (authoritative on resume), `checkpoints/`
(`ckpt-STEP`), `tensorboard/{train,validation}/` and `metrics.jsonl`, one JSON
object per log interval or evaluation (`read_metrics`).

Example:

>>> config = Config.load("flite16k", overrides=["train.steps=2000"])
>>> summary = train(config, "prepared/sample", "runs/sample")
>>> summary["step"], summary["validation"]["loss"]
"""

import dataclasses
import importlib.util
import json
import logging
import math
import os
import shutil
import signal
import tempfile
import threading
import time

import keras
import numpy as np
import tensorflow as tf

from mmae.config import FEATURE_KEYS, Config, IncompatibleConfigError, check_compatible
from mmae.datasets.pipeline import make_dataset
from mmae.datasets.prepare import load_dataset_info
from mmae.training import distribute

logger = logging.getLogger(__name__)

SUM = tf.distribute.ReduceOp.SUM
MEAN = tf.distribute.ReduceOp.MEAN


@dataclasses.dataclass(frozen=True)
class Stage:
    """Steps [start_step, end_step) of a regime; `name` is what the model is told."""

    name: str
    start_step: int
    end_step: int

    @property
    def num_steps(self):
        return self.end_step - self.start_step


def stages_for(train_config):
    """The stages of `train_config.regime`, in order, covering steps [0, steps).

    "joint": one stage. "separate": the audio autoencoder, then the text side
    into its latent space. "self_supervised": masked-frame pretraining, then
    joint training. `pretrain_steps` ends the first stage of the last two.
    """
    steps, pretrain = train_config.steps, train_config.pretrain_steps
    if steps <= 0:
        raise ValueError(f"train.steps must be positive, got {steps}.")
    if train_config.regime == "joint":
        return [Stage("joint", 0, steps)]
    if not 0 < pretrain < steps:
        raise ValueError(
            f"train.pretrain_steps ({pretrain}) must be between 0 and train.steps ({steps}) "
            f"for the {train_config.regime!r} regime."
        )
    first, second = {
        "separate": ("audio_autoencoder", "text_to_latent"),
        "self_supervised": ("masked_pretrain", "joint"),
    }[train_config.regime]
    return [Stage(first, 0, pretrain), Stage(second, pretrain, steps)]


def stage_at(stages, step):
    """The stage that runs global step `step` (the last one past the end)."""
    for stage in stages:
        if step < stage.end_step:
            return stage
    return stages[-1]


@keras.saving.register_keras_serializable(package="mmae")
class WarmupCosineDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to `learning_rate`, then cosine decay to `final_fraction` of it.

    Args:
        learning_rate: the peak rate, reached after `warmup_steps`.
        warmup_steps: steps of linear warm-up (step 0 already has a small rate).
        decay_steps: total steps; the rate is `final_fraction * learning_rate`
            from here on.
        final_fraction: the end of the cosine, as a fraction of the peak.

    Example:

    >>> schedule = WarmupCosineDecay(1e-3, warmup_steps=10, decay_steps=100)
    >>> round(float(schedule(9)), 7), round(float(schedule(99)), 7)
    (0.001, 0.0001)
    """

    def __init__(self, learning_rate, warmup_steps, decay_steps, final_fraction=0.1):
        self.learning_rate = learning_rate
        self.warmup_steps = warmup_steps
        self.decay_steps = decay_steps
        self.final_fraction = final_fraction

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        warmup = self.learning_rate * keras.ops.minimum(
            1.0, (step + 1.0) / max(1, self.warmup_steps)
        )
        progress = keras.ops.clip(
            (step + 1.0 - self.warmup_steps) / max(1, self.decay_steps - self.warmup_steps),
            0.0,
            1.0,
        )
        cosine = 0.5 * (1.0 + keras.ops.cos(math.pi * progress))
        decayed = self.learning_rate * (self.final_fraction + (1 - self.final_fraction) * cosine)
        return keras.ops.where(step + 1.0 < self.warmup_steps, warmup, decayed)

    def get_config(self):
        return {
            "learning_rate": self.learning_rate,
            "warmup_steps": self.warmup_steps,
            "decay_steps": self.decay_steps,
            "final_fraction": self.final_fraction,
        }


class NonFiniteLossError(RuntimeError):
    """Training produced only NaN/Inf losses or gradients for too many steps in a row."""


class _SummedAdamW(keras.optimizers.AdamW):
    """AdamW for gradients that the train step has already summed over replicas.

    Keras' TensorFlow optimizer sums gradients over replicas inside `apply`;
    the step sums them first so that it can measure, check and clip the
    global gradient, and a second sum would double it.
    """

    def _all_reduce_sum_gradients(self, grads_and_vars):
        return list(grads_and_vars)


def train(
    config,
    data_dir,
    run_dir,
    *,
    model_fn=None,
    strategy=None,
    tpu=None,
    progress=True,
    max_steps=None,
    time_budget_s=None,
    cpu_budget_s=None,
    snapshot_cpu_s=(),
):
    """Trains a model on a prepared dataset, or resumes the run in `run_dir`.

    A step's global batch is `train.batch_size x replicas` clips and the peak
    learning rate `train.learning_rate x replicas` (linear scaling).

    Args:
        config: the `Config` to train with. If `run_dir` already holds a run,
            its stored `config.yaml` is used instead, and `config` must agree
            with it on feature and model settings.
        data_dir: a directory written by `mmae prepare` (local or `gs://`).
        run_dir: where the run's files go (local or `gs://`).
        model_fn: `model_fn(config, dataset_info) -> keras.Model` (default:
            `mmae.models.build_model`). The model provides
            `compute_losses(batch, *, stage, step, training)` (`step` counted
            from the stage's first step; a dict of float32
            scalars; "loss" is minimized), `trainable_variables_for(stage)`,
            `display(batch)` (a dict of 1-D/2-D arrays for TensorBoard) and,
            optionally, `mel_to_audio(log_mel)`.
        strategy: a `tf.distribute.Strategy` or a name for
            `distribute.select_strategy` ("auto", "default", "mirrored",
            "multi_worker"); default: chosen from the machine.
        tpu: a TPU name or address ("local" on a TPU VM, "auto" on Colab).
        progress: show a progress bar.
        max_steps: stop at this global step (default: `train.steps`). The
            schedule still spans `train.steps`; a later call continues.
        time_budget_s: stop (with a validation pass and a checkpoint) once the
            run's training time, summed over resumes, reaches this many
            seconds; benchmarks compare models at equal training time.
        cpu_budget_s: the same in CPU seconds of this process (all its
            threads) spent in training steps: unlike wall time, it does not
            shrink when other jobs share the machine. On a machine with N
            cores that training keeps busy, N x minutes x 60 matches
            `time_budget_s` of `minutes` on a quiet machine.
        snapshot_cpu_s: CPU-second marks (as `cpu_budget_s` counts them): at
            the first step past each mark the weights are also written to
            `run_dir/snapshots/ckpt-STEP`, which keep-last-N never deletes,
            and a `"snapshot"` record goes to metrics.jsonl. Benchmarks
            evaluate these to draw quality against training time.

    Returns:
        A summary dict: `step`, `stopped` ("finished", "max_steps", "SIGINT",
        "SIGTERM"), `message`, `resumed_from`, `checkpoint`, `losses` (the last
        logged training losses), `validation` (the last validation losses),
        `nonfinite_steps`, `train_seconds`, `cpu_seconds`, `traces` (per
        stage), `replicas`, (`stopped` is "time_budget" when `time_budget_s`
        or `cpu_budget_s` ran out)
        `strategy` and `precision_policy`.
    """
    strategy = distribute.select_strategy(strategy, tpu=tpu)
    config = _run_config(config, run_dir)
    policy = distribute.precision_policy(config.train.mixed_precision, strategy)
    previous_policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        trainer = _Trainer(config, data_dir, run_dir, model_fn, strategy, policy, progress)
        trainer.time_budget_s = time_budget_s
        trainer.cpu_budget_s = cpu_budget_s
        trainer.snapshot_marks = sorted(float(mark) for mark in snapshot_cpu_s)
        return trainer.run(max_steps)
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)


def model_weights(model):
    """Every weight of `model`, in a list, for `tf.train.Checkpoint(model=...)`.

    Keras 3 keeps sublayers held in Python lists (a model's blocks) out of
    TensorFlow's object graph, so `tf.train.Checkpoint(model=model)` would
    save only the weights of directly attached layers. A list of
    `model.weights` saves them all, by position, which is the same for every
    model built from the same config.
    """
    return list(model.weights)


def restore_weights(model, path):
    """Loads a training checkpoint's weights into `model` (built from the run's config).

    Args:
        model: e.g. `build_model(Config.load(run_dir + "/config.yaml"), dataset_info)`.
        path: a checkpoint prefix (`.../checkpoints/ckpt-1000`) or a run
            directory (its latest checkpoint).
    """
    if tf.io.gfile.isdir(path):
        checkpoint_dir = os.path.join(path, "checkpoints")
        found = tf.train.latest_checkpoint(
            checkpoint_dir if tf.io.gfile.isdir(checkpoint_dir) else path
        )
        if found is None:
            raise FileNotFoundError(f"No checkpoint in {path}.")
        path = found
    status = tf.train.Checkpoint(model=model_weights(model)).restore(path).expect_partial()
    try:
        status.assert_existing_objects_matched()
    except AssertionError as error:
        raise IncompatibleConfigError(f"{path} does not match this model: {error}") from error
    return path


def load_run(run_dir, checkpoint=None, data_dir=None):
    """Rebuilds a training run's model with its weights: returns `(config, model)`.

    Args:
        run_dir: a directory written by `train` (its `config.yaml`,
            `dataset.json` and `checkpoints/`).
        checkpoint: a checkpoint prefix to load instead of the latest.
        data_dir: the prepared data, only for runs older than the
            `dataset.json` copy in the run directory.
    """
    config_path = os.path.join(run_dir, "config.yaml")
    if not tf.io.gfile.exists(config_path):
        raise FileNotFoundError(f"{run_dir} is not a training run (no config.yaml).")
    config = Config.load(config_path)
    info_path = os.path.join(run_dir, "dataset.json")
    if tf.io.gfile.exists(info_path):
        with tf.io.gfile.GFile(info_path) as f:
            info = json.load(f)
    elif data_dir is not None:
        info = load_dataset_info(data_dir)
    else:
        raise FileNotFoundError(f"{run_dir} has no dataset.json; pass the run's data_dir.")
    from mmae.models import build_model

    model = build_model(config, info)
    restore_weights(model, checkpoint or run_dir)
    return config, model


def read_metrics(run_dir, split=None):
    """The records of `run_dir/metrics.jsonl`, optionally of one split ("train", "validation").

    Each record has `split`, `step`, `stage`, `wall_time`, `train_seconds`
    (time spent in training steps over all sessions of the run) and the
    losses; training records also have `learning_rate`, `grad_norm`,
    `steps_per_second`, `frames_per_second` and `nonfinite_steps`.
    """
    records = _read_jsonl(os.path.join(run_dir, "metrics.jsonl"))
    return [r for r in records if split is None or r.get("split") == split]


def _default_model_fn(config, dataset_info):
    from mmae.models import build_model

    return build_model(config, dataset_info)


def _run_config(config, run_dir):
    """The config of the run in `run_dir`: its stored one if it exists, else `config`."""
    path = os.path.join(run_dir, "config.yaml")
    if not tf.io.gfile.exists(path):
        return config
    stored = Config.load(path)
    changed = []
    for section in (f.name for f in dataclasses.fields(Config)):
        ours, theirs = getattr(stored, section), getattr(config, section)
        for field in dataclasses.fields(ours):
            if getattr(ours, field.name) != getattr(theirs, field.name):
                changed.append((section, field.name))
    fixed = [
        f"{s}.{k}: the run has {getattr(getattr(stored, s), k)!r}, "
        f"given {getattr(getattr(config, s), k)!r}"
        for s, k in changed
        if s == "model" or k in FEATURE_KEYS.get(s, ())
    ]
    if fixed:
        raise IncompatibleConfigError(
            f"{run_dir} holds a run with different feature or model settings:\n  "
            + "\n  ".join(fixed)
            + "\nChoose a new run directory, or resume without changing these settings."
        )
    if changed:
        logger.warning(
            "Resuming %s with its stored config; ignoring the given %s.",
            run_dir,
            ", ".join(f"{s}.{k}" for s, k in changed),
        )
    return stored


class _Trainer:
    """The state of one `train` call: strategy, model, data, logs and checkpoints."""

    def __init__(self, config, data_dir, run_dir, model_fn, strategy, policy, progress):
        self.config = config
        self.data_dir = str(data_dir)
        self.run_dir = str(run_dir)
        self.model_fn = model_fn or _default_model_fn
        self.strategy = strategy
        self.policy = policy
        self.progress = progress
        self.replicas = strategy.num_replicas_in_sync
        self.chief = distribute.is_chief(strategy)
        self.stages = stages_for(config.train)
        self.traces = {stage.name: 0 for stage in self.stages}
        self.nonfinite_steps = 0
        self.train_seconds = 0.0
        self.cpu_seconds = 0.0
        self.cpu_budget_s = None
        self.last_losses = None
        self.last_validation = None
        self.audio_target_written = False
        self.vocoder = None
        self.time_budget_s = None
        self.snapshot_marks = []

    # Setup.

    def run(self, max_steps):
        train = self.config.train
        keras.utils.set_random_seed(train.seed)
        if train.deterministic:
            tf.config.experimental.enable_op_determinism()
        info = load_dataset_info(self.data_dir)
        check_compatible(self.config, Config.from_dict(info["config"]), what=self.data_dir)
        last_step = train.steps if max_steps is None else min(int(max_steps), train.steps)
        if self.chief:
            tf.io.gfile.makedirs(self.run_dir)
            if not tf.io.gfile.exists(os.path.join(self.run_dir, "config.yaml")):
                self.config.save(os.path.join(self.run_dir, "config.yaml"))
            # What the model is built from besides the config (vocabulary,
            # speakers, mel statistics), so a run loads without its data.
            info_path = os.path.join(self.run_dir, "dataset.json")
            if not tf.io.gfile.exists(info_path):
                with tf.io.gfile.GFile(info_path, "w") as f:
                    json.dump(info, f, indent=1)
        checkpoint_dir = os.path.join(self.run_dir, "checkpoints")
        # Every worker saves (saving may involve collectives); only the chief keeps it.
        self.save_dir = checkpoint_dir if self.chief else tempfile.mkdtemp(prefix="mmae-worker-")
        try:
            return self._run(info, checkpoint_dir, last_step)
        finally:
            if not self.chief:
                shutil.rmtree(self.save_dir, ignore_errors=True)

    def _run(self, info, checkpoint_dir, last_step):
        restore_path = tf.train.latest_checkpoint(checkpoint_dir)
        start_step = _checkpoint_step(restore_path) if restore_path else 0
        self.metrics = _MetricsLog(os.path.join(self.run_dir, "metrics.jsonl"), self.chief)
        previous = self.metrics.resume(start_step)
        self.train_seconds = previous.get("train_seconds", 0.0)
        self.cpu_seconds = previous.get("cpu_seconds", 0.0)
        self.nonfinite_steps = previous.get("nonfinite_steps", 0)
        self.snapshot_marks = [m for m in self.snapshot_marks if m > self.cpu_seconds]
        if self._out_of_time():
            message = (
                f"{self.run_dir} has used its time budget ({self.train_seconds:.0f} s, "
                f"{self.cpu_seconds:.0f} CPU s)."
            )
            return self._summary(start_step, start_step, restore_path, "time_budget", message)
        if start_step >= last_step:
            stopped = "finished" if start_step >= self.config.train.steps else "max_steps"
            message = f"{self.run_dir} is already at step {start_step}; nothing to do."
            return self._summary(start_step, start_step, restore_path, stopped, message)

        self.train_batches = iter(self._distributed_batches("train"))
        has_validation = info["splits"].get("validation", {}).get("num_clips", 0) > 0
        example_split = "validation" if has_validation else "train"
        self.example = _first_example(self.data_dir, self.config, example_split)
        self.validation = self._distributed_batches("validation") if has_validation else None
        with self.strategy.scope():
            self.model = self.model_fn(self.config, info)
            self.step_variable = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
            self.loss_names = {stage.name: self._build(stage) for stage in self.stages}
        self.writers = self._summary_writers()

        step, stopped = start_step, None
        bar = _progress_bar(self.progress and self.chief, start_step, last_step)
        try:
            with _StopRequests() as requests:
                for stage in self.stages:
                    if step >= min(stage.end_step, last_step):
                        continue
                    step, stopped = self._run_stage(
                        stage, step, last_step, restore_path, requests, bar
                    )
                    restore_path = None
                    if stopped:
                        break
        finally:
            bar.close()
            for writer in self.writers.values():
                writer.flush()
        if not stopped:
            stopped = "finished" if step >= self.config.train.steps else "max_steps"
        return self._summary(step, start_step, self.manager.latest_checkpoint, stopped)

    def _summary_writers(self):
        splits = ("train", "validation")
        if self.chief and not _tensorboard_installed():
            logger.warning(
                "TensorBoard is not installed (pip install tensorboard): training curves go to "
                "%s only.",
                os.path.join(self.run_dir, "metrics.jsonl"),
            )
        if not self.chief or not _tensorboard_installed():
            return {split: tf.summary.create_noop_writer() for split in splits}
        return {
            split: tf.summary.create_file_writer(os.path.join(self.run_dir, "tensorboard", split))
            for split in splits
        }

    def _distributed_batches(self, split):
        """One global batch per step, each bucket's split evenly over the replicas."""
        train = self.config.train
        # Workers cut the same global batches, so their input order must match.
        ordered = train.deterministic or distribute.num_workers(self.strategy) > 1
        dataset = make_dataset(
            self.data_dir,
            self.config,
            split,
            batch_size=train.batch_size * self.replicas,
            deterministic=ordered or None,
            batch_multiple=self.replicas,
        )
        options = tf.data.Options()
        # Every worker reads all shards and keeps its replicas' share of each
        # global batch, so all replicas of a step see one bucket's shapes.
        options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.DATA
        )
        return self.strategy.experimental_distribute_dataset(dataset.with_options(options))

    def _build(self, stage):
        """Creates the model's variables for `stage` on one example; returns its loss names."""
        losses = self.model.compute_losses(
            self.example, stage=stage.name, step=tf.constant(0, tf.int64), training=True
        )
        if "loss" not in losses:
            raise ValueError(f"compute_losses(stage={stage.name!r}) returned no 'loss'.")
        if not self.model.trainable_variables_for(stage.name):
            raise ValueError(f"Stage {stage.name!r} has no trainable variables.")
        return sorted(losses)

    def _optimizer(self, stage, variables):
        train = self.config.train
        schedule = WarmupCosineDecay(
            train.learning_rate * self.replicas, train.warmup_steps, stage.num_steps
        )
        if "_all_reduce_sum_gradients" not in dir(keras.optimizers.AdamW):
            raise RuntimeError("This Keras version sums gradients differently; see _SummedAdamW.")
        with self.strategy.scope():
            optimizer = _SummedAdamW(learning_rate=schedule, weight_decay=train.weight_decay)
            if self.policy == "mixed_float16":
                optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
            optimizer.build(variables)
        return optimizer, schedule

    # Training.

    def _run_stage(self, stage, step, last_step, restore_path, requests, bar):
        train = self.config.train
        variables = list(self.model.trainable_variables_for(stage.name))
        optimizer, schedule = self._optimizer(stage, variables)
        checkpoint = tf.train.Checkpoint(
            model=model_weights(self.model), optimizer=optimizer, step=self.step_variable
        )
        self.manager = tf.train.CheckpointManager(
            checkpoint, self.save_dir, max_to_keep=train.keep_checkpoints, checkpoint_name="ckpt"
        )
        if restore_path:
            self._restore(restore_path, stage, checkpoint)
        train_step = self._train_step(stage, variables, optimizer)
        eval_step = self._eval_step(stage) if self.validation is not None else None
        interval = _Interval()
        consecutive = 0
        end = min(stage.end_step, last_step)
        while step < end:
            started, cpu_started = time.perf_counter(), time.process_time()
            outputs = train_step(next(self.train_batches), tf.constant(step, tf.int64))
            outputs = {name: value.numpy() for name, value in outputs.items()}
            seconds = time.perf_counter() - started
            step += 1
            self.train_seconds += seconds
            self.cpu_seconds += time.process_time() - cpu_started
            interval.add(outputs, seconds)
            finite = bool(outputs["finite"])
            consecutive = 0 if finite else consecutive + 1
            self.nonfinite_steps += 0 if finite else 1
            bar.update(1)
            out_of_time = self._out_of_time()
            stop = requests.received or ("time_budget" if out_of_time else None)
            if finite:
                bar.set_postfix(loss=f"{float(outputs['loss']):.4f}", refresh=False)
            if 0 < train.max_nonfinite_steps <= consecutive:
                self._log(stage, step, interval, optimizer, schedule)
                raise NonFiniteLossError(
                    f"Stopped at step {step}: {consecutive} steps in a row had a non-finite loss "
                    f"or gradient (last loss {float(outputs['loss'])}). Their updates were "
                    f"skipped; the last checkpoint is {self.manager.latest_checkpoint}. Lower "
                    "train.learning_rate or check the data, then resume."
                )
            if _due(step, train.log_every) or step == end or stop:
                self._log(stage, step, interval, optimizer, schedule)
                interval = _Interval()
            if eval_step and not requests.received:
                if _due(step, train.eval_every) or step == last_step or out_of_time:
                    self._evaluate(stage, step, eval_step)
            if _due(step, train.checkpoint_every) or step == end or stop:
                self._save(step)
            if self.snapshot_marks and self.cpu_seconds >= self.snapshot_marks[0]:
                self._snapshot(stage, step)
            if stop:
                return step, stop
        return step, None

    def _jit_compile(self):
        """train.jit_compile, with "auto" meaning: XLA on accelerators, not on CPU."""
        jit = self.config.train.jit_compile
        if jit == "auto":
            return any(d.device_type in ("GPU", "TPU") for d in tf.config.list_logical_devices())
        return jit

    def _train_step(self, stage, variables, optimizer):
        """The distributed training step of `stage` (traced once per batch shape)."""
        model, replicas, clip_norm = self.model, self.replicas, self.config.train.clip_norm
        loss_scaled = isinstance(optimizer, keras.optimizers.LossScaleOptimizer)

        def gradients(batch, step):
            self.traces[stage.name] += 1  # Python: runs only when tracing.
            with tf.GradientTape() as tape:
                # Steps count from the stage's start, so loss ramps (binarization)
                # begin again when a text stage follows a pretraining stage.
                losses = model.compute_losses(
                    batch, stage=stage.name, step=step - stage.start_step, training=True
                )
                losses = {name: tf.cast(value, tf.float32) for name, value in losses.items()}
                # Optimizers sum gradients over replicas: each replica gives its share.
                loss = losses["loss"] / replicas
                if loss_scaled:
                    loss = optimizer.scale_loss(loss)
            grads = tape.gradient(loss, variables)
            trained = [i for i, g in enumerate(grads) if g is not None]
            if len(trained) < len(variables):
                unused = [v.path for i, v in enumerate(variables) if grads[i] is None]
                if not trained:
                    raise ValueError(
                        f"Stage {stage.name!r}: no trainable variable affects the loss."
                    )
                logger.warning(
                    "Stage %s: %d variables do not affect the loss and are not trained: %s",
                    stage.name,
                    len(unused),
                    ", ".join(unused[:8]) + (" ..." if len(unused) > 8 else ""),
                )
            return losses, {i: grads[i] for i in trained}

        gradients = tf.function(gradients, jit_compile=self._jit_compile())

        def replica_step(batch, step):
            losses, grads = gradients(batch, step)
            trained = [variables[i] for i in sorted(grads)]
            grads = [grads[i] for i in sorted(grads)]
            context = tf.distribute.get_replica_context()
            grads = context.all_reduce(SUM, grads)
            scale = optimizer.dynamic_scale if loss_scaled else 1.0
            grad_norm = tf.linalg.global_norm(grads) / scale
            losses = {name: context.all_reduce(MEAN, value) for name, value in losses.items()}
            loss_finite = tf.math.is_finite(losses["loss"])
            finite = tf.logical_and(loss_finite, tf.math.is_finite(grad_norm))
            if clip_norm > 0:
                grads, _ = tf.clip_by_global_norm(grads, clip_norm * scale, grad_norm * scale)
            # A loss-scaled optimizer skips overflowing steps itself (and lowers its scale).
            _apply_if(
                loss_finite if loss_scaled else finite, lambda: optimizer.apply(grads, trained)
            )
            frames = tf.reduce_sum(tf.cast(batch["num_frames"], tf.float32))
            return {
                **losses,
                "grad_norm": grad_norm,
                "finite": finite,
                "frames": context.all_reduce(SUM, frames),
            }

        @tf.function
        def train_step(batch, step):
            outputs = self.strategy.run(replica_step, args=(batch, step))
            # Every value is already reduced over replicas: take the first copy.
            return {k: self.strategy.experimental_local_results(v)[0] for k, v in outputs.items()}

        return train_step

    def _eval_step(self, stage):
        """Sums of validation losses weighted by clips, and the clip count, over replicas."""
        model, names = self.model, self.loss_names[stage.name]

        def replica_eval(batch, step):
            count = tf.shape(batch["num_frames"])[0]
            weight = tf.cast(count, tf.float32)

            def weighted_losses():
                losses = model.compute_losses(
                    batch, stage=stage.name, step=step - stage.start_step, training=False
                )
                return {name: tf.cast(losses[name], tf.float32) * weight for name in names}

            # The last validation batch may leave some replicas empty.
            sums = tf.cond(
                count > 0, weighted_losses, lambda: {name: tf.constant(0.0) for name in names}
            )
            return {**sums, "clips": weight}

        @tf.function(reduce_retracing=True)
        def eval_step(batch, step):
            sums = self.strategy.run(replica_eval, args=(batch, step))
            return {k: self.strategy.reduce(SUM, v, axis=None) for k, v in sums.items()}

        return eval_step

    # Logs, evaluation and checkpoints.

    def _out_of_time(self):
        wall = self.time_budget_s is not None and self.train_seconds >= self.time_budget_s
        cpu = self.cpu_budget_s is not None and self.cpu_seconds >= self.cpu_budget_s
        return wall or cpu

    def _log(self, stage, step, interval, optimizer, schedule):
        if not interval.steps:
            return
        record = {
            "split": "train",
            "step": step,
            "stage": stage.name,
            "wall_time": time.time(),
            "train_seconds": self.train_seconds,
            "cpu_seconds": self.cpu_seconds,
            **interval.means(),
            "learning_rate": float(schedule(optimizer.iterations)),
            "steps_per_second": interval.steps / interval.seconds,
            "frames_per_second": interval.frames / interval.seconds,
            "nonfinite_steps": self.nonfinite_steps,
        }
        self.last_losses = {n: record[n] for n in self.loss_names[stage.name] if n in record}
        self.metrics.write(record)
        if not _tensorboard_installed():
            return
        with self.writers["train"].as_default(step=step):
            for name, value in record.items():
                if name not in ("split", "step", "stage", "wall_time") and value is not None:
                    tf.summary.scalar(name, value)

    def _evaluate(self, stage, step, eval_step):
        sums = None
        for batch in self.validation:
            values = eval_step(batch, tf.constant(step, tf.int64))
            values = {name: float(value) for name, value in values.items()}
            sums = values if sums is None else {k: sums[k] + values[k] for k in sums}
        if not sums:
            return
        clips = sums.pop("clips")
        losses = {name: _finite_or_none(value / clips) for name, value in sums.items()}
        self.last_validation = losses
        self.metrics.write(
            {
                "split": "validation",
                "step": step,
                "stage": stage.name,
                "wall_time": time.time(),
                "train_seconds": self.train_seconds,
                "cpu_seconds": self.cpu_seconds,
                **losses,
            }
        )
        if not self.chief or not _tensorboard_installed():
            return
        with self.writers["validation"].as_default(step=step):
            for name, value in losses.items():
                if value is not None:
                    tf.summary.scalar(name, value)
            self._write_examples()

    def _write_examples(self):
        """Images of every `model.display` array, and audio of every displayed log-mel.

        The target's audio is written once; tags are `display/NAME` and
        `audio/NAME`, apart from the loss scalars of the same names.
        """
        arrays = {k: np.asarray(v) for k, v in self.model.display(self.example).items()}
        frames = int(self.example["num_frames"][0])
        for name, array in arrays.items():
            if not (array.ndim in (1, 2) and array.size and np.isfinite(array).all()):
                continue
            tf.summary.image(f"display/{name}", _plot(array, name)[None])
            is_mel = name.startswith("mel") and array.ndim == 2
            if not is_mel or array.shape[1] != self.config.audio.num_mels:
                continue
            if name == "mel_target" and self.audio_target_written:
                continue
            audio = self._to_audio(array[:frames])
            peak = max(float(np.max(np.abs(audio))), 1e-6)
            waveform = (0.95 * audio / peak).astype(np.float32)[None, :, None]
            tf.summary.audio(f"audio/{name}", waveform, self.config.audio.sample_rate)
            self.audio_target_written |= name == "mel_target"

    def _to_audio(self, log_mel):
        if hasattr(self.model, "mel_to_audio"):
            return np.asarray(self.model.mel_to_audio(log_mel)).reshape(-1)
        if self.vocoder is None:
            from mmae.vocoders import vocoder_from_config

            self.vocoder = vocoder_from_config(self.config.audio)
        return self.vocoder(tf.constant(log_mel, tf.float32)).numpy()

    def _save(self, step):
        self._check_finite(step)
        self.step_variable.assign(step)
        self.manager.save(checkpoint_number=step)

    def _snapshot(self, stage, step):
        """Writes the weights to snapshots/ckpt-STEP for every mark passed."""
        marks = [m for m in self.snapshot_marks if m <= self.cpu_seconds]
        self.snapshot_marks = self.snapshot_marks[len(marks) :]
        self._check_finite(step)
        self.step_variable.assign(step)
        path = os.path.join(self.run_dir, "snapshots", f"ckpt-{step}")
        # Every worker writes (it may involve collectives); the chief's is kept.
        if not self.chief:
            path = os.path.join(self.save_dir, f"snapshot-{step}")
        snapshot = tf.train.Checkpoint(model=model_weights(self.model), step=self.step_variable)
        snapshot.save_counter  # noqa: B018 (created, so restore_weights finds all it expects)
        snapshot.write(path)
        self.metrics.write(
            {
                "split": "snapshot",
                "step": step,
                "stage": stage.name,
                "wall_time": time.time(),
                "train_seconds": self.train_seconds,
                "cpu_seconds": self.cpu_seconds,
                "cpu_marks": marks,
                "checkpoint": os.path.join("snapshots", f"ckpt-{step}"),
            }
        )

    def _check_finite(self, step):
        for variable in self.model.weights:
            floating = "float" in str(variable.dtype)
            if floating and not np.isfinite(np.asarray(variable.numpy(), np.float32)).all():
                raise NonFiniteLossError(
                    f"Not saving step {step}: {variable.path} holds NaN/Inf. The last checkpoint "
                    f"is {self.manager.latest_checkpoint}."
                )

    def _restore(self, path, stage, checkpoint):
        saved_step = _checkpoint_step(path)
        # A checkpoint from the end of the previous stage holds that stage's
        # optimizer; the new stage starts its own.
        if saved_step > 0 and stage_at(self.stages, saved_step - 1) == stage:
            status = checkpoint.restore(path)
        else:
            status = (
                tf.train.Checkpoint(model=model_weights(self.model), step=self.step_variable)
                .restore(path)
                .expect_partial()
            )
        try:
            status.assert_existing_objects_matched()
        except AssertionError as error:
            raise IncompatibleConfigError(
                f"{path} does not match the model built from {self.run_dir}/config.yaml: {error}"
            ) from error
        logger.info("Resumed %s at step %d.", self.run_dir, saved_step)

    def _summary(self, step, start_step, checkpoint, stopped, message=None):
        if stopped in ("SIGINT", "SIGTERM"):
            message = (
                f"Stopped by {stopped} at step {step}; saved {checkpoint}. Run the same command "
                f"again (or train(..., run_dir={self.run_dir!r})) to resume."
            )
            logger.warning(message)
        if stopped == "time_budget" and message is None:
            message = (
                f"Trained to step {step}, where the time budget ran out "
                f"({self.train_seconds:.0f} s, {self.cpu_seconds:.0f} CPU s); last checkpoint "
                f"{checkpoint}."
            )
        message = message or f"Trained to step {step}; last checkpoint {checkpoint}."
        return {
            "step": step,
            "stopped": stopped,
            "message": message,
            "run_dir": self.run_dir,
            "resumed_from": start_step,
            "checkpoint": checkpoint,
            "losses": self.last_losses,
            "validation": self.last_validation,
            "nonfinite_steps": self.nonfinite_steps,
            "train_seconds": self.train_seconds,
            "cpu_seconds": self.cpu_seconds,
            "traces": dict(self.traces),
            "replicas": self.replicas,
            "strategy": type(self.strategy).__name__,
            "precision_policy": self.policy,
        }


def _apply_if(condition, apply):
    """Runs `apply` (which updates mirrored variables) in every replica only if `condition`.

    Strategies that synchronize updates through `merge_call` cannot branch
    around it in replica context, so the branch is taken in cross-replica
    context, as Keras' LossScaleOptimizer does.
    """
    if tf.__internal__.distribute.strategy_supports_no_merge_call():
        tf.cond(condition, apply, lambda: None)
        return

    def cross_replica(strategy, condition):
        condition = strategy.experimental_local_results(condition)[0]
        tf.cond(condition, lambda: strategy.extended.call_for_each_replica(apply), lambda: None)

    tf.distribute.get_replica_context().merge_call(cross_replica, args=(condition,))


def _due(step, every):
    """Whether an every-`every`-steps event falls on `step` (never when `every` <= 0)."""
    return every > 0 and step % every == 0


def _tensorboard_installed():
    # tf.summary needs the tensorboard package, which TensorFlow no longer requires.
    return importlib.util.find_spec("tensorboard") is not None


def _first_example(data_dir, config, split):
    batch = next(iter(make_dataset(data_dir, config, split, training=False, batch_size=1)))
    return {name: value[:1] for name, value in batch.items()}


def _checkpoint_step(path):
    return int(tf.train.load_variable(path, "step/.ATTRIBUTES/VARIABLE_VALUE"))


def _finite_or_none(value):
    value = float(value)
    return value if math.isfinite(value) else None


class _Interval:
    """Means of the step outputs between two logs (non-finite steps left out of the losses)."""

    def __init__(self):
        self.steps, self.finite_steps, self.seconds, self.frames = 0, 0, 0.0, 0.0
        self.sums = {}

    def add(self, outputs, seconds):
        self.steps += 1
        self.seconds += seconds
        self.frames += float(outputs["frames"])
        if outputs["finite"]:
            self.finite_steps += 1
            for name, value in outputs.items():
                if name not in ("finite", "frames"):
                    self.sums[name] = self.sums.get(name, 0.0) + float(value)

    def means(self):
        return {name: total / self.finite_steps for name, total in self.sums.items()}


class _MetricsLog:
    """`metrics.jsonl`, one JSON object per line, written by the chief only.

    Lines are appended and flushed; on `gs://`, where files cannot be
    appended to, the whole file is rewritten.
    """

    def __init__(self, path, enabled):
        self.path, self.enabled, self.records = path, enabled, []

    def resume(self, step):
        """Drops records past `step` (from steps a killed run had not saved); returns the last."""
        self.records = [r for r in _read_jsonl(self.path) if r.get("step", 0) <= step]
        if self.enabled and tf.io.gfile.exists(self.path):
            self._rewrite()
        trained = [r for r in self.records if r.get("split") == "train"]
        return trained[-1] if trained else {}

    def write(self, record):
        if not self.enabled:
            return
        self.records.append(record)
        if self.path.startswith("gs://"):
            self._rewrite()
            return
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()

    def _rewrite(self):
        text = "".join(json.dumps(r) + "\n" for r in self.records)
        if self.path.startswith("gs://"):
            with tf.io.gfile.GFile(self.path, "w") as f:
                f.write(text)
            return
        with open(self.path + ".tmp", "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(self.path + ".tmp", self.path)


def _read_jsonl(path):
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


class _StopRequests:
    """Turns SIGINT and SIGTERM into a request to save and stop after the current step.

    A second signal of the same kind acts as usual (KeyboardInterrupt, or
    termination), for when the step itself hangs.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.received = None
        self.previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                self.previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum, frame):
        self.received = signal.Signals(signum).name
        signal.signal(signum, self.previous[signum])

    def __exit__(self, *exc_info):
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)


def _progress_bar(enabled, start, total):
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        initial=start,
        disable=not enabled,
        unit="step",
        dynamic_ncols=True,
        smoothing=0.1,
    )


def _plot(array, title):
    """A matplotlib image of a 2-D array (time on the x axis) or a 1-D curve, as RGBA."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 3), dpi=80)
    canvas = FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    if array.ndim == 2:
        image = axes.imshow(array.T, origin="lower", aspect="auto", interpolation="nearest")
        figure.colorbar(image, ax=axes)
    else:
        axes.plot(array)
    axes.set_title(title)
    figure.tight_layout()
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())
