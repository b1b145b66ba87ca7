"""Vocoder benchmark: the tf.signal GriffinLim layer against librosa's mel_to_audio.

Run from the repository root:

    .venv/bin/python -m bench.vocoder_bench            # full run: 16 clips, 32 iterations
    .venv/bin/python -m bench.vocoder_bench --quick    # 2 clips, 4 iterations: a smoke test

Both vocoders invert the same log-mels (`MelSpectrogram` with the flite16k
preset, on the first clips of data/sample) with the same FFT, hop, window,
band edges and number of iterations, magnitude mels (power 1) and momentum
0.99. It writes `vocoder_bench.json` (numbers, the exact command, date, commit
and machine) and `vocoder_bench.png` to `bench/results/` (or `--out`).

Timings are medians of several passes over all clips; the methods take turns
within each repeat, in an order that rotates from repeat to repeat, so a
burst of load from elsewhere hits them alike. On a small, shared machine
compare the ratios measured within one run, not absolute numbers across runs.

TensorFlow, librosa and mmae are imported inside the functions that use them,
so that importing this module stays cheap.
"""

import dataclasses
import os
import statistics
import sys

from bench.harness import (
    REPO,
    Benchmark,
    bar_panel,
    librosa_framing,
    librosa_mel_scale,
    logger,
    pyplot,
    save_figure,
    time_in_rotation,
)

SAMPLE = os.path.join(REPO, "data", "sample")
PRESET = "flite16k"

log = logger("vocoder_bench")


@dataclasses.dataclass(frozen=True)
class Settings:
    """How much work the benchmark does."""

    num_clips: int
    num_iterations: int
    repeats: int
    # Clips per padded batch for the batched methods (the last batch may be smaller).
    batch_size: int


FULL = Settings(num_clips=16, num_iterations=32, repeats=5, batch_size=16)
QUICK = Settings(num_clips=2, num_iterations=4, repeats=1, batch_size=16)


def measure(args):
    """The settings, then every method's speed and quality on the same log-mels."""
    from mmae.config import Config

    settings = QUICK if args.quick else FULL
    config = Config.load(PRESET)
    return {
        "config_preset": PRESET,
        "audio_config": dataclasses.asdict(config.audio),
        "settings": dataclasses.asdict(settings),
        **bench_vocoders(config.audio, settings),
    }


# --------------------------------------------------------------------------
# The benchmark


def load_clips(audio, count):
    """(clip ids, float32 waveforms, transcripts) of the first `count` clips of data/sample."""
    from mmae.audio.io import load_clip
    from mmae.datasets.readers import read_corpus

    utterances, _ = read_corpus(SAMPLE)
    utterances = utterances[:count]
    waveforms = [load_clip(u.audio_path, audio) for u in utterances]
    return [u.clip_id for u in utterances], waveforms, [u.text for u in utterances]


def recognition_scores(rows, texts, sample_rate):
    """{row: WER and CER of PocketSphinx on its waveforms}, or {"skipped": why}."""
    try:
        from mmae.evaluation import Recognizer, metrics

        recognizer = Recognizer()
    except ImportError as error:  # the eval extra is not installed
        return {"skipped": f"{error} (pip install -e '.[eval]')"}
    scores = {"recognizer": recognizer.description}
    for row, waveforms in rows.items():
        hypotheses = [recognizer.transcribe(w, sample_rate) for w in waveforms]
        scores[row] = {
            "wer": round(metrics.word_error_rate(texts, hypotheses), 4),
            "cer": round(metrics.character_error_rate(texts, hypotheses), 4),
        }
        log(f"  recognized {row}: WER {scores[row]['wer']}")
    return scores


def bench_vocoders(audio, settings):
    """Seconds per utterance and reconstruction quality of every method on the same log-mels."""
    import librosa
    import numpy as np
    import tensorflow as tf

    from mmae.audio.features import MelSpectrogram
    from mmae.vocoders import vocoder_from_config

    clip_ids, clips, texts = load_clips(audio, settings.num_clips)
    mel_layer = MelSpectrogram.from_config_dataclass(audio)
    log_mels = [mel_layer(clip).numpy() for clip in clips]  # [frames, num_mels] each
    frames = [len(m) for m in log_mels]
    audio_seconds = sum(len(c) for c in clips) / audio.sample_rate
    vocoder = vocoder_from_config(audio, num_iterations=settings.num_iterations)

    framing = librosa_framing(audio, center=True)
    librosa_kwargs = dict(**framing, **librosa_mel_scale(audio), power=audio.power)
    librosa_kwargs.pop("n_mels")  # mel_to_audio reads it from the mel

    def librosa_vocoder():
        return [
            librosa.feature.inverse.mel_to_audio(
                np.exp(m).T, n_iter=settings.num_iterations, **librosa_kwargs
            )
            for m in log_mels
        ]

    stft_kwargs = {k: librosa_kwargs[k] for k in ("sr", "n_fft", "power", "fmin", "fmax", "htk")}

    def librosa_magnitude_only():
        # mel_to_audio's first step (non-negative least squares), timed alone.
        return [
            librosa.feature.inverse.mel_to_stft(np.exp(m).T, norm="slaney", **stft_kwargs)
            for m in log_mels
        ]

    pseudo_inverse_magnitudes = [vocoder.linear_magnitude(m).numpy().T for m in log_mels]

    def librosa_griffin_lim_only():
        # librosa's Griffin-Lim loop on this layer's magnitudes: the loops compared alone.
        return [
            librosa.griffinlim(magnitude, n_iter=settings.num_iterations, random_state=0, **framing)
            for magnitude in pseudo_inverse_magnitudes
        ]

    signature = [
        tf.TensorSpec([None, None, audio.num_mels], tf.float32),
        tf.TensorSpec([None], tf.int32),
    ]
    graph = tf.function(vocoder, input_signature=signature)
    xla = tf.function(vocoder, input_signature=signature, jit_compile=True)

    def per_clip(function):
        def run_all():
            return [
                function(tf.constant(m[np.newaxis]), tf.constant([len(m)])).numpy()[0]
                for m in log_mels
            ]

        return run_all

    # One padded batch per batch_size clips, in corpus order (a synthesizer
    # gets its sentences in order); each output is cut back to its own length.
    batches = [
        list(range(i, min(i + settings.batch_size, len(clips))))
        for i in range(0, len(clips), settings.batch_size)
    ]
    padded_frames = sum(max(frames[i] for i in b) * len(b) for b in batches)

    def batched(function):
        def run_all():
            outputs = [None] * len(clips)
            for batch in batches:
                array = np.zeros([len(batch), max(frames[i] for i in batch), audio.num_mels])
                for row, index in enumerate(batch):
                    array[row, : frames[index]] = log_mels[index]
                lengths = tf.constant([frames[i] for i in batch])
                waveforms = function(tf.constant(array, tf.float32), lengths).numpy()
                for row, index in enumerate(batch):
                    outputs[index] = waveforms[row, : vocoder.samples_for_frames(frames[index])]
            return outputs

        return run_all

    batch_label = f"batches of up to {settings.batch_size} ({len(batches)} here)"
    methods = [
        (
            "librosa",
            "librosa.feature.inverse.mel_to_audio per clip (NNLS magnitude, random initial "
            "phase, momentum 0.99)",
            librosa_vocoder,
        ),
        (
            "librosa_nnls_only",
            "librosa.feature.inverse.mel_to_stft per clip: the magnitude step alone (no audio)",
            librosa_magnitude_only,
        ),
        (
            "librosa_griffinlim_on_pseudo_inverse",
            "librosa.griffinlim per clip on GriffinLim's pseudo-inverse magnitudes (random "
            "initial phase, seed 0, momentum 0.99): the iterations alone",
            librosa_griffin_lim_only,
        ),
        ("tf_graph_batch1", "GriffinLim in tf.function, one clip per call", per_clip(graph)),
        ("tf_xla_batch1", "GriffinLim in tf.function(jit_compile=True), per clip", per_clip(xla)),
        (
            "tf_graph_batched",
            f"GriffinLim in tf.function, padded {batch_label} with num_frames",
            batched(graph),
        ),
        (
            "tf_xla_batched",
            f"GriffinLim in tf.function(jit_compile=True), padded {batch_label}",
            batched(xla),
        ),
    ]

    # The warm-up pass traces and compiles each method (XLA once per distinct
    # shape, so once per clip length for the per-clip calls).
    outputs, first_pass, times = time_in_rotation(
        {name: run_all for name, _, run_all in methods}, settings.repeats, log
    )

    # Quality, against each original clip, with librosa's STFT (independent of
    # the code under test) and the analysis framing.
    def magnitude(waveform):
        return np.abs(librosa.stft(waveform, **framing))

    targets = [magnitude(clip) for clip in clips]

    def convergence(estimate, target):
        return float(np.linalg.norm(estimate - target) / np.linalg.norm(target))

    def quality(waveforms):
        spectral, mel_l1 = [], []
        for waveform, target, log_mel in zip(waveforms, targets, log_mels, strict=True):
            spectral.append(convergence(magnitude(waveform), target))
            mel_l1.append(float(np.mean(np.abs(mel_layer(waveform).numpy() - log_mel))))
        return spectral, mel_l1

    reference = outputs["tf_graph_batch1"]
    entries = {}
    for name, description, _ in methods:
        median = statistics.median(times[name])
        entry = {
            "description": description,
            "pass_seconds": [round(t, 4) for t in times[name]],
            "seconds_per_utterance": round(median / len(clips), 5),
            # Compute seconds per second of audio: below 1 is faster than real time.
            "real_time_factor": round(median / audio_seconds, 5),
            "x_real_time": round(audio_seconds / median, 2),
            # Warm-up pass minus a steady pass: tracing and XLA compilation.
            "compile_s": round(max(0.0, first_pass[name] - median), 3),
        }
        if name == "librosa_nnls_only":
            entry["magnitude_spectral_convergence_mean"] = round(
                statistics.mean(
                    convergence(m, t) for m, t in zip(outputs[name], targets, strict=True)
                ),
                4,
            )
        else:
            lengths_ok = all(
                len(w) == vocoder.samples_for_frames(n)
                for w, n in zip(outputs[name], frames, strict=True)
            )
            spectral, mel_l1 = quality(outputs[name])
            entry.update(
                {
                    "output_lengths_are_frames_minus_one_hops": lengths_ok,
                    "spectral_convergence_mean": round(statistics.mean(spectral), 4),
                    "spectral_convergence_per_clip": [round(s, 4) for s in spectral],
                    "mel_l1_mean": round(statistics.mean(mel_l1), 4),
                    "mel_l1_per_clip": [round(v, 4) for v in mel_l1],
                }
            )
            if name.startswith("tf_"):
                difference = max(
                    float(np.linalg.norm(w - r) / np.linalg.norm(r))
                    for w, r in zip(outputs[name], reference, strict=True)
                )
                entry["max_relative_l2_difference_vs_tf_graph_batch1"] = float(f"{difference:.3g}")
        entries[name] = entry
        log(f"  {name}: {entry['seconds_per_utterance'] * 1000:.1f} ms/utterance")
    base = entries["librosa"]
    for entry in entries.values():
        entry["speedup_vs_librosa"] = round(
            base["seconds_per_utterance"] / entry["seconds_per_utterance"], 2
        )

    pinv_convergence = statistics.mean(
        convergence(m, t) for m, t in zip(pseudo_inverse_magnitudes, targets, strict=True)
    )
    return {
        "clips": {
            "ids": clip_ids,
            "num_clips": len(clips),
            "audio_s": round(audio_seconds, 2),
            "mean_clip_s": round(audio_seconds / len(clips), 2),
            "frames": frames,
        },
        "num_iterations": settings.num_iterations,
        "repeats": settings.repeats,
        "batch_size": settings.batch_size,
        "batched_padding_overhead": round(padded_frames / sum(frames) - 1.0, 3),
        "magnitude_estimate": {
            "what": "spectral convergence of the linear magnitude estimated from the mels, "
            "before any phase (a floor for the vocoders' spectral convergence)",
            "griffin_lim_pseudo_inverse_mean": round(pinv_convergence, 4),
            "librosa_nnls_mean": entries["librosa_nnls_only"][
                "magnitude_spectral_convergence_mean"
            ],
        },
        "methods": entries,
        # Intelligibility, the evaluation's measure, of the same clips.
        "speech_recognition": recognition_scores(
            {
                "original": clips,
                "librosa": outputs["librosa"],
                "tf_graph_batch1": outputs["tf_graph_batch1"],
            },
            texts,
            audio.sample_rate,
        ),
    }


# --------------------------------------------------------------------------
# Report


def notes(results):
    return [
        "Timings on a small shared machine are noisy: compare ratios measured within one run.",
        "Every method starts from the same NumPy log-mels (MelSpectrogram, flite16k preset, on "
        "the first clips of data/sample, loaded as prepare loads them) and ends with NumPy "
        "waveforms; seconds_per_utterance is the median pass over all clips divided by the clip "
        "count, real_time_factor the median pass divided by the clips' audio seconds (below 1: "
        "faster than real time). compile_s is the warm-up pass minus a steady pass: tf.function "
        "tracing, and XLA compilation once per distinct input shape (once per clip length for "
        "the per-clip calls).",
        "librosa: mel_to_audio(exp(log_mel).T, power=1, n_iter, same n_fft/hop/win/fmin/fmax, "
        "Slaney mels) with its defaults: NNLS magnitude (rebuilding the mel filter bank on "
        "every call) and a random initial phase from a fresh generator, so its quality varies a "
        "little from run to run. librosa_nnls_only times that magnitude step alone; "
        "librosa_griffinlim_on_pseudo_inverse runs librosa.griffinlim (seed 0) on GriffinLim's "
        "own magnitudes, so it compares the two Griffin-Lim loops alone.",
        "GriffinLim: pseudo-inverse magnitude (the filter bank and its pseudo-inverse are made "
        "once, when the layer is built), zero initial phase, fast Griffin-Lim with momentum "
        "0.99 (librosa's default). The batched methods pad each batch to its longest clip and "
        "pass num_frames; the padding is part of the timed work. The batched graph function "
        "is the per-clip one (same input_signature), already traced, hence its ~0 compile_s.",
        "spectral_convergence: ||abs(STFT(output)) - abs(STFT(clip))||_F / ||abs(STFT(clip))||_F "
        "per clip, with librosa.stft and the analysis framing (center=True, zero padding); "
        "mel_l1: mean abs(log-mel of the output - input log-mel) over frames and bands. "
        "magnitude_estimate gives the first measure for the magnitude estimate alone: most of "
        "the vocoders' error is there, before any phase.",
        f"Whole run: {results['total_seconds']} s.",
    ]


def summary_text(results):
    lines = [
        f"{results['clips']['num_clips']} clips, {results['clips']['audio_s']} s of audio, "
        f"{results['num_iterations']} iterations, median of {results['repeats']} passes"
    ]
    for name, entry in results["methods"].items():
        line = (
            f"{name}: {entry['seconds_per_utterance'] * 1000:.1f} ms/utterance, "
            f"RTF {entry['real_time_factor']:.4f} ({entry['x_real_time']}x real time), "
            f"{entry['speedup_vs_librosa']}x librosa, compile {entry['compile_s']} s"
        )
        if "spectral_convergence_mean" in entry:
            line += (
                f", spectral convergence {entry['spectral_convergence_mean']}, "
                f"mel L1 {entry['mel_l1_mean']}"
            )
        lines.append(line)
    estimate = results["magnitude_estimate"]
    lines.append(
        "magnitude alone: spectral convergence "
        f"{estimate['griffin_lim_pseudo_inverse_mean']} (pseudo-inverse), "
        f"{estimate['librosa_nnls_mean']} (librosa NNLS)"
    )
    lines.append(f"total {results['total_seconds']} s")
    return "\n".join(lines)


def plot(results, path):
    plt = pyplot()
    methods = results["methods"]
    names = list(methods)
    figure, (left, right) = plt.subplots(
        1, 2, figsize=(17, 5.5), gridspec_kw={"width_ratios": [1.4, 1]}
    )
    machine = results["machine"]
    clips = results["clips"]
    figure.suptitle(
        f"mmae vocoder benchmark ({'quick' if results['quick'] else 'full'} run, "
        f"{results['date'][:10]}; {clips['num_clips']} clips, {clips['audio_s']} s of audio, "
        f"{results['num_iterations']} iterations; {machine['cpu_count']} CPUs, "
        f"TF {machine['tensorflow']}, librosa {machine['librosa']})",
        fontsize=11,
    )

    values = [methods[n]["seconds_per_utterance"] * 1000 for n in names]
    positions = bar_panel(left, names, values, headroom=30)
    for position, name in zip(positions, names, strict=True):
        entry = methods[name]
        left.annotate(
            f" {entry['seconds_per_utterance'] * 1000:.1f} ms  |  RTF "
            f"{entry['real_time_factor']:.3g}  |  {entry['speedup_vs_librosa']:.3g}x librosa"
            f"  |  compile {entry['compile_s']:.2f} s",
            (entry["seconds_per_utterance"] * 1000, position),
            va="center",
            fontsize=8.5,
        )
    left.set_xlabel(
        f"time per utterance (ms, log scale; median of {results['repeats']} passes, "
        f"mean clip {clips['mean_clip_s']} s)"
    )
    left.set_title("Speed: the same log-mels to audio", fontsize=10)
    left.grid(axis="x", alpha=0.3, which="both")

    quality = [n for n in names if "spectral_convergence_mean" in methods[n]]
    positions = range(len(quality))
    values = [methods[n]["spectral_convergence_mean"] for n in quality]
    right.barh(
        positions,
        values,
        color=["#8c8c8c" if n.startswith("librosa") else "#55a868" for n in quality],
    )
    right.set_yticks(list(positions), [n.replace("_on_", "\non_") for n in quality], fontsize=8.5)
    right.invert_yaxis()
    for position, name in zip(positions, quality, strict=True):
        entry = methods[name]
        right.annotate(
            f" {entry['spectral_convergence_mean']:.3f}  (mel L1 {entry['mel_l1_mean']:.3f})",
            (entry["spectral_convergence_mean"], position),
            va="center",
            fontsize=8.5,
        )
    floor = results["magnitude_estimate"]["griffin_lim_pseudo_inverse_mean"]
    right.axvline(floor, color="#c44e52", linestyle="--", linewidth=1)
    right.set_xlim(0, 1.45 * max(values))
    right.set_xlabel("spectral convergence vs the original clip (mean over clips; lower is better)")
    right.set_title(
        f"Quality (dashed: the magnitude estimate alone, before any phase: {floor:.3f})",
        fontsize=10,
    )
    right.grid(axis="x", alpha=0.3)

    save_figure(figure, path)


SMOKE_MODE = "2 clips, 4 iterations (smoke test)"
BENCHMARK = Benchmark(
    "vocoder_bench", __doc__, measure, plot, quick=SMOKE_MODE, notes=notes, summary=summary_text
)

if __name__ == "__main__":
    sys.exit(BENCHMARK.main())
