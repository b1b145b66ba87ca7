"""3. The `tf.data` input pipeline: what `make_dataset` delivers in training mode.

The batches are iterated in Python, as the trainer does, and counted in
batches, clips and real (unpadded) mel frames per second.
"""

import os
import time

from bench.data_bench.corpora import WORK, find_bigger_corpus
from bench.harness import REPO


def measure(config, settings, sample_dir):
    """The pipeline on the sample as part 1 prepared it and, in a full run, on a bigger corpus."""
    results = {"sample": measure_corpus(sample_dir, config, settings, "data/sample")}
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
    results["bigger_corpus"] = measure_corpus(out, config, settings, name)
    results["bigger_corpus"]["prepared_into"] = os.path.relpath(out, REPO)
    results["bigger_corpus"]["reused_earlier_preparation"] = reused
    results["bigger_corpus"]["prepare_s_this_run"] = round(prepare_s, 1)
    return results


def measure_corpus(data_dir, config, settings, corpus_name):
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
