"""1. `prepare` throughput: jobs=1 against jobs=2, at several corpus sizes.

Three corpus sizes separate the fixed cost of a call from its per-clip rate
(a straight line through wall time against clip count).
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from bench.data_bench.corpora import SAMPLE, corpus_stats, repeated_corpus, subset_corpus
from bench.data_bench.settings import PRESET
from bench.harness import REPO, logger

log = logger("data_bench")


def measure(config, settings, workdir):
    """Times `prepare` with jobs=1 and jobs=2 on the sample, and on smaller and bigger corpora.

    Returns:
        (results, prepared_dir): the numbers, and the sample as the last jobs=1
        call prepared it (for the pipeline benchmark).
    """
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
    first_call_s, _, _ = timed_prepare(config, warmup, 1, workdir)

    result, prepared_dir = measure_corpus(config, source, name, settings.prepare_repeats, workdir)
    scaling = [result]
    if settings.startup_repeats:
        tiny_label = f"data/sample, first {settings.startup_clips} clips"
        tiny, _ = measure_corpus(config, warmup, tiny_label, settings.startup_repeats, workdir)
        scaling.insert(0, tiny)
    if settings.scale_factor:
        repeated = repeated_corpus(os.path.join(workdir, "repeated"), settings.scale_factor)
        label = (
            f"data/sample x{settings.scale_factor} (each clip under {settings.scale_factor} ids)"
        )
        scaling.append(measure_corpus(config, repeated, label, settings.scale_repeats, workdir)[0])

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
        result["linear_fit"] = linear_fit(scaling)
    result["startup"] = {
        "first_prepare_call_in_process_s": round(first_call_s, 3),
        "first_prepare_call_clips": settings.startup_clips,
        "fresh_process_probe": fresh_process_probe() if settings.startup_probe else None,
    }
    return result, prepared_dir


def timed_prepare(config, corpus, jobs, workdir):
    """(seconds, prepare's summary, output directory) of one `prepare` call into a new directory."""
    from mmae.datasets.prepare import prepare

    out = tempfile.mkdtemp(prefix=f"jobs{jobs}-", dir=workdir)
    start = time.perf_counter()
    summary = prepare(corpus, out, config, jobs=jobs, progress=False)
    return time.perf_counter() - start, summary, out


def measure_corpus(config, corpus, label, repeats, workdir):
    """jobs=1 and jobs=2 on one corpus, `repeats` times each; (entry, a jobs=1 output)."""
    runs = {1: [], 2: []}
    for repeat in range(repeats):
        # Alternate the order so slow drift on a shared machine hits both.
        for jobs in (1, 2) if repeat % 2 == 0 else (2, 1):
            seconds, summary, out = timed_prepare(config, corpus, jobs, workdir)
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


def linear_fit(scaling):
    """Fixed and per-clip cost of each `jobs`, from a line through the corpus sizes measured."""
    import numpy as np

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
    return fit


def fresh_process_probe():
    """What a fresh Python process pays before its first prepared clip (`startup_probe`).

    It runs in a subprocess because the costs it measures (importing
    TensorFlow, librosa's lazy submodules, the first trace) are paid once per
    process, and this one has paid them already. Every `mmae prepare` run pays
    them once; a spawned worker process would pay them again (prepare used
    spawned processes before it moved to threads).
    """
    clip = os.path.join(SAMPLE, "wavs", sorted(os.listdir(os.path.join(SAMPLE, "wavs")))[0])
    start = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-m", "bench.data_bench.startup_probe", PRESET, clip],
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
