"""Synthesis speed: real-time factors of the acoustic model, the vocoder and both.

    .venv/bin/python -m bench.synthesis_bench [--run RUN] [--quick]

For the same 16 sentences (the held-out texts of data/sample's metadata,
2 to 5 s of speech each), at batch 1 (one sentence per call) and batch 16
(all in one call), through the Python API (`mmae.Synthesizer`) and, when
`mmae.export` can write one, through an exported SavedModel:

- acoustic model alone: text -> log-mel (`synthesize_mel`, the `mel`
  signature), tokenization included; through the SavedModel also split in
  two: its in-graph text frontend alone (`tokenize`: normalization,
  lexicon, ids) and the model alone from those ids (`acoustic`);
- vocoder alone: those log-mels -> waveforms (Griffin-Lim, 32 iterations);
- end to end: text -> waveform (`synthesize`, `serving_default`).

The speed is `seconds of audio produced / seconds of compute` ("x real
time"; the real-time factor is its inverse). Each figure is the median over
`--repeats` passes, methods rotated within each pass so that load from other
jobs hits all alike, after one warm-up pass (tracing). Writes
bench/results/synthesis_bench.json and .png.

Targets from the synthesis issue: acoustic model >= 200x real time; end to
end >= 10x with Griffin-Lim.
"""

import os
import statistics
import sys
import tempfile

from bench.harness import REPO, Benchmark, pyplot, save_figure, time_in_rotation


def add_arguments(parser):
    parser.add_argument("--run", default=None, help="a training run (default: the pretrained)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-saved-model", action="store_true", help="Python API only")


def measure(args):
    """Every method's median time over the same sentences, as x real time."""
    from mmae.synthesis import Synthesizer

    synthesizer = Synthesizer.from_run(args.run) if args.run else Synthesizer.from_pretrained()
    texts = sentences(4 if args.quick else 16)
    repeats = 1 if args.quick else args.repeats
    rate = synthesizer.sample_rate

    mels = synthesizer.synthesize_mel(texts)
    audio_seconds = sum(synthesizer.vocoder.samples_for_frames(len(m)) for m in mels) / rate
    methods = python_methods(synthesizer, texts, mels)
    if not args.no_saved_model:
        methods.update(saved_model_methods(synthesizer, args.run, texts, mels))

    # The warm-up pass traces and compiles.
    _, _, timings = time_in_rotation(methods, repeats)
    rows = {}
    for name, seconds in timings.items():
        median = statistics.median(seconds)
        rows[name] = {
            "seconds": [round(s, 4) for s in seconds],
            "median_seconds": round(median, 4),
            "x_real_time": round(audio_seconds / median, 1),
            "real_time_factor": round(median / audio_seconds, 5),
        }
    return {
        "model": args.run or "pretrained",
        "sentences": len(texts),
        "audio_seconds": round(audio_seconds, 2),
        "vocoder": type(synthesizer.vocoder).__name__,
        "griffin_lim_iterations": getattr(synthesizer.vocoder, "num_iterations", None),
        "repeats": repeats,
        "rows": rows,
        "targets": {"acoustic_x_real_time": 200, "end_to_end_x_real_time": 10},
    }


def summary(results):
    """A line per method: median seconds and x real time."""
    rows = results["rows"]
    width = max(len(n) for n in rows)
    lines = [f"{results['sentences']} sentences, {results['audio_seconds']:.1f} s of audio"]
    for name, row in rows.items():
        lines.append(f"{name:<{width}}  {row['median_seconds']:8.3f} s  {row['x_real_time']:8.1f}x")
    return "\n".join(lines)


def sentences(count):
    """Held-out texts of the bundled sample: the last `count` rows of its metadata."""
    with open(os.path.join(REPO, "data", "sample", "metadata.csv"), encoding="utf-8") as f:
        rows = [line.rstrip("\n").split("|") for line in f if line.strip()]
    return [row[1] for row in rows[-count:]]


def python_methods(synthesizer, texts, mels):
    import tensorflow as tf

    lengths = tf.constant([len(m) for m in mels])
    longest = max(len(m) for m in mels)
    padded = tf.constant(
        [list(m) + [[0.0] * m.shape[1]] * (longest - len(m)) for m in mels], tf.float32
    )
    vocode = tf.function(synthesizer.vocoder)
    return {
        "python/acoustic/batch1": lambda: [synthesizer.synthesize_mel(t) for t in texts],
        "python/acoustic/batch16": lambda: synthesizer.synthesize_mel(texts),
        "python/vocoder/batch1": lambda: [
            vocode(tf.constant(m[None]), lengths[i : i + 1]).numpy() for i, m in enumerate(mels)
        ],
        "python/vocoder/batch16": lambda: vocode(padded, lengths).numpy(),
        "python/end_to_end/batch1": lambda: [synthesizer.synthesize(t) for t in texts],
        "python/end_to_end/batch16": lambda: synthesizer.synthesize(texts),
    }


def saved_model_methods(synthesizer, run_dir, texts, mels):
    """The same through an exported SavedModel, if this checkout can export one."""
    import tensorflow as tf

    from mmae import export

    out = tempfile.mkdtemp(prefix="mmae-synthesis-bench-")
    export.export_saved_model(run_dir or pretrained_path(), out)
    loaded = tf.saved_model.load(out)
    speak, mel = loaded.signatures["serving_default"], loaded.signatures["mel"]
    tokenize, acoustic = loaded.signatures["tokenize"], loaded.signatures["acoustic"]
    ids_each = [tokenize(tf.constant([t])) for t in texts]
    ids_batch = tokenize(tf.constant(texts))

    def each(function):
        return lambda: [function(tf.constant([t])) for t in texts]

    def batch(function):
        return lambda: function(tf.constant(texts))

    return {
        "saved_model/acoustic/batch1": each(mel),
        "saved_model/acoustic/batch16": batch(mel),
        "saved_model/frontend/batch1": each(tokenize),
        "saved_model/frontend/batch16": batch(tokenize),
        "saved_model/acoustic_from_ids/batch1": lambda: [acoustic(**ids) for ids in ids_each],
        "saved_model/acoustic_from_ids/batch16": lambda: acoustic(**ids_batch),
        "saved_model/end_to_end/batch1": each(speak),
        "saved_model/end_to_end/batch16": batch(speak),
    }


def pretrained_path():
    from mmae import pretrained

    return pretrained.path_of(pretrained.DEFAULT)


def plot(results, path):
    plt = pyplot()
    names = list(results["rows"])
    speeds = [results["rows"][n]["x_real_time"] for n in names]
    figure, axis = plt.subplots(figsize=(8, 0.45 * len(names) + 1.5))
    axis.barh(names, speeds, color=["C0" if "python" in n else "C1" for n in names])
    axis.set_xscale("log")
    axis.invert_yaxis()
    for target, label in ((200, "acoustic target 200x"), (10, "end-to-end target 10x")):
        axis.axvline(target, color="gray", linestyle="--", linewidth=1)
        axis.text(target * 1.05, -0.6, label, va="bottom", fontsize=8, color="gray")
    axis.set_xlabel("x faster than real time (log scale)")
    axis.set_title(
        f"Synthesis speed, {results['sentences']} sentences, {results['audio_seconds']} s of audio"
    )
    save_figure(figure, path)


SMOKE_MODE = "4 sentences, 1 pass (smoke test)"
BENCHMARK = Benchmark(
    "synthesis_bench",
    __doc__,
    measure,
    plot,
    quick=SMOKE_MODE,
    add_arguments=add_arguments,
    summary=summary,
)

if __name__ == "__main__":
    sys.exit(BENCHMARK.main())
