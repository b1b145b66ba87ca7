"""The training loop: the stages of a regime, step by step, under any `tf.distribute` strategy.

A run trains one model through the stages of `train.regime`
(`mmae.training.regimes`). Each update of a stage has its own AdamW
optimizer with a linear warm-up and a cosine decay over the stage's steps,
so a stage that trains other variables (the text side of the "separate"
regime) starts with fresh optimizer statistics. The steps themselves are in
`steps.py`; what happens around them (logging, validation, checkpoints,
snapshots, budgets, signals, the non-finite guard) is in `policies.py`.

The model protocol: `model.parts` ({name: layer or None}) and
`model.compute_losses(batch, *, objective, step, training, **options)`
returning a dict of float32 scalars whose "loss" is minimized (`step` counts
from the stage's first step); `model.display(batch)` (a dict of 1-D/2-D
arrays for TensorBoard) and, optionally, `model.mel_to_audio(log_mel)`.
Validation logs the losses that `compute_losses` returns with
`training=False`, which may be more than the training step's. A model whose
`sparse_ctc` is true is switched to dense CTC labels under `jit_compile`.

Safety: a step whose loss or gradient norm is not finite leaves weights and
optimizer state as they were and is counted; `max_nonfinite_steps` in a row
stop the run with `NonFiniteLossError`. SIGINT and SIGTERM end the current
step, save a checkpoint and return. One training at a time writes a run
directory (`RunLock`). Calling `train` again on the same `run_dir` resumes
at the exact step of the newest whole checkpoint (the data order after a
resume is a fresh shuffle).

Files in `run_dir`: `config.yaml` (authoritative on resume), `dataset.json`,
`checkpoints/` (`ckpt-STEP`), `snapshots/`, `tensorboard/{train,validation}/`
and `metrics.jsonl` (`mmae.runs.read_metrics`).

Example:

>>> config = Config.load("flite16k", overrides=["train.steps=2000"])
>>> summary = train(config, "prepared/sample", "runs/sample")
>>> summary["step"], summary["validation"]["loss"]
"""

import dataclasses
import json
import logging
import os
import time

import keras
import numpy as np
import tensorflow as tf

from mmae.config import FEATURE_KEYS, Config, IncompatibleConfigError, check_compatible
from mmae.datasets.pipeline import make_dataset
from mmae.datasets.prepare import load_dataset_info
from mmae.progress import progress_bar
from mmae.training import distribute, policies
from mmae.training.checkpoints import RunCheckpoints
from mmae.training.lock import RunLock
from mmae.training.logs import MetricsLog, TensorBoard, record
from mmae.training.optimizers import make_optimizer
from mmae.training.regimes import stage_at, stages_for, trainable_variables
from mmae.training.steps import make_eval_step, make_train_step, stage_losses

logger = logging.getLogger(__name__)


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
    profile_steps=None,
    stages=None,
    dataset_fn=None,
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
        model_fn: `model_fn(config, dataset_info) -> keras.Model` following
            the model protocol above (default: `mmae.models.build_model`).
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
        cpu_budget_s: the same in CPU seconds of this process spent in
            training steps. On a machine with N cores that training keeps
            busy, N x minutes x 60 matches `time_budget_s` of `minutes` on a
            quiet machine.
        snapshot_cpu_s: CPU-second marks (as `cpu_budget_s` counts them): at
            the first step past each mark the weights also go to
            `run_dir/snapshots/ckpt-STEP` (`policies.Snapshots`).
        profile_steps: (first, last): a `tf.profiler` trace of steps first+1
            to last, with the validation, logging and checkpoints between
            them, to `run_dir/tensorboard/plugins/profile`
            (`policies.Profiling`); first >= 1, so the trace skips tracing.
        stages: the `regimes.Stage`s to train, for a model with a regime of
            its own (e.g. alternating adversarial updates), or a function of
            the run's config giving them; default: those of `train.regime`.
        dataset_fn: `dataset_fn(data_dir, config, split, *, training,
            batch_size, batch_multiple, deterministic)` giving the batches
            the model's `compute_losses` reads (default:
            `mmae.datasets.pipeline.make_dataset`, bucketed whole clips).

    Returns:
        A summary dict: `step`, `stopped` ("finished", "max_steps", "SIGINT",
        "SIGTERM", "time_budget"), `message`, `resumed_from`, `checkpoint`,
        `losses` (the last logged training losses), `validation` (the last
        validation losses), `nonfinite_steps`, `train_seconds`,
        `cpu_seconds`, `traces` (per stage), `replicas`, `strategy` and
        `precision_policy`.

    Raises:
        RunLockedError: another training is writing to `run_dir`.
        CheckpointError: no checkpoint of the run can be read.
    """
    if profile_steps is not None:
        first, last = (int(step) for step in profile_steps)
        if not 1 <= first < last:
            raise ValueError(
                f"profile_steps must be two steps with 1 <= first < last, got {profile_steps}."
            )
    strategy = distribute.select_strategy(strategy, tpu=tpu)
    config = _run_config(config, run_dir)
    policy = distribute.precision_policy(config.train.mixed_precision, strategy)
    previous_policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    clock = policies.Clock(time_budget_s, cpu_budget_s)
    if callable(stages):
        stages = stages(config)
    stages = list(stages) if stages is not None else stages_for(config.train)
    trainer = Trainer(
        config, data_dir, run_dir, stages, model_fn, strategy, policy, progress, clock, dataset_fn
    )
    chief = distribute.is_chief(strategy)
    if profile_steps is not None and chief:
        trainer.profiler = policies.Profiling(
            *profile_steps, os.path.join(str(run_dir), "tensorboard")
        )
    lock = RunLock(run_dir) if chief else None
    try:
        if lock:
            lock.acquire()
        return trainer.run(max_steps, snapshot_cpu_s)
    finally:
        if lock:
            lock.release()
        keras.mixed_precision.set_global_policy(previous_policy)


class Trainer:
    """The state of one `train` call: strategy, model, data, policies and checkpoints."""

    def __init__(
        self,
        config,
        data_dir,
        run_dir,
        stages,
        model_fn,
        strategy,
        policy,
        progress,
        clock,
        dataset_fn=None,
    ):
        self.config, self.data_dir, self.run_dir = config, str(data_dir), str(run_dir)
        self.model_fn = model_fn or _default_model_fn
        self.dataset_fn = dataset_fn or make_dataset
        self.strategy, self.policy, self.progress, self.clock = strategy, policy, progress, clock
        self.replicas = strategy.num_replicas_in_sync
        self.chief = distribute.is_chief(strategy)
        self.stages = stages
        self.traces = {stage.name: 0 for stage in self.stages}
        self.vocoder = None
        self.profiler = None

    def run(self, max_steps, snapshot_cpu_s):
        self.started = time.perf_counter()
        train = self.config.train
        keras.utils.set_random_seed(train.seed)
        if train.deterministic:
            tf.config.experimental.enable_op_determinism()
        info = load_dataset_info(self.data_dir)
        check_compatible(self.config, Config.from_dict(info["config"]), what=self.data_dir)
        last_step = train.steps if max_steps is None else min(int(max_steps), train.steps)
        if self.chief:
            self._write_run_files(info)
        with self.strategy.scope():
            self.model = self.model_fn(self.config, info)
            self.example = self._first_example(info)
            self.loss_names = {stage.name: self._build(stage) for stage in self.stages}
            self.checkpoints = RunCheckpoints(
                self.run_dir, self.model, train.keep_checkpoints, self.chief
            )
        try:
            restore_path = self.checkpoints.resume()
            return self._run(info, restore_path, last_step, snapshot_cpu_s)
        finally:
            self.checkpoints.close()

    def _run(self, info, restore_path, last_step, snapshot_cpu_s):
        start_step = self.checkpoints.step_of(restore_path)
        self.metrics = MetricsLog(os.path.join(self.run_dir, "metrics.jsonl"), self.chief)
        previous = self.metrics.resume(start_step)
        self.clock.resume(previous)
        self.snapshots = policies.Snapshots(
            snapshot_cpu_s, self.checkpoints, self.metrics, self.clock
        )
        self.snapshots.resume()
        self.guard = policies.NonFiniteGuard(
            self.config.train.max_nonfinite_steps, self.checkpoints
        )
        self.guard.total = previous.get("nonfinite_steps", 0)
        if self.clock.out_of_time():
            message = (
                f"{self.run_dir} has used its time budget ({self.clock.train_seconds:.0f} s, "
                f"{self.clock.cpu_seconds:.0f} CPU s)."
            )
            return self._summary(start_step, start_step, restore_path, "time_budget", message)
        if start_step >= last_step:
            stopped = "finished" if start_step >= self.config.train.steps else "max_steps"
            message = f"{self.run_dir} is already at step {start_step}; nothing to do."
            return self._summary(start_step, start_step, restore_path, stopped, message)

        self.train_batches = iter(self._distributed_batches("train"))
        has_validation = info["splits"].get("validation", {}).get("num_clips", 0) > 0
        self.validation = self._distributed_batches("validation") if has_validation else None
        self.tensorboard = TensorBoard(self.run_dir, self.chief, self.config.audio, self._to_audio)
        step, stopped = start_step, None
        self.clock.phases["setup"] += time.perf_counter() - self.started
        # The first step of each bucket's shape traces the step function: the
        # estimate starts after as many steps as there are buckets (other
        # inputs are taken to have one shape).
        shapes = len(self.config.train.bucket_boundaries) if self.dataset_fn is make_dataset else 1
        bar = progress_bar(
            total=last_step,
            initial=start_step,
            warmup=shapes,
            unit="step",
            disable=not (self.progress and self.chief),
            dynamic_ncols=True,
            smoothing=0.1,
        )
        try:
            with policies.StopSignals() as signals:
                for stage in self.stages:
                    if step >= min(stage.end_step, last_step):
                        continue
                    step, stopped = self._run_stage(
                        stage, step, last_step, restore_path, signals, bar
                    )
                    restore_path = None
                    if stopped:
                        break
        finally:
            bar.close()
            self.tensorboard.flush()
            if self.profiler is not None:
                self.profiler.stop()
        if not stopped:
            stopped = "finished" if step >= self.config.train.steps else "max_steps"
        self.timing = self._timing()
        if step > start_step:
            self.metrics.write(
                record("timing", stage_at(self.stages, step - 1), step, self.clock, **self.timing)
            )
        return self._summary(step, start_step, self.checkpoints.latest, stopped)

    def _timing(self):
        """This call's wall time, and the seconds and share of it spent on each phase."""
        wall = time.perf_counter() - self.started
        phases = dict(self.clock.phases)
        phases["other"] = max(0.0, wall - sum(phases.values()))
        return {
            "wall_seconds": round(wall, 3),
            "phase_seconds": {name: round(value, 3) for name, value in phases.items()},
            "phase_shares": {name: round(value / wall, 4) for name, value in phases.items()},
            "step_share": round(phases.get("step", 0.0) / wall, 4),
        }

    def _run_stage(self, stage, step, last_step, restore_path, signals, bar):
        """Runs `stage` from `step`; returns (step, why it stopped early or None)."""
        train = self.config.train
        optimizers, schedules = {}, {}
        with self.strategy.scope():
            for update in stage.updates:
                optimizer, schedule = make_optimizer(
                    train, stage.num_steps, self.replicas, self.policy == "mixed_float16"
                )
                optimizer.build(trainable_variables(self.model, update))
                optimizers[update.key], schedules[update.key] = optimizer, schedule
        self.checkpoints.start_stage(optimizers)
        # A checkpoint from the end of the previous stage holds that stage's
        # optimizers; the new stage starts its own.
        if (
            restore_path
            and stage_at(self.stages, self.checkpoints.step_of(restore_path) - 1) == stage
        ):
            self.checkpoints.restore_optimizers(restore_path)
        if restore_path:
            logger.info("Resumed %s at step %d.", self.run_dir, step)
        jit_compile = self._jit_compile()
        if jit_compile and getattr(self.model, "sparse_ctc", False):
            # XLA compiles CTC only with dense labels (no RaggedTensor.to_sparse).
            self.model.sparse_ctc = False
        step_fn = make_train_step(
            self.model,
            stage,
            list(optimizers.values()),
            self.strategy,
            train.clip_norm,
            jit_compile,
            self.traces,
        )
        hooks = self._policies(stage, optimizers, schedules, bar)
        end = min(stage.end_step, last_step)
        phases = self.clock.phases
        while step < end:
            traces, waited = sum(self.traces.values()), phases["input"]
            outputs, seconds = self.clock.time(self._step, step_fn, step)
            # A step that traced is tracing time; the wait for its batch is input's.
            traced = sum(self.traces.values()) > traces
            phases["tracing" if traced else "step"] += seconds - (phases["input"] - waited)
            step += 1
            out_of_time = self.clock.out_of_time()
            event = policies.StepEvent(
                stage,
                step,
                end,
                last_step,
                outputs,
                seconds,
                stop=signals.received or ("time_budget" if out_of_time else None),
                out_of_time=out_of_time,
            )
            for hook, name in hooks:
                with self.clock.phase(name):
                    hook.after_step(event)
            if event.stop:
                return step, event.stop
        return step, None

    def _step(self, step_fn, step):
        with self.clock.phase("input"):
            batch = next(self.train_batches)
        outputs = step_fn(batch, tf.constant(step, tf.int64))
        return {name: value.numpy() for name, value in outputs.items()}

    def _policies(self, stage, optimizers, schedules, bar):
        """The policies that act after each step of `stage`, in order, with their phase names."""
        train = self.config.train

        def learning_rates():
            several = len(optimizers) > 1
            return {
                (f"{key}/" if several else "") + "learning_rate": float(
                    schedules[key](optimizers[key].iterations)
                )
                for key in optimizers
            }

        logging_policy = policies.Logging(
            train.log_every, self.metrics, self.tensorboard, self.clock, bar, learning_rates
        )
        # The guard counts over the whole run; it logs through this stage's logging.
        self.guard.logging, logging_policy.guard = logging_policy, self.guard
        self.logging = logging_policy
        hooks = [self.guard, logging_policy]
        if self.validation is not None:
            self.validator = policies.Validation(
                train.eval_every,
                self.validation,
                make_eval_step(self.model, stage, self.strategy, self.loss_names[stage.name]),
                self.metrics,
                self.tensorboard,
                self.clock,
            )
            hooks += [self.validator, policies.Display(train.display_every, self._display)]
        hooks += [policies.Checkpointing(train.checkpoint_every, self.checkpoints), self.snapshots]
        if self.profiler is not None:
            hooks.append(self.profiler)
        names = {
            policies.NonFiniteGuard: "guard",
            policies.Logging: "logging",
            policies.Validation: "validation",
            policies.Display: "display",
            policies.Checkpointing: "checkpoints",
            policies.Snapshots: "snapshots",
            policies.Profiling: "profiling",
        }
        return [(hook, names.get(type(hook), type(hook).__name__)) for hook in hooks]

    # Setup.

    def _write_run_files(self, info):
        tf.io.gfile.makedirs(self.run_dir)
        if not tf.io.gfile.exists(os.path.join(self.run_dir, "config.yaml")):
            self.config.save(os.path.join(self.run_dir, "config.yaml"))
        # What the model is built from besides the config (vocabulary,
        # speakers, mel statistics), so a run loads without its data.
        info_path = os.path.join(self.run_dir, "dataset.json")
        if not tf.io.gfile.exists(info_path):
            with tf.io.gfile.GFile(info_path, "w") as f:
                json.dump(info, f, indent=1)

    def _first_example(self, info):
        has_validation = info["splits"].get("validation", {}).get("num_clips", 0) > 0
        split = "validation" if has_validation else "train"
        dataset = self.dataset_fn(
            self.data_dir,
            self.config,
            split,
            training=False,
            batch_size=1,
            batch_multiple=1,
            deterministic=True,
        )
        return {name: value[:1] for name, value in next(iter(dataset)).items()}

    def _distributed_batches(self, split):
        """One global batch per step, each bucket's split evenly over the replicas."""
        train = self.config.train
        # Workers cut the same global batches, so their input order must match.
        ordered = train.deterministic or distribute.num_workers(self.strategy) > 1
        dataset = self.dataset_fn(
            self.data_dir,
            self.config,
            split,
            training=split == "train",
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
        """Creates the model's variables for `stage` on one example; returns the names
        of its validation losses (a model may measure more out of training)."""
        step = tf.constant(0, tf.int64)
        losses = stage_losses(self.model, stage, self.example, step, True)
        if not any(name == "loss" or name.endswith("/loss") for name in losses):
            raise ValueError(f"compute_losses for stage {stage.name!r} returned no 'loss'.")
        return sorted(stage_losses(self.model, stage, self.example, step, False))

    def _jit_compile(self):
        """train.jit_compile, with "auto" meaning: XLA on accelerators, not on CPU."""
        jit = self.config.train.jit_compile
        if jit == "auto":
            return any(d.device_type in ("GPU", "TPU") for d in tf.config.list_logical_devices())
        return jit

    # Validation examples.

    def _display(self, step):
        arrays = self.model.display(self.example)
        frames = self.example.get("num_frames")
        self.tensorboard.examples(step, arrays, None if frames is None else int(frames[0]))

    def _to_audio(self, log_mel):
        if hasattr(self.model, "mel_to_audio"):
            return np.asarray(self.model.mel_to_audio(log_mel)).reshape(-1)
        if self.vocoder is None:
            from mmae.vocoders import vocoder_from_config

            self.vocoder = vocoder_from_config(self.config.audio)
        return self.vocoder(tf.constant(log_mel, tf.float32)).numpy()

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
                f"({self.clock.train_seconds:.0f} s, {self.clock.cpu_seconds:.0f} CPU s); last "
                f"checkpoint {checkpoint}."
            )
        message = message or f"Trained to step {step}; last checkpoint {checkpoint}."
        validator = getattr(self, "validator", None)
        logging_policy = getattr(self, "logging", None)
        return {
            "step": step,
            "stopped": stopped,
            "message": message,
            "run_dir": self.run_dir,
            "resumed_from": start_step,
            "checkpoint": checkpoint,
            "losses": logging_policy.last_losses if logging_policy else None,
            "validation": validator.last if validator else None,
            "nonfinite_steps": self.guard.total,
            "train_seconds": self.clock.train_seconds,
            "cpu_seconds": self.clock.cpu_seconds,
            "traces": dict(self.traces),
            "timing": getattr(self, "timing", None),
            "replicas": self.replicas,
            "strategy": type(self.strategy).__name__,
            "precision_policy": self.policy,
        }


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
        if s in ("model", "vocoder", "g2p") or k in FEATURE_KEYS.get(s, ())
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
