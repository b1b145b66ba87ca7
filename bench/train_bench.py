"""Training-step benchmark: XLA, bfloat16 and shape-relaxed graphs against plain graph mode.

    .venv/bin/python -m bench.train_bench [--data prepared/slt1600] [--quick]

Every measurement uses the same model (the flite16k preset's), the same
optimizer update and the same batch, in one process, so their ratios are
meaningful on a noisy machine:

1. Step time of the full training step (losses, gradients, clipping, AdamW),
   per bucket shape, in five modes: a graph traced for the batch's shape
   (`graph`, what the trainer traced for each bucket), XLA
   (`jit_compile=True`), a graph traced for any batch and length
   (`relaxed`: unknown dimensions, one trace for every bucket), the
   `graph` step with Keras' `mixed_bfloat16` policy (`bfloat16`; this
   CPU has AVX512-BF16), and the `graph` step with Keras's own dropout
   layer (`keras_dropout`: a float random number an element, where
   `mmae.layers.Dropout` draws 16 bits). Compile time and steady seconds
   per step (median of the timed steps). The modes' steps take turns
   (`harness.time_in_rotation`), so a busy machine slows them alike.
2. Model FLOPs per step (TensorFlow's profiler over the step's graph: matmul,
   convolution and friends) against the machine's dense matmul throughput,
   float32 and bfloat16, timed in the same rotation as the steps (a 2048^3
   matmul of each precision takes its turn beside them): the utilization,
   in percent, each mode against its precision's peak. A peak timed apart
   from the steps made the utilization swing with the host's speed.

Writes bench/results/train_bench.json and .png.
"""

import json
import os
import statistics
import sys

import numpy as np

from bench.harness import REPO, Benchmark, pyplot, save_figure, time_in_rotation


def add_arguments(parser):
    parser.add_argument("--data", default=os.path.join(REPO, "prepared", "sample"))
    parser.add_argument("--config", default="flite16k")
    parser.add_argument("--steps", type=int, default=8, help="timed steps per bucket and mode")
    parser.add_argument("--buckets", type=int, default=2, help="bucket shapes to time")


def measure(args):
    """Every mode's step, and the matmul peaks, on the longest bucket shapes."""
    import tensorflow as tf

    from mmae.config import Config

    overrides = ["train.jit_compile=false"]
    steps, buckets = args.steps, args.buckets
    if args.quick:
        overrides += ["model.hidden_dim=32", "model.latent_dim=16", "model.decoder_layers=2"]
        steps, buckets = 2, 1
    config = Config.load(args.config, overrides=overrides)
    batches = _one_batch_per_bucket(args.data, config, buckets)

    results = {
        "data": os.path.relpath(args.data, REPO),
        "model": config.to_dict()["model"],
        "buckets": [],
    }
    # The smoke mode leaves XLA's compile out (tests/test_trainer.py trains with XLA).
    modes = {mode: options for mode, options in MODES.items() if not (args.quick and mode == "xla")}
    matmul_seconds = {dtype: [] for dtype in MATMULS}
    for batch in batches:
        shape = list(batch["mel"].shape)
        entry = {"batch_shape": shape, "real_frames": int(tf.reduce_sum(batch["num_frames"]))}
        timings, matmuls = _time_steps(config, args.data, batch, steps, modes)
        entry.update(timings)
        for dtype, seconds in matmuls.items():
            entry[MATMULS[dtype]] = _matmul_rate(dtype, seconds)
            matmul_seconds[dtype] += seconds
        entry["graph"]["flops_per_step"] = _step_flops(config, args.data, batch)
        flops = entry["graph"]["flops_per_step"]
        for mode in modes:
            seconds = entry[mode]["seconds_per_step"]
            peak = entry[MATMULS["bfloat16" if mode == "bfloat16" else "float32"]]
            entry[mode]["gflops_per_s"] = round(flops / seconds / 1e9, 2)
            entry[mode]["utilization_percent"] = round(
                100 * flops / seconds / (peak["gflops_per_s"] * 1e9), 1
            )
        for mode in [mode for mode in modes if mode != "graph"]:
            entry[f"{mode}_speedup"] = round(
                entry["graph"]["seconds_per_step"] / entry[mode]["seconds_per_step"], 3
            )
        results["buckets"].append(entry)
        print(json.dumps(entry))
    # Over every bucket's rotation.
    for dtype, seconds in matmul_seconds.items():
        results[MATMULS[dtype]] = _matmul_rate(dtype, seconds)
    return results


def _one_batch_per_bucket(data_dir, config, count):
    """The first batch seen of each of the `count` longest bucket shapes."""
    from mmae.datasets.pipeline import make_dataset

    found = {}
    for batch in make_dataset(data_dir, config, "train", deterministic=True).take(200):
        found.setdefault(int(batch["mel"].shape[1]), batch)
    return [found[frames] for frames in sorted(found)[-count:]]


# mode -> _train_step's options.
MODES = {
    "graph": {},
    "xla": {"jit": True},
    "relaxed": {"relaxed": True},
    "bfloat16": {"policy": "mixed_bfloat16"},
    "keras_dropout": {"keras_dropout": True},
}
# The utilization's denominators: dtype -> result key.
MATMULS = {"float32": "matmul", "bfloat16": "matmul_bfloat16"}
MATMUL_SIZE = 2048


def _train_step(
    config,
    data_dir,
    jit=False,
    relaxed=False,
    policy="float32",
    keras_dropout=False,
    batch=None,
):
    """A fresh model and optimizer, and the trainer's step without distribution.

    `relaxed`: traced once for any batch size and length (`batch` gives the
    keys and ranks). `policy`: the Keras dtype policy the model is built with.
    `keras_dropout`: the blocks use `keras.layers.Dropout` (a float32 random
    number an element) instead of `mmae.layers.Dropout` (16 bits).
    """
    import keras
    import tensorflow as tf

    from mmae import layers
    from mmae.datasets.prepare import load_dataset_info
    from mmae.models import build_model

    keras.utils.set_random_seed(0)
    previous = keras.mixed_precision.global_policy(), layers.Dropout
    keras.mixed_precision.set_global_policy(policy)
    if keras_dropout:
        layers.Dropout = keras.layers.Dropout
    try:
        model = build_model(config, load_dataset_info(data_dir))
    finally:
        keras.mixed_precision.set_global_policy(previous[0])
        layers.Dropout = previous[1]
    variables = model.trainable_variables
    optimizer = keras.optimizers.AdamW(config.train.learning_rate)
    optimizer.build(variables)
    signature = None
    if relaxed:
        signature = [
            {k: tf.TensorSpec([None] * len(v.shape), v.dtype) for k, v in batch.items()},
            tf.TensorSpec([], tf.int64),
        ]

    @tf.function(jit_compile=jit, input_signature=signature)
    def step(batch, global_step):
        with tf.GradientTape() as tape:
            losses = model.compute_losses(batch, objective="joint", step=global_step, training=True)
        gradients = tape.gradient(losses["loss"], variables)
        gradients, norm = tf.clip_by_global_norm(gradients, config.train.clip_norm)
        optimizer.apply(gradients, variables)
        return losses["loss"], norm

    return step


def _time_steps(config, data_dir, batch, steps, modes):
    """Each mode's step timings on `batch`, and matmul timings, all taking turns.

    Each mode's first step traces (and compiles); then `steps` passes run one
    step of every mode and one matmul of each precision in rotation, so load
    from elsewhere on the machine hits every mode, and the peak, alike.

    Returns:
        ({mode: timings}, {dtype: [seconds of one matmul]}).
    """
    import tensorflow as tf

    global_step = tf.constant(0, tf.int64)

    def runner(step):
        return lambda: step(batch, global_step)[0].numpy()

    runners = {
        mode: runner(_train_step(config, data_dir, batch=batch, **options))
        for mode, options in modes.items()
    }
    for dtype in MATMULS:
        runners[f"matmul_{dtype}"] = _matmul(dtype)
    _, first, seconds = time_in_rotation(runners, steps)
    timings = {}
    for mode in modes:
        median = statistics.median(seconds[mode])
        timings[mode] = {
            "first_step_s": round(first[mode], 2),
            "compile_s": round(first[mode] - median, 2),
            "seconds_per_step": round(median, 4),
            "step_seconds": [round(t, 4) for t in seconds[mode]],
        }
    return timings, {dtype: seconds[f"matmul_{dtype}"] for dtype in MATMULS}


def _step_flops(config, data_dir, batch):
    """Float operations of one training step, by TensorFlow's profiler."""
    import tensorflow as tf
    from tensorflow.python.profiler import model_analyzer, option_builder

    step = _train_step(config, data_dir)
    graph = step.get_concrete_function(batch, tf.constant(0, tf.int64)).graph
    options = (
        option_builder.ProfileOptionBuilder(option_builder.ProfileOptionBuilder.float_operation())
        .with_empty_output()
        .build()
    )
    return int(model_analyzer.profile(graph, options=options).total_float_ops)


def _matmul(dtype, size=MATMUL_SIZE):
    """A callable that runs one dense `size`^3 matmul in `dtype` and waits for it."""
    import tensorflow as tf

    a = tf.cast(tf.random.normal([size, size]), dtype)
    b = tf.cast(tf.random.normal([size, size]), dtype)
    matmul = tf.function(lambda x, y: tf.reduce_sum(tf.matmul(x, y)))
    return lambda: matmul(a, b).numpy()


def _matmul_rate(dtype, seconds, size=MATMUL_SIZE):
    """GFLOP/s of the median of `seconds`, the timings of one `size`^3 matmul."""
    median = statistics.median(seconds)
    return {
        "size": size,
        "dtype": dtype,
        "timed": len(seconds),
        "seconds": round(median, 4),
        "gflops_per_s": round(2 * size**3 / median / 1e9, 1),
    }


def _plot(results, path):
    plt = pyplot()
    buckets = results["buckets"]
    labels = [f"{b['batch_shape'][0]} x {b['batch_shape'][1]} frames" for b in buckets]
    x = np.arange(len(buckets))
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    modes = [mode for mode in MODES if mode in buckets[0]]
    width = 0.8 / len(modes)
    for index, mode in enumerate(modes):
        offset = (index - (len(modes) - 1) / 2) * width
        values = [b[mode]["seconds_per_step"] for b in buckets]
        bars = left.bar(x + offset, values, width, label=mode, color=f"C{index}")
        left.bar_label(bars, [f"{v:.2f}" for v in values], fontsize=8)
        right.bar(
            x + offset,
            [b[mode]["utilization_percent"] for b in buckets],
            width,
            label=mode,
            color=f"C{index}",
        )
    left.set_xticks(x, labels)
    left.set_ylabel("seconds per training step (median)")
    left.set_title("Training step by mode (same model, same batch)")
    left.legend()
    right.set_xticks(x, labels)
    right.set_ylabel("% of dense matmul throughput (its precision's)")
    peaks = f"matmul: {results['matmul']['gflops_per_s']} GFLOP/s"
    if "matmul_bfloat16" in results:
        peaks += f", bfloat16 {results['matmul_bfloat16']['gflops_per_s']}"
    right.set_title(f"FLOP utilization ({peaks})")
    right.legend()
    figure.suptitle(
        f"mmae train_bench, {results['date'][:10]}, {results['machine']['cpu_count']} CPUs"
    )
    save_figure(figure, path)


SMOKE_MODE = "tiny model, 2 steps, XLA left out (smoke test)"
BENCHMARK = Benchmark(
    "train_bench", __doc__, measure, _plot, quick=SMOKE_MODE, add_arguments=add_arguments
)

if __name__ == "__main__":
    sys.exit(BENCHMARK.main())
