"""Data-side benchmarks: `prepare`, the log-mel layer, and the `tf.data` input pipeline.

Run from the repository root:

    .venv/bin/python -m bench.data_bench            # full run, 1 to 4 minutes on 2 cores
    .venv/bin/python -m bench.data_bench --quick    # every part tiny: a smoke test

It writes `data_bench.json` (numbers, the exact command, date and machine) and
`data_bench.png` (one panel per benchmark) to `bench/results/` (or `--out`).
Timings are medians of several repeats after warm-up; on a small, shared
machine compare the ratios measured within one run, not absolute numbers
across runs.

TensorFlow, librosa and mmae are imported inside the functions that use them,
so that importing this module stays cheap: a process that imports it (a
spawned worker re-imports its parent's `__main__`) does not pay for them.
"""

import argparse
import dataclasses
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from bench.provenance import command_line, git_commit, machine_info, write_results

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(REPO, "data", "sample")
CORPORA = os.path.join(REPO, "corpora")
# Git-ignored: a bigger corpus is prepared here once and reused by later runs.
WORK = os.path.join(REPO, "bench", "work")
PRESET = "flite16k"

TRAINER_NOTE = (
    "training_step: mel frames/s that mmae.training.train consumes with the "
    "preset's default model (jit_compile off, steady intervals only); "
    "pipeline_over_step_frames_ratio is how many times faster the pipeline delivers frames "
    "than that step eats them."
)


@dataclasses.dataclass(frozen=True)
class Settings:
    """How much work each part does."""

    prepare_clips: int | None  # None: the whole sample corpus
    prepare_repeats: int
    # The first few sample clips: the first prepare call's warm-up and, when
    # startup_repeats > 0, the tiny corpus that isolates a call's fixed cost.
    startup_clips: int
    startup_repeats: int
    startup_probe: bool
    # Also prepare the sample this many times over (0: skip), for the scaling fit.
    scale_factor: int
    scale_repeats: int
    mel_clips: int
    mel_repeats: int
    mel_batch_size: int
    # Batched calls pad each length-sorted batch up to a multiple of this many
    # seconds, so a jit-compiled function sees a handful of shapes.
    mel_pad_seconds: float
    pipeline_batches: int
    pipeline_warmup_batches: int
    pipeline_repeats: int
    bigger_corpus: bool


FULL = Settings(
    prepare_clips=None,
    prepare_repeats=5,
    startup_clips=8,
    startup_repeats=5,
    startup_probe=True,
    scale_factor=8,
    scale_repeats=3,
    mel_clips=100,
    mel_repeats=7,
    mel_batch_size=16,
    mel_pad_seconds=1.0,
    pipeline_batches=200,
    pipeline_warmup_batches=20,
    pipeline_repeats=3,
    bigger_corpus=True,
)
QUICK = Settings(
    prepare_clips=8,
    prepare_repeats=1,
    startup_clips=4,
    startup_repeats=0,
    startup_probe=False,
    scale_factor=0,
    scale_repeats=0,
    mel_clips=6,
    mel_repeats=1,
    mel_batch_size=16,
    mel_pad_seconds=1.0,
    pipeline_batches=5,
    pipeline_warmup_batches=1,
    pipeline_repeats=1,
    bigger_corpus=False,
)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="make every part tiny (smoke test)")
    parser.add_argument(
        "--out",
        default=os.path.join(REPO, "bench", "results"),
        help="results directory (default: bench/results)",
    )
    args = parser.parse_args(argv)
    # TensorFlow's C++ start-up chatter would bury the progress lines; errors still show.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    results = run(QUICK if args.quick else FULL, quick=args.quick, argv=argv)
    json_path, plot_path = write_results(args.out, "data_bench", results, plot)
    log(f"wrote {os.path.relpath(json_path)} and {os.path.relpath(plot_path)}")
    print(summary_text(results))
    return 0


def run(settings, quick, argv):
    from mmae.config import Config

    started = time.perf_counter()
    config = Config.load(PRESET)
    results = {
        "benchmark": "data_bench",
        "command": command_line("bench.data_bench", argv),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "quick": quick,
        "machine": machine_info(),
        "git_commit": git_commit(),
        "config_preset": PRESET,
        "audio_config": dataclasses.asdict(config.audio),
        "data_config": dataclasses.asdict(config.data),
        "settings": dataclasses.asdict(settings),
    }
    with tempfile.TemporaryDirectory(prefix="mmae-data-bench-") as workdir:
        log("1/3 prepare")
        results["prepare"], prepared_dir = bench_prepare(config, settings, workdir)
        log("2/3 mel layer vs librosa")
        results["mel"] = bench_mel(config, settings)
        log("3/3 tf.data pipeline")
        results["pipeline"] = bench_pipeline_all(config, settings, prepared_dir)
        log("3/3 what a training step consumes")
        results["training_step"] = bench_training_step(config, settings, prepared_dir)
        step = results["training_step"]
        step["pipeline_over_step_frames_ratio"] = round(
            results["pipeline"]["sample"]["mel_frames_per_s"] / step["mel_frames_per_s"], 1
        )
    results["total_seconds"] = round(time.perf_counter() - started, 1)
    if hasattr(os, "getloadavg"):
        # Other work on the machine shows here (this run keeps about one core busy).
        results["machine"]["load_average_1_5_15_min_at_end"] = [
            round(x, 2) for x in os.getloadavg()
        ]
    results["notes"] = notes(results)
    return results


# --------------------------------------------------------------------------
# 1. prepare


def bench_prepare(config, settings, workdir):
    """Times `prepare` with jobs=1 and jobs=2 on the sample, on a tiny and on a 4x corpus.

    Three corpus sizes separate the fixed cost of a jobs=2 call from its
    per-clip rate (a straight line through wall time against clip count).
    """
    import numpy as np

    from mmae.datasets.prepare import prepare

    def timed(corpus, jobs):
        out = tempfile.mkdtemp(prefix=f"jobs{jobs}-", dir=workdir)
        start = time.perf_counter()
        summary = prepare(corpus, out, config, jobs=jobs, progress=False)
        return time.perf_counter() - start, summary, out

    if settings.prepare_clips is None:
        source, name = SAMPLE, "data/sample"
    else:
        count = settings.prepare_clips
        source = subset_corpus(os.path.join(workdir, "subset"), count)
        name = f"data/sample, first {count} clips"

    # This process's first prepare call pays for importing librosa's
    # submodules and tracing the mel function; every later jobs=1 call in the
    # process is warm. Done on a few clips so it is quick.
    warmup = subset_corpus(os.path.join(workdir, "warmup"), settings.startup_clips)
    first_call_s, _, _ = timed(warmup, 1)

    def measure(corpus, label, repeats):
        runs = {1: [], 2: []}
        for repeat in range(repeats):
            # Alternate the order so slow drift on a shared machine hits both.
            for jobs in (1, 2) if repeat % 2 == 0 else (2, 1):
                seconds, summary, out = timed(corpus, jobs)
                runs[jobs].append(seconds)
                if jobs == 1:
                    last_jobs1_out = out
                log(f"  prepare {label}, jobs={jobs}: {seconds:.2f} s")
        entry = corpus_stats(corpus, summary)
        entry["corpus"] = label
        for jobs, times in runs.items():
            median = statistics.median(times)
            entry[f"jobs{jobs}"] = {
                "jobs": jobs,
                "seconds": [round(t, 3) for t in times],
                "median_s": round(median, 3),
                "clips_per_s": round(entry["num_clips"] / median, 2),
                "audio_s_per_s": round(entry["source_audio_s"] / median, 1),
            }
        entry["speedup_jobs2_over_jobs1"] = round(
            entry["jobs1"]["median_s"] / entry["jobs2"]["median_s"], 3
        )
        return entry, last_jobs1_out

    result, prepared_dir = measure(source, name, settings.prepare_repeats)
    scaling = [result]
    if settings.startup_repeats:
        tiny_label = f"data/sample, first {settings.startup_clips} clips"
        scaling.insert(0, measure(warmup, tiny_label, settings.startup_repeats)[0])
    if settings.scale_factor:
        repeated = repeated_corpus(os.path.join(workdir, "repeated"), settings.scale_factor)
        label = (
            f"data/sample x{settings.scale_factor} (each clip under {settings.scale_factor} ids)"
        )
        scaling.append(measure(repeated, label, settings.scale_repeats)[0])

    result["scaling"] = [
        {
            "corpus": entry["corpus"],
            "num_clips": entry["num_clips"],
            "num_shards": entry["num_shards"],
            "jobs1_median_s": entry["jobs1"]["median_s"],
            "jobs2_median_s": entry["jobs2"]["median_s"],
            "jobs1_clips_per_s": entry["jobs1"]["clips_per_s"],
            "jobs2_clips_per_s": entry["jobs2"]["clips_per_s"],
            "speedup_jobs2_over_jobs1": entry["speedup_jobs2_over_jobs1"],
        }
        for entry in scaling
    ]
    if len(scaling) >= 2:
        clips = [entry["num_clips"] for entry in scaling]
        fit = {}
        for jobs in (1, 2):
            # The fastest run at each size: the one least disturbed by other load.
            seconds = [min(entry[f"jobs{jobs}"]["seconds"]) for entry in scaling]
            slope, intercept = np.polyfit(clips, seconds, 1)
            fit[f"jobs{jobs}"] = {
                "fixed_s": round(float(intercept), 3),
                "ms_per_clip": round(1000.0 * float(slope), 3),
            }
        saving = fit["jobs1"]["ms_per_clip"] - fit["jobs2"]["ms_per_clip"]
        extra = fit["jobs2"]["fixed_s"] - fit["jobs1"]["fixed_s"]
        # A non-positive slope is noise swamping the per-clip cost: no estimate.
        fit["reliable"] = fit["jobs1"]["ms_per_clip"] > 0 and fit["jobs2"]["ms_per_clip"] > 0
        fit["break_even_clips"] = (
            round(1000.0 * extra / saving) if fit["reliable"] and saving > 0 else None
        )
        fit["what"] = (
            "least-squares line wall_s = fixed_s + num_clips * ms_per_clip / 1000 through the "
            "fastest run at each corpus size in `scaling`; break_even_clips is where jobs=2 "
            "starts to beat jobs=1 (for clips like the sample's; null: never, on this machine)."
        )
        result["linear_fit"] = fit
    result["startup"] = {
        "first_prepare_call_in_process_s": round(first_call_s, 3),
        "first_prepare_call_clips": settings.startup_clips,
        "fresh_process_probe": fresh_process_probe() if settings.startup_probe else None,
    }
    return result, prepared_dir


def corpus_stats(corpus, summary):
    from mmae.audio.io import audio_info
    from mmae.datasets.readers import read_corpus

    utterances, _ = read_corpus(corpus)
    splits = summary["splits"].values()
    return {
        "num_clips": len(utterances),
        "num_kept": sum(s["num_clips"] for s in splits),
        "num_skipped": len(summary["skipped"]),
        "num_shards": shard_count(summary),
        "source_audio_s": round(sum(audio_info(u.audio_path).duration for u in utterances), 1),
        "kept_audio_s_after_trim": round(sum(s["hours"] for s in splits) * 3600.0, 1),
    }


def sample_rows():
    """(clip_id, metadata row, audio file name) for every clip of data/sample."""
    with open(os.path.join(SAMPLE, "metadata.csv"), encoding="utf-8") as f:
        rows = f.read().splitlines()
    names = {os.path.splitext(n)[0]: n for n in os.listdir(os.path.join(SAMPLE, "wavs"))}
    return [(row.split("|")[0], row, names[row.split("|")[0]]) for row in rows if row]


def write_corpus(root, rows):
    """An LJSpeech-layout corpus of (clip_id, metadata row, sample file) with symlinked audio."""
    os.makedirs(os.path.join(root, "wavs"), exist_ok=True)
    for clip_id, _, name in rows:
        link = os.path.join(root, "wavs", clip_id + os.path.splitext(name)[1])
        if not os.path.lexists(link):
            os.symlink(os.path.join(SAMPLE, "wavs", name), link)
    with open(os.path.join(root, "metadata.csv"), "w", encoding="utf-8") as f:
        f.write("\n".join(row for _, row, _ in rows) + "\n")
    return root


def subset_corpus(root, count):
    """The first `count` clips of data/sample."""
    return write_corpus(root, sample_rows()[:count])


def repeated_corpus(root, factor):
    """data/sample `factor` times over, each copy of a clip under its own id."""
    rows = []
    for copy in range(factor):
        for clip_id, row, name in sample_rows():
            new_id = f"{clip_id}_x{copy}"
            rows.append((new_id, new_id + row[len(clip_id) :], name))
    return write_corpus(root, rows)


def shard_count(summary):
    return sum(len(s["shards"]) for s in summary["splits"].values())


_PROBE = r"""
import json, sys, time
start = time.perf_counter()
import tensorflow as tf
import mmae.datasets.prepare
imported_tf = time.perf_counter()
from mmae.audio.features import MelSpectrogram
from mmae.audio.io import load_audio
from mmae.config import Config
audio = Config.load(sys.argv[1]).audio
def load():
    return load_audio(sys.argv[2], audio.sample_rate, trim_silence=audio.trim_silence,
                      trim_top_db=audio.trim_top_db, peak_normalize=audio.peak_normalize)
layer = MelSpectrogram.from_config_dataclass(audio)
mel_fn = tf.function(layer, input_signature=[tf.TensorSpec([None], tf.float32)])
before = time.perf_counter()
waveform = load()
loaded = time.perf_counter()
mel_fn(tf.constant(waveform)).numpy()
first_mel = time.perf_counter()
load()
mel_fn(tf.constant(waveform)).numpy()
second_clip = time.perf_counter()
print(json.dumps({
    "import_tensorflow_and_prepare_s": imported_tf - start,
    "first_load_audio_s": loaded - before,
    "first_mel_call_s": first_mel - loaded,
    "steady_clip_s": second_clip - first_mel,
}))
"""


def fresh_process_probe():
    """What a fresh Python process pays before its first prepared clip, in a subprocess.

    It imports TensorFlow and mmae.datasets.prepare, loads one clip (librosa
    loads its submodules lazily, on the first trim), traces the mel function,
    then processes the clip again warm. Every `mmae prepare` run pays this
    once; a spawned worker process would pay it again (prepare used spawned
    processes before it moved to threads).
    """
    clip = os.path.join(SAMPLE, "wavs", sorted(os.listdir(os.path.join(SAMPLE, "wavs")))[0])
    start = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-c", _PROBE, PRESET, clip],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    wall = time.perf_counter() - start
    stages = json.loads(completed.stdout.strip().splitlines()[-1])
    stages = {key: round(value, 3) for key, value in stages.items()}
    stages["process_wall_s"] = round(wall, 3)
    # From exec to the first clip done (the rest is the warm clip and exit).
    stages["ready_for_first_clip_s"] = round(wall - stages["steady_clip_s"], 3)
    return stages


# --------------------------------------------------------------------------
# 2. mel layer vs librosa


def bench_mel(config, settings):
    """ms per clip of librosa and of MelSpectrogram called five ways, on the same clips."""
    import librosa
    import numpy as np
    import tensorflow as tf

    from mmae.audio.features import MelSpectrogram, frame_count
    from mmae.audio.io import load_clip
    from mmae.datasets.readers import read_corpus

    audio = config.audio
    utterances, _ = read_corpus(SAMPLE)
    clips = [load_clip(u.audio_path, audio) for u in utterances[: settings.mel_clips]]
    lengths = [len(c) for c in clips]
    audio_seconds = sum(lengths) / audio.sample_rate
    layer = MelSpectrogram.from_config_dataclass(audio)

    def librosa_log_mel(waveform):
        mel = librosa.feature.melspectrogram(
            y=waveform,
            sr=audio.sample_rate,
            n_fft=audio.fft_length,
            hop_length=audio.frame_step,
            win_length=audio.frame_length,
            window="hann",
            center=audio.center,
            pad_mode="constant",
            power=audio.power,
            n_mels=audio.num_mels,
            fmin=audio.lower_edge_hertz,
            fmax=audio.upper_edge_hertz,
            htk=audio.mel_scale == "htk",
            norm="slaney",
        )
        return np.log(np.maximum(mel, audio.log_floor)).T

    # librosa rebuilds its mel filter bank on every call (its cache is off
    # unless LIBROSA_CACHE_DIR is set); this variant builds it once.
    filter_bank = librosa.filters.mel(
        sr=audio.sample_rate,
        n_fft=audio.fft_length,
        n_mels=audio.num_mels,
        fmin=audio.lower_edge_hertz,
        fmax=audio.upper_edge_hertz,
        htk=audio.mel_scale == "htk",
        norm="slaney",
    )

    def librosa_log_mel_cached_filters(waveform):
        spectrum = np.abs(
            librosa.stft(
                waveform,
                n_fft=audio.fft_length,
                hop_length=audio.frame_step,
                win_length=audio.frame_length,
                window="hann",
                center=audio.center,
                pad_mode="constant",
            )
        )
        if audio.power != 1.0:
            spectrum = spectrum**audio.power
        return np.log(np.maximum(filter_bank @ spectrum, audio.log_floor)).T

    def per_clip(function):
        return lambda: [function(c) for c in clips]

    def eager_layer(waveform):
        return layer(tf.constant(waveform)).numpy()

    per_clip_function = tf.function(layer, input_signature=[tf.TensorSpec([None], tf.float32)])

    # Batched: sort by length (as the pipeline's buckets do), pad each batch of
    # mel_batch_size clips to a multiple of mel_pad_seconds; the padded tail
    # frames are dropped again so every method returns the same frames.
    order = sorted(range(len(clips)), key=lambda i: lengths[i])
    pad_multiple = int(settings.mel_pad_seconds * audio.sample_rate)
    batches = [
        order[i : i + settings.mel_batch_size]
        for i in range(0, len(order), settings.mel_batch_size)
    ]
    padded_lengths = [
        -(-max(lengths[i] for i in b) // pad_multiple) * pad_multiple for b in batches
    ]
    padded_samples = sum(n * len(b) for n, b in zip(padded_lengths, batches, strict=True))

    def batched(function):
        def run_all():
            outputs = [None] * len(clips)
            for batch, padded in zip(batches, padded_lengths, strict=True):
                array = np.zeros([len(batch), padded], np.float32)
                for row, index in enumerate(batch):
                    array[row, : lengths[index]] = clips[index]
                mel = function(tf.constant(array)).numpy()
                for row, index in enumerate(batch):
                    outputs[index] = mel[row, : frame_count(lengths[index], audio.frame_step)]
            return outputs

        return run_all

    batch_spec = [tf.TensorSpec([None, None], tf.float32)]
    batched_function = tf.function(layer, input_signature=batch_spec)
    jit_function = tf.function(layer, jit_compile=True)

    def make_tf_data():
        ragged = tf.RaggedTensor.from_row_lengths(np.concatenate(clips), lengths)
        dataset = tf.data.Dataset.from_tensor_slices(ragged)
        dataset = dataset.map(layer, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return dataset.prefetch(tf.data.AUTOTUNE)

    build_start = time.perf_counter()
    dataset = make_tf_data()  # map() traces the layer here
    dataset_build_s = time.perf_counter() - build_start

    def tf_data_pass():
        return [mel.numpy() for mel in dataset]

    methods = [
        ("librosa", "librosa.feature.melspectrogram + log, per clip", per_clip(librosa_log_mel)),
        (
            "librosa_cached_filters",
            "librosa.stft + precomputed mel filters + log, per clip",
            per_clip(librosa_log_mel_cached_filters),
        ),
        ("eager", "MelSpectrogram called eagerly, per clip", per_clip(eager_layer)),
        (
            "tf_function",
            "tf.function, input_signature [None], per clip (as prepare does)",
            per_clip(lambda c: per_clip_function(tf.constant(c)).numpy()),
        ),
        (
            "tf_function_batched",
            f"tf.function [None, None], padded batches of {settings.mel_batch_size}",
            batched(batched_function),
        ),
        (
            "xla_batched",
            f"tf.function(jit_compile=True), padded batches of {settings.mel_batch_size}",
            batched(jit_function),
        ),
        (
            "tf_data_map",
            "tf.data map (AUTOTUNE parallel calls) over the clips, iterated in Python",
            tf_data_pass,
        ),
    ]

    # Warm-up: each method's first pass traces or compiles (and fills caches).
    first_pass, outputs = {}, {}
    for name, _, run_all in methods:
        start = time.perf_counter()
        outputs[name] = run_all()
        first_pass[name] = time.perf_counter() - start
    # Round-robin repeats, so a burst of load from elsewhere hits every method
    # alike instead of all passes of one.
    times = {name: [] for name, _, _ in methods}
    for _ in range(settings.mel_repeats):
        for name, _, run_all in methods:
            start = time.perf_counter()
            run_all()
            times[name].append(time.perf_counter() - start)

    reference = outputs["librosa"]
    results = {}
    for name, description, _ in methods:
        median = statistics.median(times[name])
        difference = loud_difference = 0.0
        for out, ref in zip(outputs[name], reference, strict=True):
            error = np.abs(out - ref)
            difference = max(difference, float(error.max()))
            loud = ref > np.log(1e-3)
            if loud.any():
                loud_difference = max(loud_difference, float(error[loud].max()))
        results[name] = {
            "description": description,
            "pass_seconds": [round(t, 4) for t in times[name]],
            "ms_per_clip": round(1000.0 * median / len(clips), 3),
            "x_real_time": round(audio_seconds / median, 1),
            # Warm-up pass minus a steady pass: tracing / XLA compilation.
            "compile_s": round(max(0.0, first_pass[name] - median), 3),
            # Log-mel units, over all frames and bands; and over bands whose
            # librosa mel is above 1e-3 (the quietest bins carry float32 FFT
            # rounding that is large relative to their value).
            "max_abs_diff_vs_librosa": round(difference, 6),
            "max_abs_diff_vs_librosa_mel_above_1e-3": round(loud_difference, 6),
        }
        log(f"  {name}: {results[name]['ms_per_clip']} ms/clip")
    results["tf_data_map"]["compile_s"] = round(
        results["tf_data_map"]["compile_s"] + dataset_build_s, 3
    )
    base = results["librosa"]["ms_per_clip"]
    for entry in results.values():
        entry["speedup_vs_librosa"] = round(base / entry["ms_per_clip"], 2)
    return {
        "num_clips": len(clips),
        "audio_s": round(audio_seconds, 1),
        "mean_clip_s": round(audio_seconds / len(clips), 2),
        "repeats": settings.mel_repeats,
        "batch_size": settings.mel_batch_size,
        "batched_shapes": sorted(
            {(len(b), n) for b, n in zip(batches, padded_lengths, strict=True)}
        ),
        "batched_padding_overhead": round(padded_samples / sum(lengths) - 1.0, 3),
        "methods": results,
    }


# --------------------------------------------------------------------------
# 3. tf.data pipeline


def bench_pipeline_all(config, settings, sample_dir):
    results = {"sample": bench_pipeline(sample_dir, config, settings, "data/sample")}
    results["sample"]["prepared_from"] = "data/sample (prepared by part 1, jobs=1)"
    corpus = find_bigger_corpus() if settings.bigger_corpus else None
    if corpus is None:
        results["bigger_corpus"] = {
            "skipped": "no corpus with more clips than data/sample under corpora/"
            if settings.bigger_corpus
            else "--quick"
        }
        return results
    from mmae.config import IncompatibleConfigError
    from mmae.datasets.prepare import PrepareError, prepare

    # Prepared once into the git-ignored bench/work/ and reused (or resumed) after.
    out = os.path.join(WORK, "prepared", os.path.basename(corpus))
    reused = os.path.exists(os.path.join(out, "dataset.json"))
    start = time.perf_counter()
    try:
        prepare(corpus, out, config, jobs=None, progress=False)
    except (PrepareError, IncompatibleConfigError):
        # The corpus or the preset changed since it was prepared: start over.
        reused = False
        prepare(corpus, out, config, jobs=None, progress=False, overwrite=True)
    prepare_s = time.perf_counter() - start
    name = os.path.relpath(corpus, REPO)
    results["bigger_corpus"] = bench_pipeline(out, config, settings, name)
    results["bigger_corpus"]["prepared_into"] = os.path.relpath(out, REPO)
    results["bigger_corpus"]["reused_earlier_preparation"] = reused
    results["bigger_corpus"]["prepare_s_this_run"] = round(prepare_s, 1)
    return results


def bench_training_step(config, settings, data_dir):
    """Mel frames per second that the real trainer consumes with the default model.

    Runs `mmae.training.train` itself (jit_compile off, so the number is not
    dominated by XLA's per-bucket compile time in a short run) and reads the
    throughput it logs; the pipeline must deliver far more than this.
    """
    from mmae.training import read_metrics, train

    steps = 4 if settings.mel_clips < 50 else 40
    run_config = config.with_overrides(
        [
            f"train.steps={steps}",
            "train.log_every=5",
            "train.jit_compile=false",
            f"train.eval_every={10**9}",
            f"train.checkpoint_every={10**9}",
        ]
    )
    if settings.mel_clips < 50:  # --quick: the tiny model
        run_config = run_config.with_overrides(["model.hidden_dim=32", "model.latent_dim=16"])
    with tempfile.TemporaryDirectory(prefix="mmae-step-bench-") as run_dir:
        train(run_config, data_dir, run_dir, progress=False)
        records = read_metrics(run_dir, "train")
    steady = records[1:] or records  # the first interval includes tracing
    frames_per_s = sum(r["frames_per_second"] for r in steady) / len(steady)
    steps_per_s = sum(r["steps_per_second"] for r in steady) / len(steady)
    return {
        "model": dataclasses.asdict(run_config.model),
        "steps": steps,
        "jit_compile": False,
        "steps_per_s": round(steps_per_s, 3),
        "mel_frames_per_s": round(frames_per_s),
    }


def find_bigger_corpus():
    """The corpus under corpora/ with the most rows, if it has more than the sample."""
    if not os.path.isdir(CORPORA):
        return None
    best, best_rows = None, 260
    for name in sorted(os.listdir(CORPORA)):
        root = os.path.join(CORPORA, name)
        for listing in ("manifest.csv", "metadata.csv"):
            path = os.path.join(root, listing)
            if os.path.isfile(path):
                with open(path, encoding="utf-8") as f:
                    rows = sum(1 for line in f if line.strip())
                if rows > best_rows:
                    best, best_rows = root, rows
                break
    return best


def bench_pipeline(data_dir, config, settings, corpus_name):
    """Batches, clips and mel frames per second of the training-mode pipeline."""
    import numpy as np

    from mmae.datasets.pipeline import make_dataset
    from mmae.datasets.prepare import load_dataset_info

    info = load_dataset_info(data_dir)
    start = time.perf_counter()
    dataset = make_dataset(data_dir, config, "train")  # shuffle + repeat
    build_s = time.perf_counter() - start
    iterator = iter(dataset)
    start = time.perf_counter()
    next(iterator)
    first_batch_s = time.perf_counter() - start
    for _ in range(settings.pipeline_warmup_batches):
        next(iterator)

    runs, shapes = [], {}
    for _ in range(settings.pipeline_repeats):
        clips = frames = padded_frames = 0
        start = time.perf_counter()
        for _ in range(settings.pipeline_batches):
            batch = next(iterator)
            num_frames = batch["num_frames"].numpy()
            size, max_frames, _ = batch["mel"].shape
            clips += size
            frames += int(np.sum(num_frames))
            padded_frames += size * max_frames
            shapes[f"{size}x{max_frames}"] = shapes.get(f"{size}x{max_frames}", 0) + 1
        seconds = time.perf_counter() - start
        runs.append((seconds, clips, frames, padded_frames))
    seconds, clips, frames, padded_frames = sorted(runs)[len(runs) // 2]  # the median run
    batches = settings.pipeline_batches
    return {
        "corpus": corpus_name,
        "train_clips": info["splits"]["train"]["num_clips"],
        "train_shards": len(info["splits"]["train"]["shards"]),
        "batch_size": config.train.batch_size,
        "bucket_boundaries": config.train.bucket_boundaries,
        "bucket_by_frames": config.train.bucket_by_frames,
        "shuffle_buffer": config.train.shuffle_buffer,
        "cache": config.train.cache,
        "build_s": round(build_s, 3),
        "first_batch_s": round(first_batch_s, 3),
        "warmup_batches": settings.pipeline_warmup_batches,
        "timed_batches": batches,
        "repeat_seconds": [round(r[0], 3) for r in runs],
        "batches_per_s": round(batches / seconds, 1),
        "clips_per_s": round(clips / seconds, 1),
        "mel_frames_per_s": round(frames / seconds),
        "padded_frames_per_s": round(padded_frames / seconds),
        "padding_efficiency": round(frames / padded_frames, 3),
        "mean_batch_clips": round(clips / batches, 1),
        "batch_shapes_seen": dict(sorted(shapes.items(), key=lambda kv: -kv[1])),
    }


# --------------------------------------------------------------------------
# Report


def notes(results):
    prepare = results["prepare"]
    probe = prepare["startup"]["fresh_process_probe"]
    fit = prepare.get("linear_fit")
    lines = [
        "Timings on a small shared machine are noisy: compare ratios measured within one run.",
        "prepare: wall time of prepare(source, fresh_temp_dir, config, jobs=N, progress=False), "
        "median of the repeats (jobs=1 and jobs=2 alternate). prepare writes shards on `jobs` "
        "threads (jobs=1: in the calling thread). Timed after a warm-up call, so librosa's "
        "submodules are loaded and the calling thread's mel function is traced (the first call "
        f"took {prepare['startup']['first_prepare_call_in_process_s']:.2f} s for "
        f"{prepare['startup']['first_prepare_call_clips']} clips); each jobs=2 call starts new "
        "pool threads, and each builds its own tokenizer and traces its own mel function.",
        "prepare: every thread's TensorFlow ops share TensorFlow's default thread pools (both "
        "cores), so even jobs=1 uses more than one core for the FFT and matmul.",
    ]
    if fit:
        lines.append(
            "prepare: from a line through wall time vs clip count (fastest run at each size, "
            f"see `scaling`): jobs=2 costs {fit['jobs2']['fixed_s']:.1f} s fixed + "
            f"{fit['jobs2']['ms_per_clip']:.2f} ms/clip, jobs=1 {fit['jobs1']['fixed_s']:.2f} s "
            f"+ {fit['jobs1']['ms_per_clip']:.2f} ms/clip; {break_even_text(fit)}."
        )
    if probe:
        lines.append(
            "prepare, TF start-up of a spawned worker: prepare's workers are threads, so no "
            "worker pays it now, but a fresh process (measured alone, in a subprocess) needs "
            f"{probe['import_tensorflow_and_prepare_s']:.1f} s to import TensorFlow and "
            f"mmae.datasets.prepare, {probe['first_load_audio_s']:.2f} s for its first "
            "load_audio (librosa loads its submodules lazily on the first trim) and "
            f"{probe['first_mel_call_s']:.2f} s to trace and run the mel function once: "
            f"{probe['ready_for_first_clip_s']:.1f} s from exec to its first clip, against "
            f"{probe['steady_clip_s'] * 1000:.0f} ms for a warm clip. Every `mmae prepare` "
            "run pays this once; a process pool would pay it again per worker."
        )
    lines += [
        "mel: every method starts from the same float32 NumPy waveforms (loaded with the "
        "flite16k settings: trimmed, peak-normalised) and ends with NumPy log-mel frames; "
        "ms_per_clip is the median full pass over the clips divided by the clip count; "
        "compile_s is the warm-up pass minus a steady pass (plus dataset construction for "
        "tf_data_map). Batched methods sort clips by length and pad each batch to a whole "
        "number of mel_pad_seconds; the padding is part of the timed work. "
        "librosa.feature.melspectrogram rebuilds its mel filter bank on every call "
        "(librosa_cached_filters shows the cost without that).",
        "pipeline: make_dataset(prepared, config, 'train') (shuffle + repeat) with the flite16k "
        "config defaults, timed after the warm-up batches and iterated in Python; "
        "mel_frames_per_s counts real (unpadded) frames.",
        TRAINER_NOTE,
    ]
    return lines


def break_even_text(fit):
    if not fit["reliable"]:
        return "jobs=2 break-even: not estimable in this run (noise hid the per-clip cost)"
    if fit["break_even_clips"] is None:
        return "jobs=2 never pays off here (it is not faster per clip)"
    return f"jobs=2 pays off above about {fit['break_even_clips']} clips"


def summary_text(results):
    prepare = results["prepare"]
    lines = []
    for entry in prepare["scaling"]:
        lines.append(
            f"prepare {entry['corpus']} ({entry['num_clips']} clips): jobs1 "
            f"{entry['jobs1_clips_per_s']} clips/s, jobs2 {entry['jobs2_clips_per_s']} clips/s, "
            f"jobs2/jobs1 {entry['speedup_jobs2_over_jobs1']}x"
        )
    lines.append(
        f"prepare data/sample audio-s/s: jobs1 {prepare['jobs1']['audio_s_per_s']}, "
        f"jobs2 {prepare['jobs2']['audio_s_per_s']}"
    )
    if "linear_fit" in prepare:
        fit = prepare["linear_fit"]
        lines.append(
            f"prepare fit: jobs1 {fit['jobs1']['fixed_s']} s + {fit['jobs1']['ms_per_clip']} "
            f"ms/clip, jobs2 {fit['jobs2']['fixed_s']} s + {fit['jobs2']['ms_per_clip']} ms/clip, "
            f"break-even {fit['break_even_clips']} clips"
        )
    for name, entry in results["mel"]["methods"].items():
        lines.append(
            f"mel {name}: {entry['ms_per_clip']} ms/clip, {entry['x_real_time']}x real time, "
            f"{entry['speedup_vs_librosa']}x librosa, compile {entry['compile_s']} s, "
            f"max diff {entry['max_abs_diff_vs_librosa']} "
            f"(loud {entry['max_abs_diff_vs_librosa_mel_above_1e-3']})"
        )
    for name, entry in results["pipeline"].items():
        if "skipped" in entry:
            lines.append(f"pipeline {name}: skipped ({entry['skipped']})")
        else:
            lines.append(
                f"pipeline {name}: {entry['batches_per_s']} batches/s, {entry['clips_per_s']} "
                f"clips/s, {entry['mel_frames_per_s']} mel frames/s"
            )
    step = results["training_step"]
    lines.append(
        f"training step: {step['steps_per_s']} steps/s, {step['mel_frames_per_s']} mel frames/s; "
        f"the pipeline is {step['pipeline_over_step_frames_ratio']}x faster"
    )
    lines.append(f"total {results['total_seconds']} s")
    return "\n".join(lines)


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    figure, (left, middle, right) = plt.subplots(
        1, 3, figsize=(19, 6), gridspec_kw={"width_ratios": [1.1, 1.6, 0.9]}
    )
    machine = results["machine"]
    figure.suptitle(
        f"mmae data benchmarks ({'quick' if results['quick'] else 'full'} run, "
        f"{results['date'][:10]}; {machine['cpu_count']} CPUs, TF {machine['tensorflow']})",
        fontsize=13,
    )

    # 1. prepare: clips/s for jobs=1 and jobs=2 at each corpus size.
    prepare = results["prepare"]
    scaling = prepare["scaling"]
    positions = np.arange(len(scaling))
    width = 0.38
    for offset, jobs, color in ((-width / 2, 1, "#4c72b0"), (width / 2, 2, "#dd8452")):
        rates = [entry[f"jobs{jobs}_clips_per_s"] for entry in scaling]
        bars = left.bar(positions + offset, rates, width, color=color, label=f"jobs={jobs}")
        for bar, rate in zip(bars, rates, strict=True):
            left.annotate(
                f"{rate:.0f}",
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                xytext=(0, 3),
                textcoords="offset points",
                ha="center",
                fontsize=9,
            )
    left.set_xticks(
        positions,
        [
            f"{entry['num_clips']} clips\njobs2/jobs1\n{entry['speedup_jobs2_over_jobs1']:.3g}x"
            for entry in scaling
        ],
        fontsize=8.5,
    )
    mean_clip = prepare["source_audio_s"] / prepare["num_clips"]
    left.set_xlabel(f"corpus size (clips of data/sample, {mean_clip:.1f} s each on average)")
    left.set_ylabel("throughput (clips per wall-clock second)")
    left.legend(loc="upper center", ncols=2)
    left.set_ylim(0, 1.25 * max(e[f"jobs{j}_clips_per_s"] for e in scaling for j in (1, 2)))
    title = (
        "1. prepare (flite16k), median wall time\n"
        f"data/sample: {prepare['jobs1']['audio_s_per_s']:.0f} (jobs=1) vs "
        f"{prepare['jobs2']['audio_s_per_s']:.0f} (jobs=2) audio-s per s"
    )
    if "linear_fit" in prepare:
        fit = prepare["linear_fit"]
        title += "\nline fit: " + ", ".join(
            f"jobs={jobs} {fit[f'jobs{jobs}']['fixed_s']:.2f} s + "
            f"{fit[f'jobs{jobs}']['ms_per_clip']:.2f} ms/clip"
            for jobs in (1, 2)
        )
    left.set_title(title, fontsize=10)
    left.grid(axis="y", alpha=0.3)

    # 2. mel
    mel = results["mel"]
    names = list(mel["methods"])
    values = [mel["methods"][n]["ms_per_clip"] for n in names]
    colors = ["#8c8c8c" if n.startswith("librosa") else "#55a868" for n in names]
    positions = range(len(names))
    middle.barh(positions, values, color=colors)
    middle.set_yticks(list(positions), names)
    middle.invert_yaxis()
    middle.set_xscale("log")
    middle.set_xlim(min(values) / 2, max(values) * 12)
    for position, name in zip(positions, names, strict=True):
        entry = mel["methods"][name]
        compile_text = f", compile {entry['compile_s']:.2f} s" if entry["compile_s"] >= 0.05 else ""
        middle.annotate(
            f" {entry['ms_per_clip']:.2f} ms  |  {entry['x_real_time']:.0f}x real time  |  "
            f"{entry['speedup_vs_librosa']:.2f}x librosa{compile_text}",
            (entry["ms_per_clip"], position),
            va="center",
            fontsize=8.5,
        )
    middle.set_xlabel(
        f"time per clip (ms, log scale; median of {mel['repeats']} passes over "
        f"{mel['num_clips']} clips, mean {mel['mean_clip_s']} s)"
    )
    middle.set_title(
        "2. log-mel features of the same clips:\nlibrosa vs the tf.signal MelSpectrogram layer",
        fontsize=10,
    )
    middle.grid(axis="x", alpha=0.3, which="both")

    # 3. pipeline
    pipeline = {k: v for k, v in results["pipeline"].items() if "skipped" not in v}
    names = list(pipeline)
    values = [pipeline[n]["mel_frames_per_s"] / 1000.0 for n in names]
    bars = right.bar(
        [f"{pipeline[n]['corpus']}\n({pipeline[n]['train_clips']} train clips)" for n in names],
        values,
        color="#8172b3",
    )
    for bar, name in zip(bars, names, strict=True):
        entry = pipeline[name]
        right.annotate(
            f"{entry['batches_per_s']:.0f}\nbatches/s",
            (bar.get_x() + bar.get_width() / 2, bar.get_height() ** 0.5),
            ha="center",
            va="center",
            color="white",
            fontweight="bold",
        )
    step = results["training_step"]
    right.bar(
        ["training step\n(default model)"], [step["mel_frames_per_s"] / 1000.0], color="#c44e52"
    )
    right.set_yscale("log")
    right.set_ylabel("thousand unpadded mel frames per second (log scale)")
    skipped = "skipped" in results["pipeline"].get("bigger_corpus", {})
    right.set_title(
        "3. tf.data pipeline, train split, vs the training step\n(flite16k defaults)\n"
        + ("no bigger corpus under corpora/; " if skipped else "")
        + f"pipeline {step['pipeline_over_step_frames_ratio']}x faster than the step consumes",
        fontsize=10,
    )
    right.grid(axis="y", alpha=0.3)

    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


# --------------------------------------------------------------------------
# Logging


def log(message):
    print(f"[data_bench] {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
