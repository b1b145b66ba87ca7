"""Data-side benchmarks: `prepare`, the log-mel layer, and the `tf.data` input pipeline.

    .venv/bin/python -m bench.data_bench            # full run, 1 to 4 minutes on 2 cores
    .venv/bin/python -m bench.data_bench --quick    # every part tiny: a smoke test

One module per measured thing, each with a `measure(...)`:

- `prepare_throughput`: `prepare` with jobs=1 and jobs=2 at several corpus
  sizes, and (`startup_probe`, in a fresh process) what a process pays
  before its first clip;
- `mel_features`: librosa against the `tf.signal` MelSpectrogram layer;
- `input_pipeline`: the training-mode `tf.data` pipeline;
- `training_step`: what the real trainer consumes, for comparison.

`corpora` builds the corpora they run on, `settings` says how much work each
part does (full and `--quick`), `report` and `plot` turn the results into
text and a figure, and `__main__` declares the benchmark and runs the parts.

This package imports nothing: `startup_probe` runs as
`python -m bench.data_bench.startup_probe` and times its own imports.
"""
