"""What happens around the training steps, one policy each.

The stage loop (`mmae.training.trainer`) runs a step, then hands a
`StepEvent` to each policy in order: the non-finite guard, logging,
validation, TensorBoard examples, checkpoints, snapshots. A policy acts when its event is due;
`Clock` and `StopSignals` tell the loop when to stop.
"""

import collections
import contextlib
import dataclasses
import math
import signal
import threading
import time

from mmae.training.checkpoints import NonFiniteLossError
from mmae.training.logs import Interval, record


@dataclasses.dataclass
class StepEvent:
    """A finished step: `step` steps are done; `stop` is why the loop stops after it, if it does."""

    stage: object
    step: int
    end: int  # the last step of this stage in this call
    last_step: int  # the last step of this call
    outputs: dict
    seconds: float
    stop: str | None
    out_of_time: bool

    @property
    def at_end(self):
        return self.step == self.end or self.stop is not None


def total_losses(outputs):
    """{name: value} of the loss each update minimizes ("loss", or "UPDATE/loss")."""
    return {
        name: float(value)
        for name, value in outputs.items()
        if name == "loss" or name.endswith("/loss")
    }


def due(step, every):
    """Whether an every-`every`-steps event falls on `step` (never when `every` <= 0)."""
    return every > 0 and step % every == 0


def due_or_last(event, every):
    """Due every `every` steps, at the call's last step and when time runs out.

    Never when a signal asks to stop now: that stop saves a checkpoint and
    goes, without a validation pass.
    """
    if event.stop not in (None, "time_budget"):
        return False
    return due(event.step, every) or event.step == event.last_step or event.out_of_time


class Clock:
    """Training time in wall and CPU seconds, summed over resumes, against optional budgets.

    CPU seconds are this process's (all its threads) inside training steps:
    unlike wall time, they do not shrink when other jobs share the machine.
    `phases` holds this call's wall seconds by what they were spent on (the
    trainer's own profile: steps, input, tracing, each policy, setup).
    """

    def __init__(self, time_budget_s=None, cpu_budget_s=None):
        self.time_budget_s, self.cpu_budget_s = time_budget_s, cpu_budget_s
        self.train_seconds = self.cpu_seconds = 0.0
        self.phases = collections.defaultdict(float)

    @contextlib.contextmanager
    def phase(self, name):
        """Adds the wall time of the block to `phases[name]`."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.phases[name] += time.perf_counter() - started

    def resume(self, last_record):
        self.train_seconds = last_record.get("train_seconds", 0.0)
        self.cpu_seconds = last_record.get("cpu_seconds", 0.0)

    def time(self, function, *args):
        """Runs `function(*args)`, adding its time; returns (result, wall seconds)."""
        started, cpu_started = time.perf_counter(), time.process_time()
        result = function(*args)
        seconds = time.perf_counter() - started
        self.train_seconds += seconds
        self.cpu_seconds += time.process_time() - cpu_started
        return result, seconds

    def out_of_time(self):
        wall = self.time_budget_s is not None and self.train_seconds >= self.time_budget_s
        cpu = self.cpu_budget_s is not None and self.cpu_seconds >= self.cpu_budget_s
        return wall or cpu


class StopSignals:
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


class NonFiniteGuard:
    """Counts skipped (non-finite) steps; too many in a row stop the run with an error."""

    def __init__(self, max_in_row, checkpoints, logging_policy=None):
        self.max_in_row, self.checkpoints, self.logging = max_in_row, checkpoints, logging_policy
        self.total = self.in_row = 0

    def after_step(self, event):
        finite = bool(event.outputs["finite"])
        self.in_row = 0 if finite else self.in_row + 1
        self.total += 0 if finite else 1
        if 0 < self.max_in_row <= self.in_row:
            self.logging.write(event)
            raise NonFiniteLossError(
                f"Stopped at step {event.step}: {self.in_row} steps in a row had a non-finite "
                f"loss or gradient (last {total_losses(event.outputs)}). Their updates "
                f"were skipped; the last checkpoint is {self.checkpoints.latest}. Lower "
                "train.learning_rate or check the data, then resume."
            )


class Logging:
    """Every `log_every` steps (and at a stage's end or a stop): a train record and a bar update."""

    def __init__(self, every, metrics, tensorboard, clock, bar, learning_rates, guard=None):
        self.every, self.metrics, self.tensorboard, self.clock = every, metrics, tensorboard, clock
        self.bar, self.learning_rates, self.guard = bar, learning_rates, guard
        self.interval = Interval()
        self.last_losses = None

    def after_step(self, event):
        self.interval.add(event.outputs, event.seconds)
        self.bar.update(1)
        if event.outputs["finite"]:
            shown = {name: f"{value:.4f}" for name, value in total_losses(event.outputs).items()}
            self.bar.set_postfix(shown, refresh=False)
        if due(event.step, self.every) or event.at_end:
            self.write(event)

    def write(self, event):
        interval, self.interval = self.interval, Interval()
        if not interval.steps:
            return
        means = interval.means()
        values = record(
            "train",
            event.stage,
            event.step,
            self.clock,
            **means,
            **self.learning_rates(),
            steps_per_second=interval.steps / interval.seconds,
            frames_per_second=interval.frames / interval.seconds,
            nonfinite_steps=self.guard.total if self.guard else 0,
        )
        self.last_losses = {k: v for k, v in means.items() if not k.endswith("grad_norm")}
        self.metrics.write(values)
        self.tensorboard.scalars(
            "train", event.step, {k: v for k, v in values.items() if k != "wall_time"}
        )


class Validation:
    """Every `eval_every` steps, at the call's last step and when time runs out: validation losses."""

    def __init__(self, every, batches, eval_step, metrics, tensorboard, clock):
        self.every, self.batches, self.eval_step = every, batches, eval_step
        self.metrics, self.tensorboard, self.clock = metrics, tensorboard, clock
        self.last = None

    def after_step(self, event):
        if due_or_last(event, self.every):
            self.run(event)

    def run(self, event):
        import tensorflow as tf

        sums = None
        for batch in self.batches:
            values = self.eval_step(batch, tf.constant(event.step, tf.int64))
            values = {name: float(value) for name, value in values.items()}
            sums = values if sums is None else {k: sums[k] + values[k] for k in sums}
        if not sums:
            return
        clips = sums.pop("clips")
        losses = {name: _finite_or_none(value / clips) for name, value in sums.items()}
        self.last = losses
        self.metrics.write(record("validation", event.stage, event.step, self.clock, **losses))
        self.tensorboard.scalars("validation", event.step, losses)


class Display:
    """Every `every` steps and at the call's last step: one clip's examples to TensorBoard.

    `display(step)` writes the model's views of the clip (spectrogram images,
    and audio of each mel through a vocoder). That costs about as much as a
    validation pass, so it has its own, sparser cadence.
    """

    def __init__(self, every, display):
        self.every, self.display = every, display

    def after_step(self, event):
        if due_or_last(event, self.every):
            self.display(event.step)


class Checkpointing:
    """Every `every` steps, at a stage's end and on a stop: a checkpoint (keep-last-N)."""

    def __init__(self, every, checkpoints):
        self.every, self.checkpoints = every, checkpoints

    def after_step(self, event):
        if due(event.step, self.every) or event.at_end:
            self.checkpoints.save(event.step)


class Snapshots:
    """At the first step past each CPU-second mark: the weights to snapshots/ckpt-STEP.

    Keep-last-N never deletes them, and a "snapshot" record goes to
    metrics.jsonl; benchmarks evaluate them to draw quality against time.
    """

    def __init__(self, marks, checkpoints, metrics, clock):
        self.checkpoints, self.metrics, self.clock = checkpoints, metrics, clock
        self.marks = sorted(float(mark) for mark in marks)

    def resume(self):
        self.marks = [m for m in self.marks if m > self.clock.cpu_seconds]

    def after_step(self, event):
        if not self.marks or self.clock.cpu_seconds < self.marks[0]:
            return
        passed = [m for m in self.marks if m <= self.clock.cpu_seconds]
        self.marks = self.marks[len(passed) :]
        path = self.checkpoints.snapshot(event.step)
        self.metrics.write(
            record(
                "snapshot",
                event.stage,
                event.step,
                self.clock,
                cpu_marks=passed,
                checkpoint=path,
            )
        )


class Profiling:
    """A `tf.profiler` trace from after step `first` to after step `last` (or the run's end).

    The trace holds what runs in between: steps, input, validation, logging
    and checkpoints. It goes to `logdir/plugins/profile/DATE/`, where
    TensorBoard's profile plugin reads it; `bench/profile_bench.py`
    summarizes it by op type.
    """

    def __init__(self, first, last, logdir):
        self.first, self.last, self.logdir = first, last, logdir
        self.active = False

    def after_step(self, event):
        import tensorflow as tf

        if event.step == self.first and not self.active:
            tf.profiler.experimental.start(self.logdir)
            self.active = True
        elif event.step >= self.last:
            self.stop()

    def stop(self):
        import tensorflow as tf

        if self.active:
            tf.profiler.experimental.stop()
            self.active = False


def _finite_or_none(value):
    value = float(value)
    return value if math.isfinite(value) else None
