"""Data-side benchmarks: `prepare`, the log-mel layer, and the `tf.data` input pipeline.

Run from the repository root:

    .venv/bin/python -m bench.data_bench            # full run, 1 to 4 minutes on 2 cores
    .venv/bin/python -m bench.data_bench --quick    # every part tiny: a smoke test

It writes `data_bench.json` (numbers, the exact command, date and machine) and
`data_bench.png` (one panel per benchmark) to `bench/results/` (or `--out`).
Timings are medians of several repeats after warm-up; on a small, shared
machine compare the ratios measured within one run, not absolute numbers
across runs.
"""

import dataclasses
import sys
import tempfile

from bench.data_bench import input_pipeline, mel_features, prepare_throughput, training_step
from bench.data_bench.plot import plot
from bench.data_bench.report import notes, summary_text
from bench.data_bench.settings import FULL, PRESET, QUICK
from bench.harness import Benchmark, logger

log = logger("data_bench")


def measure(args):
    """Runs the parts in order: the pipeline reads the corpus that `prepare` wrote."""
    from mmae.config import Config

    settings = QUICK if args.quick else FULL
    config = Config.load(PRESET)
    results = {
        "config_preset": PRESET,
        "audio_config": dataclasses.asdict(config.audio),
        "data_config": dataclasses.asdict(config.data),
        "settings": dataclasses.asdict(settings),
    }
    with tempfile.TemporaryDirectory(prefix="mmae-data-bench-") as workdir:
        log("1/3 prepare")
        results["prepare"], prepared_dir = prepare_throughput.measure(config, settings, workdir)
        log("2/3 mel layer vs librosa")
        results["mel"] = mel_features.measure(config, settings)
        log("3/3 tf.data pipeline")
        results["pipeline"] = input_pipeline.measure(config, settings, prepared_dir)
        log("3/3 what a training step consumes")
        step = training_step.measure(config, settings, prepared_dir)
        step["pipeline_over_step_frames_ratio"] = round(
            results["pipeline"]["sample"]["mel_frames_per_s"] / step["mel_frames_per_s"], 1
        )
        results["training_step"] = step
    return results


SMOKE_MODE = "make every part tiny (smoke test)"
BENCHMARK = Benchmark(
    "data_bench", __doc__, measure, plot, quick=SMOKE_MODE, notes=notes, summary=summary_text
)

if __name__ == "__main__":
    sys.exit(BENCHMARK.main())
