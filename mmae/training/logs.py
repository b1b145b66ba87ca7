"""What a training run writes about itself: metrics.jsonl, TensorBoard, the progress bar.

`metrics.jsonl` has one JSON object per log interval, evaluation or
snapshot (`mmae.runs.read_metrics` reads it); TensorBoard gets the same
scalars, and at each evaluation images of every `model.display` array and
audio of every displayed log-mel.
"""

import importlib.util
import json
import logging
import os
import time

import numpy as np
import tensorflow as tf

from mmae.runs import read_jsonl

logger = logging.getLogger(__name__)


class MetricsLog:
    """`metrics.jsonl`, written by the chief only.

    Lines are appended and flushed; on `gs://`, where files cannot be
    appended to, the whole file is rewritten.
    """

    def __init__(self, path, enabled):
        self.path, self.enabled, self.records = path, enabled, []

    def resume(self, step):
        """Drops records past `step` (from steps a killed run had not saved); returns the last."""
        self.records = [r for r in read_jsonl(self.path) if r.get("step", 0) <= step]
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


class TensorBoard:
    """Summary writers for the train and validation splits (no-ops off the chief)."""

    SPLITS = ("train", "validation")

    def __init__(self, run_dir, enabled, audio_config, to_audio):
        self.audio_config, self.to_audio = audio_config, to_audio
        self.target_written = False
        installed = importlib.util.find_spec("tensorboard") is not None
        if enabled and not installed:
            # tf.summary needs the tensorboard package, which TensorFlow no longer requires.
            logger.warning(
                "TensorBoard is not installed (pip install tensorboard): training curves go to "
                "%s only.",
                os.path.join(run_dir, "metrics.jsonl"),
            )
        self.enabled = enabled and installed
        self.writers = {
            split: tf.summary.create_file_writer(os.path.join(run_dir, "tensorboard", split))
            if self.enabled
            else tf.summary.create_noop_writer()
            for split in self.SPLITS
        }

    def scalars(self, split, step, values):
        if not self.enabled:
            return
        with self.writers[split].as_default(step=step):
            for name, value in values.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    tf.summary.scalar(name, value)

    def examples(self, step, arrays, frames):
        """Images of every displayed array, and audio of every displayed log-mel.

        The target's audio is written once; tags are `display/NAME` and
        `audio/NAME`, apart from the loss scalars of the same names.
        """
        if not self.enabled:
            return
        peak_level = self.audio_config.output_peak_level
        with self.writers["validation"].as_default(step=step):
            for name, array in arrays.items():
                array = np.asarray(array)
                if not (array.ndim in (1, 2) and array.size and np.isfinite(array).all()):
                    continue
                tf.summary.image(f"display/{name}", plot_array(array, name)[None])
                is_mel = name.startswith("mel") and array.ndim == 2
                if not is_mel or array.shape[1] != self.audio_config.num_mels:
                    continue
                if name == "mel_target" and self.target_written:
                    continue
                audio = self.to_audio(array[:frames])
                peak = max(float(np.max(np.abs(audio))), 1e-6)
                waveform = (peak_level * audio / peak).astype(np.float32)[None, :, None]
                tf.summary.audio(f"audio/{name}", waveform, self.audio_config.sample_rate)
                self.target_written |= name == "mel_target"

    def flush(self):
        for writer in self.writers.values():
            writer.flush()


class Interval:
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


def record(split, stage, step, clock, **values):
    """A metrics.jsonl record: where and when, then `values`."""
    return {
        "split": split,
        "step": step,
        "stage": stage.name,
        "wall_time": time.time(),
        "train_seconds": clock.train_seconds,
        "cpu_seconds": clock.cpu_seconds,
        **values,
    }


def plot_array(array, title):
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
