"""2. Log-mel features: librosa against the `tf.signal` MelSpectrogram layer, five ways.

Every method starts from the same float32 NumPy waveforms and ends with NumPy
log-mel frames, so the times compare like with like, and each method's
frames are compared with librosa's.
"""

import statistics
import time

from bench.data_bench.corpora import SAMPLE
from bench.harness import librosa_framing, librosa_mel_scale, logger, time_in_rotation

log = logger("data_bench")


def measure(config, settings):
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
            y=waveform, power=audio.power, **librosa_framing(audio), **librosa_mel_scale(audio)
        )
        return np.log(np.maximum(mel, audio.log_floor)).T

    # librosa rebuilds its mel filter bank on every call (its cache is off
    # unless LIBROSA_CACHE_DIR is set); this variant builds it once.
    filter_bank = librosa.filters.mel(n_fft=audio.fft_length, **librosa_mel_scale(audio))

    def librosa_log_mel_cached_filters(waveform):
        spectrum = np.abs(librosa.stft(waveform, **librosa_framing(audio)))
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

    # The warm-up pass traces or compiles each method (and fills caches).
    outputs, first_pass, times = time_in_rotation(
        {name: run_all for name, _, run_all in methods}, settings.mel_repeats
    )

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
