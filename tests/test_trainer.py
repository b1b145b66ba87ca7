"""The trainer (mmae.training), with a toy model that follows the model protocol.

Tests that need a fresh process (process-global op determinism, logical CPU
devices, a second worker, kill -9) run small scripts through `_python`; the
rest call `train` in this process.
"""

import glob
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import types

import keras
import numpy as np
import pytest
import tensorflow as tf

from mmae.config import Config, IncompatibleConfigError
from mmae.datasets.pipeline import make_dataset
from mmae.training import (
    NonFiniteLossError,
    Stage,
    Update,
    WarmupCosineDecay,
    read_metrics,
    restore_weights,
    stages_for,
    train,
)

TESTS = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(TESTS)
# How long a training subprocess may take before it counts as hung: a guard,
# not a speed check (a loaded machine took over 120 s for the mirrored one).
HANG = 600


class ToyModel(keras.Model):
    """A few hundred parameters that follow the trainer's model protocol.

    Args:
        num_mels, vocab_size: data sizes.
        nan_steps: global steps whose loss and gradients are NaN.
        signal_at_step: `(signum, step)`: the model sends its own process
            `signum` during that global step (not with jit_compile).
        delay: seconds each step sleeps (not with jit_compile).
    """

    def __init__(self, num_mels, vocab_size, nan_steps=(), signal_at_step=None, delay=0.0):
        super().__init__()
        self.num_mels = num_mels
        self.nan_steps = list(nan_steps)
        self.signal_at_step = signal_at_step
        self.delay = delay
        self.audio_encoder = keras.layers.Dense(4)
        self.text_encoder = keras.layers.Embedding(vocab_size, 4)
        self.decoder = keras.layers.Dense(num_mels)

    @property
    def parts(self):
        # The parts the regimes name; the toy has no aligner, speakers, ...
        absent = ("length_regulator", "aligner", "duration_predictor", "speakers")
        present = ("audio_encoder", "text_encoder", "decoder")
        return {**{name: getattr(self, name) for name in present}, **dict.fromkeys(absent)}

    def predict_mel(self, batch, objective):
        hidden = keras.ops.cast(self.audio_encoder(batch["mel"]), "float32")
        if objective != "audio":
            mask = batch["token_mask"][..., None]
            embedded = keras.ops.cast(self.text_encoder(batch["tokens"]), "float32")
            text = keras.ops.sum(embedded * mask, axis=1)
            hidden = hidden + (text / keras.ops.maximum(keras.ops.sum(mask, axis=1), 1.0))[:, None]
        return keras.ops.cast(self.decoder(keras.ops.tanh(hidden)), "float32")

    def compute_losses(self, batch, *, objective, step, training):
        if self.delay or self.signal_at_step:
            tf.py_function(self._side_effects, [step], [])
        mask = batch["frame_mask"][..., None]
        error = keras.ops.abs(self.predict_mel(batch, objective) - batch["mel"]) * mask
        # A mean over clips of each clip's mean, so that the mean over replicas
        # of replica losses is the loss of the global batch.
        per_clip = keras.ops.sum(error, axis=(1, 2)) / (
            keras.ops.sum(mask, axis=(1, 2)) * self.num_mels
        )
        mel_loss = keras.ops.mean(per_clip)
        if self.nan_steps:
            poisoned = keras.ops.any(keras.ops.equal(step, self.nan_steps))
            mel_loss = mel_loss * keras.ops.where(poisoned, float("nan"), 1.0)
        size = keras.ops.mean(keras.ops.square(self.audio_encoder.kernel))
        return {"loss": mel_loss + 1e-3 * size, "mel_loss": mel_loss}

    def _side_effects(self, step):
        time.sleep(self.delay)
        if self.signal_at_step and int(step) == self.signal_at_step[1]:
            os.kill(os.getpid(), self.signal_at_step[0])

    def display(self, batch):
        return {
            "mel_target": batch["mel"][0].numpy(),
            "mel_predicted": self.predict_mel(batch, "joint")[0].numpy(),
        }


def toy_model_fn(**options):
    def build(config, dataset_info):
        return ToyModel(config.audio.num_mels, config.text.vocab_size, **options)

    return build


# Fast settings for the tiny data: no XLA unless a test asks, no warm-up.
FAST = [
    "train.jit_compile=false",
    "train.steps=6",
    "train.warmup_steps=0",
    "train.learning_rate=0.01",
    "train.log_every=1",
    "train.eval_every=1000",
    "train.checkpoint_every=1000",
]


def fast_config(*overrides):
    return Config.load("tiny", overrides=FAST + list(overrides))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """The tiny config's features of 16 sample clips (14 train, 2 validation)."""
    from conftest import make_ljspeech, sample_rows
    from mmae.datasets.prepare import prepare

    root = tmp_path_factory.mktemp("trainer")
    corpus = make_ljspeech(root / "corpus", sample_rows(16))
    config = Config.load("tiny", overrides=["data.clips_per_shard=4"])
    prepare(corpus, str(root / "prepared"), config, jobs=1, progress=False)
    return str(root / "prepared")


def _checkpoint_values(run_dir, step, directory="checkpoints"):
    reader = tf.train.load_checkpoint(os.path.join(run_dir, directory, f"ckpt-{step}"))
    return {
        name: reader.get_tensor(name)
        for name in reader.get_variable_to_shape_map()
        if name.startswith(("weights/", "optimizers/"))
    }


def _part_weights(run_dir, step, data_dir, config):
    """A toy model's weights per part, restored from `ckpt-STEP` by `restore_weights`."""
    model = ToyModel(config.audio.num_mels, config.text.vocab_size)
    batch = next(iter(make_dataset(data_dir, config, "train", training=False)))
    model.compute_losses(batch, objective="joint", step=0, training=False)  # creates every weight
    restore_weights(model, os.path.join(run_dir, "checkpoints", f"ckpt-{step}"))
    parts = ("audio_encoder", "text_encoder", "decoder")
    return {part: [w.numpy() for w in getattr(model, part).weights] for part in parts}


def test_restore_weights_loads_every_weight_of_the_real_model(data_dir, tmp_path):
    """Keras 3 hides list-held sublayers from tf.train.Checkpoint; every weight must come back."""
    from mmae.datasets.prepare import load_dataset_info
    from mmae.models import build_model

    run_dir = str(tmp_path / "run")
    config = fast_config("train.steps=2")
    train(config, data_dir, run_dir, progress=False)
    info = load_dataset_info(data_dir)
    fresh = build_model(config, info)
    trained = build_model(config, info)
    restore_weights(trained, run_dir)
    assert len(trained.weights) > 40  # the decoder's and encoders' blocks are in lists
    batch = next(iter(make_dataset(data_dir, config, "validation", training=False)))
    # A second restore into a fresh model gives identical outputs.
    again = build_model(config, info)
    restore_weights(again, os.path.join(run_dir, "checkpoints", "ckpt-2"))
    for a, b in zip(trained.weights, again.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    differs = [
        not np.array_equal(a.numpy(), b.numpy())
        for a, b in zip(fresh.weights, trained.weights, strict=True)
    ]
    assert sum(differs) >= len(trained.trainable_weights) - 2
    results = again.compute_losses(batch, objective="joint", step=2, training=False)
    expected = trained.compute_losses(batch, objective="joint", step=2, training=False)
    assert float(results["loss"]) == float(expected["loss"])
    with pytest.raises(FileNotFoundError, match="No checkpoint"):
        restore_weights(fresh, str(tmp_path))


def _losses(run_dir):
    return [(r["step"], r["loss"]) for r in read_metrics(run_dir, "train")]


def _python(script, *args, env=None, **kwargs):
    """Starts `python -c script args` with the repo and tests importable."""
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO, TESTS]))
    environment["TF_CPP_MIN_LOG_LEVEL"] = "2"
    environment.update(env or {})
    return subprocess.Popen(
        [sys.executable, "-c", script, *map(str, args)],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kwargs,
    )


def _result(process, timeout):
    """The JSON value a script printed last; fails with its output otherwise."""
    output, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, output[-3000:]
    # The last line that is JSON: gRPC may still log a peer's shutdown
    # ("failed to connect ... Connection refused") after it at exit.
    for line in reversed(output.strip().splitlines()):
        try:
            return json.loads(line)
        except ValueError:
            continue
    raise AssertionError(f"No JSON result in:\n{output[-3000:]}")


SCRIPT = """
import json, sys
from mmae.config import Config
from mmae.training import train, read_metrics
from test_trainer import fast_config, toy_model_fn
data_dir, run_dir = sys.argv[1], sys.argv[2]
"""


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


# Plain functions.


def test_stages_for_each_regime():
    config = Config.load("tiny", overrides=["train.steps=100", "train.pretrain_steps=30"]).train
    assert stages_for(config) == [Stage("joint", 0, 100, (Update("joint"),))]
    config.regime = "separate"
    audio = ("audio_encoder", "decoder", "speakers")
    text = ("text_encoder", "length_regulator", "aligner", "duration_predictor")
    assert stages_for(config) == [
        Stage("audio_autoencoder", 0, 30, (Update("audio", audio),)),
        Stage("text_to_latent", 30, 100, (Update("text", text),)),
    ]
    config.regime = "self_supervised"
    masked = Update("masked_audio", audio, (("mask_ratio", config.mask_ratio),))
    assert stages_for(config) == [
        Stage("masked_pretrain", 0, 30, (masked,)),
        Stage("joint", 30, 100, (Update("joint"),)),
    ]
    config.pretrain_steps = 100
    with pytest.raises(ValueError, match="pretrain_steps"):
        stages_for(config)


def test_warmup_cosine_schedule_and_its_config():
    schedule = WarmupCosineDecay(1e-3, warmup_steps=10, decay_steps=110, final_fraction=0.1)
    rates = np.array([float(schedule(step)) for step in range(120)])
    np.testing.assert_allclose(rates[:10], 1e-3 * np.arange(1, 11) / 10, rtol=1e-6)
    assert np.all(np.diff(rates[9:110]) <= 1e-12) and rates[60] < 1e-3
    np.testing.assert_allclose(rates[109:], 1e-4, rtol=1e-5)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert restored.get_config() == schedule.get_config()


def test_strategy_and_precision_choices(monkeypatch):
    from mmae.training import distribute

    monkeypatch.delenv("TF_CONFIG", raising=False)
    default = distribute.select_strategy()
    assert default is tf.distribute.get_strategy() and distribute.is_chief(default)
    assert distribute.select_strategy(default) is default
    with pytest.raises(ValueError, match="Unknown strategy"):
        distribute.select_strategy("horovod")
    cluster = {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"index": 1}}))
    assert distribute.tf_config_workers() == 2
    assert distribute.precision_policy("auto", default) == "float32"  # no GPU here
    assert distribute.precision_policy("none", default) == "float32"
    assert distribute.precision_policy("mixed_bfloat16", default) == "mixed_bfloat16"


def test_tpu_auto_falls_back_to_the_default_strategy_without_a_tpu(monkeypatch, caplog):
    from mmae.training import distribute

    for name in ("TPU_NAME", "COLAB_TPU_ADDR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(distribute.glob, "glob", lambda pattern: [])
    assert distribute.find_tpu() is None
    assert distribute.select_strategy(tpu="auto") is tf.distribute.get_strategy()
    assert "No TPU found" in caplog.text
    with pytest.raises(ValueError, match="no TPU found"):
        distribute.select_strategy("tpu")
    monkeypatch.setenv("COLAB_TPU_ADDR", "10.0.0.2:8470")
    assert distribute.find_tpu() == "grpc://10.0.0.2:8470"
    # A TPU that is named but does not answer falls back too, with the reason,
    # and leaves this process able to run TensorFlow work.
    (port,) = _free_ports(1)
    monkeypatch.setenv("COLAB_TPU_ADDR", f"127.0.0.1:{port}")
    caplog.clear()
    assert distribute.select_strategy(tpu="auto") is tf.distribute.get_strategy()
    assert "did not start" in caplog.text and "not reachable" in caplog.text
    assert list(tf.data.Dataset.range(3).map(lambda x: x + 1).as_numpy_iterator()) == [1, 2, 3]
    with pytest.raises(RuntimeError, match="not reachable"):
        distribute.select_strategy("tpu", tpu=f"grpc://127.0.0.1:{port}")
    monkeypatch.setattr(distribute.glob, "glob", lambda pattern: ["/dev/accel0"])
    monkeypatch.delenv("COLAB_TPU_ADDR")
    assert distribute.find_tpu() == "local"


# Training in this process.


def test_trains_stage_by_stage_with_xla_tracing_once_per_shape(data_dir, tmp_path):
    run_dir = str(tmp_path / "run")
    config = fast_config(
        "train.jit_compile=true",
        "train.regime=separate",
        "train.steps=16",
        "train.pretrain_steps=8",
        "train.eval_every=8",
    )
    first = train(config, data_dir, run_dir, model_fn=toy_model_fn(), progress=False, max_steps=8)
    assert (first["step"], first["stopped"]) == (8, "max_steps")
    # Resumes at the stage boundary: the second stage starts its own optimizer.
    summary = train(config, data_dir, run_dir, model_fn=toy_model_fn(), progress=False)
    assert (summary["resumed_from"], summary["step"], summary["stopped"]) == (8, 16, "finished")

    # 8 steps per stage over at most 3 bucket shapes: one trace per shape per stage.
    buckets = len(config.train.bucket_boundaries)
    assert 1 <= first["traces"]["audio_autoencoder"] <= buckets
    assert 1 <= summary["traces"]["text_to_latent"] <= buckets

    # The second stage trains only the text embedding.
    boundary = _part_weights(run_dir, 8, data_dir, config)
    end = _part_weights(run_dir, 16, data_dir, config)
    changed = {
        part
        for part in boundary
        if not all(np.array_equal(a, b) for a, b in zip(boundary[part], end[part], strict=True))
    }
    assert changed == {"text_encoder"}

    train_records = read_metrics(run_dir, "train")
    assert [r["step"] for r in train_records] == list(range(1, 17))
    assert train_records[-1]["loss"] < train_records[0]["loss"]
    for key in ("mel_loss", "learning_rate", "grad_norm", "frames_per_second", "train_seconds"):
        assert train_records[-1][key] > 0, key
    validation = read_metrics(run_dir, "validation")
    assert [(r["step"], r["stage"]) for r in validation] == [
        (8, "audio_autoencoder"),
        (16, "text_to_latent"),
    ]
    assert summary["validation"]["loss"] == validation[-1]["loss"] > 0
    assert Config.load(os.path.join(run_dir, "config.yaml")) == config

    if importlib.util.find_spec("tensorboard") is None:
        return  # TensorFlow no longer installs it; metrics.jsonl is the record then.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags = {}
    for split in ("train", "validation"):
        events = EventAccumulator(os.path.join(run_dir, "tensorboard", split))
        tags[split] = set(events.Reload().Tags()["tensors"])
    assert {"loss", "learning_rate", "grad_norm", "frames_per_second"} <= tags["train"]
    expected = {"display/mel_target", "display/mel_predicted", "audio/mel_predicted"}
    assert {"loss", "audio/mel_target"} | expected <= tags["validation"]


def test_trains_the_real_model_for_a_step(data_dir, tmp_path):
    # The default model_fn: mmae.models.build_model on the tiny config's sizes,
    # with jit_compile "auto" (off on this CPU-only machine).
    config = fast_config("train.steps=1", "train.jit_compile=auto")
    summary = train(config, data_dir, str(tmp_path / "run"), progress=False)
    assert (summary["step"], summary["nonfinite_steps"]) == (1, 0)
    assert {"loss", "mel_text", "mel_audio"} <= set(summary["validation"])


def test_resumes_at_the_exact_step_with_its_stored_config(data_dir, tmp_path, caplog):
    run_dir = str(tmp_path / "run")
    config = fast_config()
    summary = train(config, data_dir, run_dir, model_fn=toy_model_fn(), progress=False, max_steps=3)
    assert (summary["step"], summary["stopped"]) == (3, "max_steps")

    changed_model = Config.load("tiny", overrides=FAST + ["model.hidden_dim=7"])
    with pytest.raises(IncompatibleConfigError, match="model.hidden_dim"):
        train(changed_model, data_dir, run_dir, model_fn=toy_model_fn(), progress=False)

    # Other settings come from the run; a warning says which were ignored.
    longer = fast_config("train.steps=50")
    summary = train(longer, data_dir, run_dir, model_fn=toy_model_fn(), progress=False)
    assert (summary["resumed_from"], summary["step"]) == (3, 6)
    assert "ignoring the given train.steps" in caplog.text
    assert [r["step"] for r in read_metrics(run_dir, "train")] == [1, 2, 3, 4, 5, 6]
    values = _checkpoint_values(run_dir, 6)
    (iterations,) = [v for name, v in values.items() if "iterations" in name]
    assert iterations == 6  # the optimizer's state came back with the weights

    again = train(config, data_dir, run_dir, model_fn=toy_model_fn(), progress=False)
    assert (again["step"], again["stopped"]) == (6, "finished") and "nothing to do" in again[
        "message"
    ]


def test_time_budget_stops_with_validation_and_checkpoint(data_dir, tmp_path):
    run_dir = str(tmp_path / "run")
    config = fast_config("train.steps=1000", "train.eval_every=1000")
    summary = train(
        config, data_dir, run_dir, model_fn=toy_model_fn(), progress=False, time_budget_s=1e-9
    )
    # The first step already spends the budget: one step, validated and saved.
    assert (summary["step"], summary["stopped"]) == (1, "time_budget")
    assert summary["validation"] and summary["checkpoint"].endswith("ckpt-1")
    again = train(
        config, data_dir, run_dir, model_fn=toy_model_fn(), progress=False, time_budget_s=1e-9
    )
    assert (again["step"], again["stopped"]) == (1, "time_budget") and "time budget" in again[
        "message"
    ]


def test_each_call_accounts_for_its_wall_time_by_phase(data_dir, tmp_path):
    run_dir = str(tmp_path / "run")
    config = fast_config(
        "train.steps=8", "train.eval_every=2", "train.display_every=5", "train.checkpoint_every=4"
    )
    summary = train(config, data_dir, run_dir, model_fn=toy_model_fn(), progress=False)
    timing = summary["timing"]
    seconds = timing["phase_seconds"]
    phases = ("setup", "input", "tracing", "step", "logging", "validation", "display")
    for phase in phases + ("checkpoints",):
        assert seconds[phase] > 0, phase
    # Validation every 2 steps; the TensorBoard examples every 5 and at the end.
    assert [r["step"] for r in read_metrics(run_dir, "validation")] == [2, 4, 6, 8]
    if importlib.util.find_spec("tensorboard") is not None:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        events = EventAccumulator(os.path.join(run_dir, "tensorboard", "validation")).Reload()
        assert [e.step for e in events.Tensors("display/mel_predicted")] == [5, 8]
        assert [e.step for e in events.Tensors("loss")] == [2, 4, 6, 8]
    # The phases (with "other", the rest) add up to the call's wall time.
    assert sum(seconds.values()) == pytest.approx(timing["wall_seconds"], rel=1e-3, abs=1e-2)
    assert sum(timing["phase_shares"].values()) == pytest.approx(1, abs=1e-2)
    assert timing["step_share"] == timing["phase_shares"]["step"]
    (record,) = read_metrics(run_dir, "timing")
    assert record["step"] == 8 and record["phase_seconds"] == seconds


def test_profile_steps_trace_between_two_steps(data_dir, tmp_path):
    run_dir = str(tmp_path / "run")
    config = fast_config("train.steps=4")
    with pytest.raises(ValueError, match="1 <= first < last"):
        train(config, data_dir, run_dir, model_fn=toy_model_fn(), profile_steps=(0, 2))
    summary = train(
        config, data_dir, run_dir, model_fn=toy_model_fn(), progress=False, profile_steps=(1, 3)
    )
    assert summary["step"] == 4 and summary["timing"]["phase_seconds"]["profiling"] > 0
    traces = glob.glob(
        os.path.join(run_dir, "tensorboard", "plugins", "profile", "*", "*.xplane.pb")
    )
    assert len(traces) == 1 and os.path.getsize(traces[0]) > 0


def test_nonfinite_steps_leave_weights_and_optimizer_unchanged(data_dir, tmp_path):
    run_dir = str(tmp_path / "run")
    config = fast_config("train.steps=4", "train.checkpoint_every=3")
    model_fn = toy_model_fn(nan_steps=[3])  # the fourth step
    summary = train(config, data_dir, run_dir, model_fn=model_fn, progress=False)
    assert summary["step"] == 4 and summary["nonfinite_steps"] == 1
    before, after = _checkpoint_values(run_dir, 3), _checkpoint_values(run_dir, 4)
    assert before.keys() == after.keys() and len(before) > 4
    for name in before:
        np.testing.assert_array_equal(before[name], after[name], err_msg=name)
    last = read_metrics(run_dir, "train")[-1]
    assert last["step"] == 4 and last["nonfinite_steps"] == 1 and "loss" not in last


def test_skipped_steps_are_counted_over_stages(data_dir, tmp_path):
    config = fast_config("train.regime=separate", "train.steps=4", "train.pretrain_steps=2")
    model_fn = toy_model_fn(nan_steps=[1, 3])  # one step of each stage
    summary = train(config, data_dir, str(tmp_path / "run"), model_fn=model_fn, progress=False)
    assert (summary["step"], summary["nonfinite_steps"]) == (4, 2)


def test_consecutive_nonfinite_steps_stop_training(data_dir, tmp_path):
    run_dir = str(tmp_path / "run")
    config = fast_config("train.max_nonfinite_steps=3", "train.checkpoint_every=1")
    model_fn = toy_model_fn(nan_steps=range(2, 100))
    with pytest.raises(NonFiniteLossError, match="3 steps in a row") as error:
        train(config, data_dir, run_dir, model_fn=model_fn, progress=False)
    assert "ckpt-4" in str(error.value)  # the skipped steps left the weights finite
    for step in (2, 3, 4):
        assert all(np.isfinite(v).all() for v in _checkpoint_values(run_dir, step).values())

    # Weights that become NaN despite finite gradients are never saved.
    run_dir = str(tmp_path / "infinite_rate")
    config = fast_config("train.learning_rate=.inf", "train.checkpoint_every=2")
    with pytest.raises(NonFiniteLossError, match="Not saving step 2"):
        train(config, data_dir, run_dir, model_fn=toy_model_fn(), progress=False)
    assert not os.path.exists(os.path.join(run_dir, "checkpoints", "checkpoint"))


def test_sigterm_saves_and_stops_cleanly_then_resumes(data_dir, tmp_path):
    run_dir = str(tmp_path / "run")
    config = fast_config()
    handler = signal.getsignal(signal.SIGTERM)
    # The toy sends SIGTERM to this process during the second step (SIGINT: see test_cli_train).
    model_fn = toy_model_fn(signal_at_step=(signal.SIGTERM, 1))
    summary = train(config, data_dir, run_dir, model_fn=model_fn, progress=False)
    assert (summary["step"], summary["stopped"]) == (2, "SIGTERM")
    assert summary["checkpoint"].endswith("ckpt-2") and "resume" in summary["message"]
    assert signal.getsignal(signal.SIGTERM) is handler  # put back
    summary = train(config, data_dir, run_dir, model_fn=toy_model_fn(), progress=False)
    assert (summary["resumed_from"], summary["step"], summary["stopped"]) == (2, 6, "finished")


def test_mixed_float16_trains_with_loss_scaling(data_dir, tmp_path):
    config = fast_config("train.mixed_precision=mixed_float16", "train.steps=3")
    summary = train(
        config, data_dir, str(tmp_path / "run"), model_fn=toy_model_fn(), progress=False
    )
    assert summary["precision_policy"] == "mixed_float16" and summary["step"] == 3
    assert summary["nonfinite_steps"] == 0 and np.isfinite(summary["losses"]["loss"])
    assert keras.mixed_precision.global_policy().name == "float32"  # restored


def test_cli_train(data_dir, tmp_path, monkeypatch, capsys):
    from mmae.cli import main

    models = types.ModuleType("mmae.models")
    models.build_model = toy_model_fn()
    monkeypatch.setitem(sys.modules, "mmae.models", models)
    run_dir = str(tmp_path / "run")
    args = ["train", "--data", data_dir, "--run-dir", run_dir, "--quiet", "--steps", "2"]
    fast = [arg for item in FAST for arg in ("--set", item)]
    assert main(args + fast) == 0
    out = capsys.readouterr().out
    assert "Trained to step 2" in out and "Wall time" in out and "step" in out
    # The data's own config was used, then --set on top.
    assert Config.load(os.path.join(run_dir, "config.yaml")).train.log_every == 1

    budgeted = ["train", "--data", data_dir, "--run-dir", str(tmp_path / "budget"), "--quiet"]
    assert main(budgeted + ["--minutes", "1e-12"] + fast) == 0
    assert "time budget" in capsys.readouterr().out
    assert read_metrics(str(tmp_path / "budget"), "train")[-1]["step"] == 1
    # A budget that is not positive is refused before anything is written.
    assert (
        main(["train", "--data", data_dir, "--run-dir", str(tmp_path / "zero"), "--minutes", "0"])
        == 2
    )
    assert "--minutes must be a positive" in capsys.readouterr().err
    assert main(budgeted[:-1] + ["--profile", "3"]) == 2
    assert "--profile takes FIRST:LAST" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "zero")

    assert main(args + ["--set", "model.hidden_dim=7"]) == 2
    assert "model.hidden_dim" in capsys.readouterr().err
    assert main(["train", "--data", str(tmp_path / "nothing"), "--run-dir", run_dir]) == 2
    assert "not a finished prepared dataset" in capsys.readouterr().err

    models.build_model = toy_model_fn(signal_at_step=(signal.SIGINT, 1))
    interrupted = ["train", "--data", data_dir, "--run-dir", str(tmp_path / "ctrl_c"), "--quiet"]
    assert main(interrupted + fast) == 130
    assert os.path.exists(os.path.join(tmp_path, "ctrl_c", "checkpoints", "ckpt-2.index"))


# Training in fresh processes.


def test_kill_9_loses_only_the_steps_since_the_last_checkpoint(data_dir, tmp_path):
    run_dir = str(tmp_path / "run")
    overrides = ["train.steps=40", "train.checkpoint_every=5"]
    script = SCRIPT + f"train(fast_config(*{overrides!r}), data_dir, run_dir, "
    script += "model_fn=toy_model_fn(delay=0.05), progress=False)"
    process = _python(script, data_dir, run_dir)
    state = os.path.join(run_dir, "checkpoints", "checkpoint")
    deadline = time.monotonic() + 60
    while not (os.path.exists(state) and "ckpt-10" in open(state).read()):
        assert process.poll() is None, process.communicate()[0][-3000:]
        assert time.monotonic() < deadline, "no second checkpoint within 60 s"
        time.sleep(0.02)
    process.kill()  # SIGKILL: no chance to save
    process.wait()
    saved = int(tf.train.latest_checkpoint(os.path.dirname(state)).rsplit("-", 1)[1])
    assert 10 <= saved < 40
    logged = [r["step"] for r in read_metrics(run_dir, "train")]
    summary = train(
        fast_config(*overrides), data_dir, run_dir, model_fn=toy_model_fn(), progress=False
    )
    assert (summary["resumed_from"], summary["step"], summary["stopped"]) == (saved, 40, "finished")
    # The killed run's records past its last checkpoint were replaced by the resumed ones.
    assert max(logged) >= saved
    assert [r["step"] for r in read_metrics(run_dir, "train")] == list(range(1, 41))


def test_deterministic_runs_give_identical_losses(data_dir, tmp_path):
    script = SCRIPT + (
        "train(fast_config('train.deterministic=true', 'train.steps=20'), data_dir, run_dir, "
        "model_fn=toy_model_fn(), progress=False)\n"
        "print(json.dumps([r['loss'] for r in read_metrics(run_dir, 'train')]))"
    )
    # Op determinism is process-wide, so each run gets its own process (both at once).
    processes = [_python(script, data_dir, tmp_path / f"run{i}") for i in range(2)]
    first, second = [_result(process, timeout=HANG) for process in processes]
    assert len(first) == 20 and first == second


def test_mirrored_strategy_matches_the_default_strategy(data_dir, tmp_path):
    script = (
        "import tensorflow as tf\n"
        "cpu = tf.config.list_physical_devices('CPU')[0]\n"
        "tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)\n"
        + SCRIPT
        + """
results = {}
# The same global batch of 8: 8 on one replica, or 4 on each of two; the
# learning rate is scaled by the replica count, so the updates are the same.
for name, batch_size, rate in [("default", 8, 0.01), ("mirrored", 4, 0.005)]:
    config = fast_config(
        "train.deterministic=true", "train.jit_compile=true", f"train.batch_size={batch_size}",
        f"train.learning_rate={rate}", "train.eval_every=6",
    )
    summary = train(config, data_dir, f"{run_dir}/{name}", model_fn=toy_model_fn(),
                    strategy=name, progress=False)
    records = read_metrics(f"{run_dir}/{name}", "train")
    results[name] = {"replicas": summary["replicas"], "validation": summary["validation"]["loss"],
                     "losses": [r["loss"] for r in records], "norms": [r["grad_norm"] for r in records]}
print(json.dumps(results))
"""
    )
    results = _result(_python(script, data_dir, tmp_path), timeout=HANG)
    default, mirrored = results["default"], results["mirrored"]
    assert (default["replicas"], mirrored["replicas"]) == (1, 2)
    # Two replicas sum the same numbers in another order: float32 round-off only
    # (a gradient summed twice, or a batch split wrongly, is off by far more).
    np.testing.assert_allclose(mirrored["losses"], default["losses"], rtol=1e-5)
    np.testing.assert_allclose(mirrored["norms"], default["norms"], rtol=1e-4)
    np.testing.assert_allclose(mirrored["validation"], default["validation"], rtol=1e-5)
    # Weights and Adam moments too: a gradient summed twice would show in the moments.
    runs = [str(tmp_path / name) for name in ("default", "mirrored")]
    values = [_checkpoint_values(run, 6) for run in runs]
    assert values[0].keys() == values[1].keys()
    for name in values[0]:
        np.testing.assert_allclose(values[1][name], values[0][name], rtol=1e-4, atol=1e-6)


def test_multi_worker_strategy_on_two_local_workers(data_dir, tmp_path):
    run_dir = str(tmp_path / "run")
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    script = SCRIPT + (
        "summary = train(fast_config('train.steps=4', 'train.eval_every=4'), data_dir, run_dir, "
        "model_fn=toy_model_fn(), progress=False)\n"
        "print(json.dumps(summary))"
    )
    processes = [
        _python(
            script,
            data_dir,
            run_dir,
            env={
                "TF_CONFIG": json.dumps(
                    {"cluster": cluster, "task": {"type": "worker", "index": i}}
                )
            },
        )
        for i in range(2)
    ]
    try:  # Collectives wait forever for a missing worker: bound the wait.
        chief, worker = [_result(process, timeout=HANG) for process in processes]
    finally:
        for process in processes:
            process.kill()
    # MultiWorkerMirroredStrategy's class is CollectiveAllReduceStrategy.
    assert chief["strategy"] == worker["strategy"] == "CollectiveAllReduceStrategy"
    assert chief["replicas"] == 2 and chief["step"] == worker["step"] == 4
    # Every reported value is reduced over both workers.
    assert chief["losses"] == worker["losses"] and chief["validation"] == worker["validation"]
    assert os.path.exists(os.path.join(run_dir, "checkpoints", "ckpt-4.index"))
    assert [r["step"] for r in read_metrics(run_dir, "train")] == [1, 2, 3, 4]


def test_cpu_budget_counts_process_cpu_time_over_resumes(data_dir, tmp_path):
    run_dir = str(tmp_path / "run")
    config = fast_config("train.steps=1000", "train.eval_every=1000", "train.log_every=1")
    summary = train(
        config, data_dir, run_dir, model_fn=toy_model_fn(), progress=False, cpu_budget_s=1e-9
    )
    assert (summary["step"], summary["stopped"]) == (1, "time_budget")
    assert summary["cpu_seconds"] > 0
    records = read_metrics(run_dir)
    assert all(r["cpu_seconds"] == summary["cpu_seconds"] for r in records)
    # A resumed run starts from the stored CPU time, so it is out of budget at once.
    again = train(
        config, data_dir, run_dir, model_fn=toy_model_fn(), progress=False, cpu_budget_s=1e-6
    )
    assert again["step"] == 1 and "CPU s" in again["message"]


def test_snapshots_at_cpu_marks_outlive_keep_last_n(data_dir, tmp_path):
    run_dir = str(tmp_path / "run")
    config = fast_config("train.checkpoint_every=1", "train.keep_checkpoints=1")
    # Two marks passed at the first step give one snapshot; one is never reached.
    marks = (1e-9, 2e-9, 1e9)

    def run(max_steps):
        train(
            config,
            data_dir,
            run_dir,
            model_fn=toy_model_fn(),
            progress=False,
            max_steps=max_steps,
            snapshot_cpu_s=marks,
        )

    run(2)
    (record,) = read_metrics(run_dir, "snapshot")
    assert record["step"] == 1 and record["cpu_marks"] == [1e-9, 2e-9]
    assert record["checkpoint"] == os.path.join("snapshots", "ckpt-1")
    assert os.listdir(os.path.join(run_dir, "checkpoints")).count("ckpt-1.index") == 0
    snapshot = _checkpoint_values(run_dir, 1, directory="snapshots")
    assert snapshot and all(name.startswith("weights/") for name in snapshot)
    model = ToyModel(config.audio.num_mels, config.text.vocab_size)
    batch = next(iter(make_dataset(data_dir, config, "train", training=False)))
    model.compute_losses(batch, objective="joint", step=0, training=False)
    restore_weights(model, os.path.join(run_dir, "snapshots", "ckpt-1"))

    # Resuming does not write the passed marks again.
    run(None)
    assert [r["step"] for r in read_metrics(run_dir, "snapshot")] == [1]
    assert sorted(os.listdir(os.path.join(run_dir, "snapshots"))) == [
        "ckpt-1.data-00000-of-00001",
        "ckpt-1.index",
    ]


class ToyAdversarial(keras.Model):
    """A generator and a discriminator trained by alternating updates (least-squares GAN)."""

    def __init__(self, num_mels):
        super().__init__()
        self.generator = keras.layers.Dense(num_mels)
        self.discriminator = keras.layers.Dense(1)

    @property
    def parts(self):
        return {"generator": self.generator, "discriminator": self.discriminator}

    def compute_losses(self, batch, *, objective, step, training):
        mask = batch["frame_mask"][..., None]
        count = keras.ops.maximum(keras.ops.sum(mask), 1.0)
        fake = self.generator(batch["mel"]) * mask
        real_score, fake_score = self.discriminator(batch["mel"]), self.discriminator(fake)
        if objective == "discriminator":
            error = keras.ops.square(real_score - 1.0) + keras.ops.square(fake_score)
            return {"loss": keras.ops.sum(error * mask) / count}
        adversarial = keras.ops.sum(keras.ops.square(fake_score - 1.0) * mask) / count
        l1 = keras.ops.sum(keras.ops.abs(fake - batch["mel"])) / count
        return {"loss": adversarial + l1, "l1": l1}

    def display(self, batch):
        return {}


def test_alternating_updates_with_two_optimizers_in_one_loop(data_dir, tmp_path):
    from mmae.training.regimes import Stage, Update

    run_dir = str(tmp_path / "run")
    stages = [
        Stage(
            "adversarial",
            0,
            4,
            (Update("discriminator", ("discriminator",)), Update("generator", ("generator",))),
        )
    ]
    config = fast_config("train.steps=4", "train.eval_every=2")

    def model_fn(config, info):
        return ToyAdversarial(config.audio.num_mels)

    def run(max_steps):
        return train(
            config,
            data_dir,
            run_dir,
            model_fn=model_fn,
            stages=stages,
            progress=False,
            max_steps=max_steps,
        )

    assert run(2)["step"] == 2
    summary = run(None)
    assert (summary["resumed_from"], summary["step"]) == (2, 4)
    assert {"discriminator/loss", "generator/loss", "generator/l1"} <= set(summary["validation"])
    record = read_metrics(run_dir, "train")[-1]
    for key in ("discriminator/loss", "generator/loss", "generator/grad_norm"):
        assert np.isfinite(record[key]), key
    assert record["generator/learning_rate"] > 0 and record["discriminator/learning_rate"] > 0
    # Both optimizers live in the one checkpoint, each past all 4 steps (the
    # second call resumed them), and each update trained only its own part.
    values = _checkpoint_values(run_dir, 4)
    iterations = {
        name.split("/")[1]: int(value) for name, value in values.items() if "iterations" in name
    }
    assert iterations == {"discriminator": 4, "generator": 4}
    at_2, at_4 = _checkpoint_values(run_dir, 2), values
    for name in at_2:
        if name.startswith("weights/"):
            assert not np.array_equal(at_2[name], at_4[name]), name


def test_one_training_per_run_dir_and_a_killed_one_leaves_no_stale_lock(data_dir, tmp_path):
    run_dir = str(tmp_path / "run")
    script = SCRIPT + (
        "config = fast_config('train.steps=200', 'train.checkpoint_every=1')\n"
        "summary = train(config, data_dir, run_dir, model_fn=toy_model_fn(delay=float(sys.argv[3])),"
        " progress=False)\n"
        "print(json.dumps({'step': summary['step']}))\n"
    )
    first = _python(script, data_dir, run_dir, 0.2)
    lock = os.path.join(run_dir, "lock")
    deadline = time.time() + HANG
    while not os.path.exists(os.path.join(run_dir, "checkpoints", "ckpt-1.index")):
        assert first.poll() is None and time.time() < deadline, "the first training did not start"
        time.sleep(0.5)
    assert json.load(open(lock))["pid"] == first.pid

    second = _python(script, data_dir, run_dir, 0.0)
    output, _ = second.communicate(timeout=HANG)
    assert second.returncode != 0
    assert f"is being trained by pid {first.pid} on {socket.gethostname()}" in output
    assert first.poll() is None  # undisturbed

    first.kill()  # SIGKILL: the lock file stays, the flock goes with the process
    first.wait(timeout=30)
    assert os.path.exists(lock)
    third = _python(script.replace("train.steps=200", "train.steps=3"), data_dir, run_dir, 0.0)
    output, _ = third.communicate(timeout=HANG)
    assert third.returncode == 0, output[-3000:]
    assert f"Took over {lock} from pid {first.pid}" in output
    assert not os.path.exists(lock)  # released at the end
