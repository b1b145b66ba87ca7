"""Neural vocoder quality and speed: the vocoder issue's targets, on two held-out voices.

Run from the repository root, beside or after `mmae train-vocoder`:

    .venv/bin/python -m bench.vocoder_quality_bench            # 40 clips a voice, <= 6 checkpoints
    .venv/bin/python -m bench.vocoder_quality_bench --quick    # 3 clips a voice, 2 checkpoints
    .venv/bin/python -m bench.vocoder_quality_bench --vocoder mmae/assets/vocos_flite16k

The targets (from the issue), on the held-out clips of the quality corpus:

- copy-synthesis (true mel -> neural vocoder): DNSMOS OVRL at least 0.9x
  the recordings', WER at most 1.05x the recordings';
- text to speech with the bundled acoustic model and the vocoder: DNSMOS
  OVRL at least 0.85x the recordings', WER at most 1.1x the recordings';
- speed on this CPU, ratios measured in one run: the vocoder alone faster
  than Griffin-Lim (32 iterations) at batch 1 and at batch 16; end to end
  through the SavedModel at least 50x real time at batch 1; the TFLite
  vocoder's speed and size reported;
- a curve of DNSMOS OVRL and WER against the vocoder's training CPU-hours,
  with Griffin-Lim and the recordings drawn as lines.

The clips are the first `--clips` of each voice's `validation` split (never
seen by the vocoder, which trains on another corpus, nor by the bundled
acoustic model). Rows per voice, each transcribed by PocketSphinx and
judged by DNSMOS as `mmae evaluate` does:

- `recordings`: the PCM stored in the prepared records;
- `griffin_lim`: the records' true log-mels through Griffin-Lim (32 iterations);
- `vocoder`: the same through the neural vocoder (`--vocoder`, by default the
  run's newest checkpoint), and a curve point per checkpoint of the run;
- for the voice the bundled acoustic model speaks (slt) only: `tts_griffin_lim`
  and `tts_vocoder`, the held-out sentences spoken by `Synthesizer` from text.

Writes bench/results/vocoder_quality_bench.json and .png. On a small, shared
machine (the vocoder may be training beside this), compare the speed ratios
measured within one run, not absolute numbers across runs.
"""

import dataclasses
import os
import statistics
import sys
import tempfile
import time

from bench.harness import REPO, Benchmark, logger, pyplot, save_figure, time_in_rotation

CORES = len(os.sched_getaffinity(0))
DEFAULT_RUN = os.path.join("runs", "vocoder2v")
DEFAULT_VOICES = ("slt=prepared/slt1600", "rms=prepared/rms1600")
# The voice the bundled acoustic model speaks: its text-to-speech rows.
TTS_VOICE = "slt"

# The issue's targets: ratios to the recordings' scores, and speed.
TARGETS = {
    "copy_synthesis": {"dnsmos_ovrl_ratio_min": 0.9, "wer_ratio_max": 1.05},
    "text_to_speech": {"dnsmos_ovrl_ratio_min": 0.85, "wer_ratio_max": 1.1},
    "vocoder_faster_than_griffin_lim_at_batch": [1, 16],
    "end_to_end_x_real_time_min": 50.0,
}
# The rows the targets apply to.
TARGET_ROWS = {"vocoder": "copy_synthesis", "tts_vocoder": "text_to_speech"}
# Report key -> `Naturalness.score` key (as mmae evaluate names them).
DNSMOS_KEYS = {
    "dnsmos_ovrl": "ovrl",
    "dnsmos_sig": "sig",
    "dnsmos_bak": "bak",
    "dnsmos_p808": "mos_p808",
}
SPEED_SECONDS = 4.0  # the log-mels the speed pass vocodes
SPEED_BATCHES = (1, 16)
SPEED_SENTENCES = 8  # held-out sentences spoken end to end, one per call, in each pass
RENDER_BATCH = 16  # clips per padded copy-synthesis batch

log = logger("vocoder_quality_bench")


@dataclasses.dataclass(frozen=True)
class Settings:
    """How much work the benchmark does."""

    clips_per_voice: int
    max_checkpoints: int
    speed_repeats: int


FULL = Settings(clips_per_voice=40, max_checkpoints=6, speed_repeats=7)
QUICK = Settings(clips_per_voice=3, max_checkpoints=2, speed_repeats=2)


def add_arguments(parser):
    parser.add_argument(
        "--run", default=DEFAULT_RUN, help=f"the vocoder run (default: {DEFAULT_RUN})"
    )
    parser.add_argument(
        "--voices",
        nargs="+",
        default=list(DEFAULT_VOICES),
        metavar="NAME=PREPARED",
        help="held-out voices: name=prepared directory (default: %(default)s)",
    )
    parser.add_argument(
        "--clips", type=int, help="held-out clips per voice (default 40; --quick: 3)"
    )
    parser.add_argument(
        "--checkpoints",
        nargs="+",
        type=int,
        metavar="STEP",
        help="the run's checkpoints (steps) on the curve (default: every kept one, or "
        "--max-checkpoints of them spread over the run)",
    )
    parser.add_argument(
        "--max-checkpoints",
        type=int,
        help="most checkpoints on the curve when --checkpoints is not given (default 6; "
        "--quick: 2, the first and the newest)",
    )
    parser.add_argument(
        "--vocoder",
        help="the vocoder of the target rows (a checkpoint prefix, a vocoder run or pack; "
        "default: the run's newest checkpoint)",
    )
    parser.add_argument("--skip-speed", action="store_true", help="no speed pass")
    parser.add_argument(
        "--skip-curve", action="store_true", help="no checkpoint curve: the --vocoder rows only"
    )


def settings_of(args):
    base = QUICK if args.quick else FULL
    return dataclasses.replace(
        base,
        clips_per_voice=args.clips or base.clips_per_voice,
        max_checkpoints=args.max_checkpoints or base.max_checkpoints,
    )


def measure(args):
    """The rows of every voice, the checkpoint curve, then the speed pass."""
    from mmae.config import Config
    from mmae.evaluation import Naturalness, Recognizer

    settings = settings_of(args)
    run_dir = args.run
    audio = Config.load(os.path.join(run_dir, "config.yaml")).audio
    voices = parse_voices(args.voices)
    # The judges first: a missing `eval` extra fails now, not after the rendering.
    judges = Judges(Recognizer(), Naturalness(), audio.sample_rate)

    final = final_vocoder(args.vocoder, run_dir, audio)
    log(f"vocoder of the target rows: {final.name} (step {final.step})")
    curve = [] if args.skip_curve else curve_vocoders(run_dir, args, settings, final, audio)
    log(f"curve: {[loaded.name for loaded in curve] or 'skipped'}")

    results = {
        "run": os.path.relpath(os.path.abspath(run_dir), REPO),
        "vocoder": final.record(),
        "settings": dataclasses.asdict(settings),
        "targets": TARGETS,
        "judges": {"asr": judges.recognizer.description, "dnsmos": judges.naturalness.description},
        "voices": {},
    }
    clips_by_voice = {}
    for voice, data_dir in voices.items():
        clips = read_clips(data_dir, audio, settings.clips_per_voice)
        clips_by_voice[voice] = clips
        results["voices"][voice] = measure_voice(
            voice, data_dir, clips, audio, final, curve, judges
        )
    results["verdicts"] = quality_verdicts(results["voices"])
    if args.skip_speed:
        results["speed"] = {"skipped": "--skip-speed"}
    else:
        speed_voice = TTS_VOICE if TTS_VOICE in clips_by_voice else next(iter(clips_by_voice))
        results["speed"] = measure_speed(
            final.vocoder, audio, clips_by_voice[speed_voice], speed_voice, settings
        )
        results["verdicts"].update(speed_verdicts(results["speed"]))
    results["all_targets_met"] = all(v["pass"] for v in results["verdicts"].values())
    return results


def parse_voices(specs):
    """{name: prepared directory} of `name=path` strings."""
    voices = {}
    for spec in specs:
        name, separator, path = spec.partition("=")
        if not separator or not name or not path:
            raise SystemExit(f"--voices takes name=prepared_directory, not {spec!r}.")
        voices[name] = path
    return voices


# --------------------------------------------------------------------------
# Inputs: clips, checkpoints, vocoders


@dataclasses.dataclass
class Clip:
    clip_id: str
    text: str
    mel: object  # float32 [frames, num_mels], the record's true log-mel
    recording: object  # float32 [samples], the record's stored PCM


def read_clips(data_dir, audio, limit):
    """The first `limit` validation clips of `data_dir` that have words to score.

    Read as `mmae evaluate` reads them; the data's features must be the vocoder's.
    """
    import tensorflow as tf

    from mmae.config import Config, audio_differences
    from mmae.datasets.prepare import load_dataset_info
    from mmae.datasets.records import parse
    from mmae.evaluation.metrics import score_text

    info = load_dataset_info(data_dir)
    differences = audio_differences(audio, Config.from_dict(info["config"]).audio)
    if differences:
        raise SystemExit(f"{data_dir} has other features than the vocoder: {differences}")
    shards = info["splits"].get("validation", {}).get("shards", [])
    if not shards:
        raise SystemExit(f"{data_dir} has no validation split.")
    dataset = tf.data.TFRecordDataset([os.path.join(data_dir, name) for name in shards])
    clips = []
    for example in dataset.map(lambda record: parse(record, audio.num_mels)).as_numpy_iterator():
        text = example["text"].decode("utf-8")
        if not score_text(text):
            continue
        if not example["audio"].size:
            raise SystemExit(
                f"{data_dir} stores no audio: prepare it with --set data.store_audio=true."
            )
        clips.append(
            Clip(example["clip_id"].decode("utf-8"), text, example["mel"], example["audio"])
        )
        if len(clips) == limit:
            break
    return clips


@dataclasses.dataclass
class LoadedVocoder:
    name: str  # for the results: a checkpoint name or a path
    vocoder: object
    prefix: str | None  # the checkpoint prefix, if it is one
    step: int | None
    cpu_hours: float | None
    cpu_hours_extrapolated: bool = False

    def record(self):
        return {
            "name": self.name,
            "checkpoint": os.path.relpath(self.prefix, REPO) if self.prefix else None,
            "step": self.step,
            "training_cpu_hours": self.cpu_hours,
            "training_cpu_hours_extrapolated": self.cpu_hours_extrapolated,
            "config": self.vocoder.get_config(),
        }


def run_checkpoints(run_dir):
    """The run's checkpoint prefixes with an index, oldest first."""
    from mmae.runs import checkpoint_step, checkpoints

    prefixes = checkpoints(os.path.join(run_dir, "checkpoints"))
    return sorted((p for p in prefixes if os.path.exists(p + ".index")), key=checkpoint_step)


def load_checkpoint(prefix, audio):
    """A `LoadedVocoder` of a run's checkpoint prefix (`RUN/checkpoints/ckpt-STEP`)."""
    from mmae.runs import checkpoint_step, load_vocoder

    run_dir = os.path.dirname(os.path.dirname(prefix))
    config, vocoder = load_vocoder(run_dir, checkpoint=prefix)
    check_features(config.audio, audio, prefix)
    step = checkpoint_step(prefix)
    cpu_hours, extrapolated = training_cpu_hours(run_dir, step)
    return LoadedVocoder(os.path.basename(prefix), vocoder, prefix, step, cpu_hours, extrapolated)


def final_vocoder(spec, run_dir, audio):
    """The vocoder of the target rows: `spec`, or the newest checkpoint of `run_dir` that loads."""
    from mmae.runs import CheckpointError, load_vocoder

    if spec is not None and not os.path.exists(spec + ".index"):
        config, vocoder = load_vocoder(spec)
        check_features(config.audio, audio, spec)
        return LoadedVocoder(spec, vocoder, None, None, None)
    candidates = [spec] if spec is not None else run_checkpoints(run_dir)[::-1]
    for prefix in candidates:
        try:
            return load_checkpoint(prefix, audio)
        except CheckpointError as error:  # e.g. being written right now
            log(f"skipped {prefix}: {error}")
    raise SystemExit(f"No checkpoint of {run_dir} loads.")


def check_features(found, expected, what):
    from mmae.config import audio_differences

    differences = audio_differences(expected, found)
    if differences:
        raise SystemExit(f"{what} was trained on other features: {differences}")


def curve_vocoders(run_dir, args, settings, final, audio):
    """[LoadedVocoder] of the curve: --checkpoints, or up to max_checkpoints spread out.

    Chosen among the checkpoints up to the final vocoder's step (when it is
    one of the run's), so a checkpoint written after the benchmark started is
    left out; `final` itself is reused.
    """
    from mmae.runs import CheckpointError, checkpoint_step

    prefixes = run_checkpoints(run_dir)
    if args.checkpoints:
        by_step = {checkpoint_step(p): p for p in prefixes}
        missing = sorted(set(args.checkpoints) - set(by_step))
        if missing:
            raise SystemExit(f"{run_dir} has no checkpoint at steps {missing}.")
        prefixes = [by_step[step] for step in sorted(set(args.checkpoints))]
    else:
        if final.prefix in prefixes:
            prefixes = prefixes[: prefixes.index(final.prefix) + 1]
        prefixes = spread(prefixes, settings.max_checkpoints)
    curve = []
    for prefix in prefixes:
        try:
            curve.append(final if prefix == final.prefix else load_checkpoint(prefix, audio))
        except CheckpointError as error:
            log(f"left {prefix} off the curve: {error}")
    return curve


def spread(items, count):
    """`count` of `items` evenly spread, the first and the last included."""
    if len(items) <= count:
        return list(items)
    if count == 1:
        return [items[-1]]
    chosen = sorted({round(i * (len(items) - 1) / (count - 1)) for i in range(count)})
    return [items[i] for i in chosen]


def training_cpu_hours(run_dir, step):
    """(CPU-hours of the training process at `step`, whether extrapolated past the last record).

    Linear between `metrics.jsonl` records (the last record of a step wins,
    as a resumed run logs steps again); past the last record, at its mean rate.
    """
    import numpy as np

    from mmae.runs import read_metrics

    by_step = {0: 0.0}
    for record in read_metrics(run_dir):
        if "cpu_seconds" in record and "step" in record:
            by_step[int(record["step"])] = float(record["cpu_seconds"])
    steps = sorted(by_step)
    if len(steps) == 1:
        return None, False
    last = steps[-1]
    if step > last:
        return round(by_step[last] / last * step / 3600, 4), True
    seconds = float(np.interp(step, steps, [by_step[s] for s in steps]))
    return round(seconds / 3600, 4), False


# --------------------------------------------------------------------------
# Rendering and judging


def copy_synthesis(vocoder, clips, audio):
    """[waveform] of each clip's true log-mel through `vocoder`, in padded batches."""
    import numpy as np
    import tensorflow as tf

    from mmae.synthesis import limit_peak

    vocode = tf.function(
        vocoder,
        input_signature=[
            tf.TensorSpec([None, None, audio.num_mels], tf.float32),
            tf.TensorSpec([None], tf.int32),
        ],
    )
    # Similar lengths together: less padding to compute.
    order = sorted(range(len(clips)), key=lambda i: len(clips[i].mel))
    waveforms = [None] * len(clips)
    for start in range(0, len(order), RENDER_BATCH):
        batch = order[start : start + RENDER_BATCH]
        frames = [len(clips[i].mel) for i in batch]
        log_mel = np.full([len(batch), max(frames), audio.num_mels], np.log(audio.log_floor))
        for row, index in enumerate(batch):
            log_mel[row, : frames[row]] = clips[index].mel
        output = vocode(tf.constant(log_mel, tf.float32), tf.constant(frames, tf.int32)).numpy()
        for row, index in enumerate(batch):
            samples = vocoder.samples_for_frames(frames[row])
            waveforms[index] = limit_peak(output[row, :samples], audio)
    return waveforms


@dataclasses.dataclass
class Judges:
    recognizer: object
    naturalness: object
    sample_rate: int

    def score(self, clips, waveforms):
        """Corpus-level WER/CER and mean DNSMOS of a row, and its per-clip values."""
        from mmae.evaluation import metrics

        hypotheses, per_clip = [], {}
        dnsmos = {key: [] for key in DNSMOS_KEYS}
        for clip, waveform in zip(clips, waveforms, strict=True):
            hypothesis = self.recognizer.transcribe(waveform, self.sample_rate)
            scores = self.naturalness.score(waveform, self.sample_rate)
            hypotheses.append(hypothesis)
            per_clip[clip.clip_id] = {
                "hypothesis": hypothesis,
                "wer": round(metrics.word_error_rate(clip.text, hypothesis), 4),
                "dnsmos_ovrl": _round(scores["ovrl"]),
            }
            for key, name in DNSMOS_KEYS.items():
                if scores[name] is not None:  # empty or silent audio has none
                    dnsmos[key].append(scores[name])
        texts = [clip.text for clip in clips]
        summary = {
            "num_clips": len(clips),
            "audio_s": round(sum(len(w) for w in waveforms) / self.sample_rate, 2),
            "wer": round(metrics.word_error_rate(texts, hypotheses), 4),
            "cer": round(metrics.character_error_rate(texts, hypotheses), 4),
            **{key: _round(statistics.mean(v)) if v else None for key, v in dnsmos.items()},
            "num_dnsmos": len(dnsmos["dnsmos_ovrl"]),
        }
        return summary, per_clip


def _round(value, digits=4):
    return None if value is None else round(value, digits)


def judged_row(what, clips, render, judges, label):
    """A row: `render()` -> waveforms, timed, then scored."""
    start = time.perf_counter()
    waveforms = render()
    rendered = time.perf_counter() - start
    start = time.perf_counter()
    summary, per_clip = judges.score(clips, waveforms)
    log(
        f"  {label}: WER {summary['wer']:.3f}, OVRL {summary['dnsmos_ovrl']}, "
        f"render {rendered:.1f} s, judge {time.perf_counter() - start:.1f} s"
    )
    return {"what": what, **summary, "render_seconds": round(rendered, 2)}, per_clip


def measure_voice(voice, data_dir, clips, audio, final, curve_vocoders, judges):
    """Every row of one voice (ratios to its recordings) and its checkpoint curve."""
    from mmae.vocoders import resolve_vocoder

    log(f"{voice}: {len(clips)} held-out clips of {data_dir}")
    rows, per_clip = {}, {}

    def add(row, what, render):
        rows[row], per_clip[row] = judged_row(what, clips, render, judges, f"{voice} {row}")

    add(
        "recordings", "the PCM stored in the prepared records", lambda: [c.recording for c in clips]
    )
    griffin_lim = resolve_vocoder("griffin_lim", audio)
    add(
        "griffin_lim",
        f"the true log-mel through Griffin-Lim ({griffin_lim.num_iterations} iterations)",
        lambda: copy_synthesis(griffin_lim, clips, audio),
    )

    curve = []
    for loaded in curve_vocoders:
        what = f"the true log-mel through {loaded.name}"
        point, clip_scores = judged_row(
            what,
            clips,
            lambda loaded=loaded: copy_synthesis(loaded.vocoder, clips, audio),
            judges,
            f"{voice} {loaded.name}",
        )
        if loaded is final:
            # The target rows' vocoder is on the curve: its scores are the vocoder row.
            rows["vocoder"], per_clip["vocoder"] = dict(point), clip_scores
        curve.append(
            {
                "checkpoint": loaded.name,
                "step": loaded.step,
                "training_cpu_hours": loaded.cpu_hours,
                "training_cpu_hours_extrapolated": loaded.cpu_hours_extrapolated,
                **point,
            }
        )
    if "vocoder" not in rows:
        add(
            "vocoder",
            f"the true log-mel through {final.name}",
            lambda: copy_synthesis(final.vocoder, clips, audio),
        )

    if voice == TTS_VOICE:
        from mmae import pretrained
        from mmae.synthesis import Synthesizer

        config, model = pretrained.load()
        check_features(config.audio, audio, "the bundled acoustic model")
        for row, vocoder, name in (
            ("tts_griffin_lim", griffin_lim, "Griffin-Lim"),
            ("tts_vocoder", final.vocoder, final.name),
        ):
            synthesizer = Synthesizer(model, config, vocoder=vocoder)
            add(
                row,
                f"the bundled acoustic model from text, through {name}",
                lambda synthesizer=synthesizer: synthesizer.synthesize([c.text for c in clips]),
            )

    reference = rows["recordings"]
    for row in rows.values():
        row.update(ratios(row, reference))
    for row, target in TARGET_ROWS.items():
        if row in rows:
            rows[row]["target"] = verdict(rows[row], TARGETS[target])
    for point in curve:
        point.update(ratios(point, reference))
        point["meets_copy_synthesis_targets"] = verdict(point, TARGETS["copy_synthesis"])["pass"]
    return {
        "data": data_dir,
        "clip_ids": [c.clip_id for c in clips],
        "texts": {c.clip_id: c.text for c in clips},
        "audio_s": round(sum(len(c.recording) for c in clips) / audio.sample_rate, 2),
        "rows": rows,
        "curve": curve,
        "per_clip": per_clip,
    }


def ratios(row, reference):
    """The row's DNSMOS OVRL and WER over the recordings' (None where the recordings' is 0)."""
    ovrl, wer = row["dnsmos_ovrl"], row["wer"]
    reference_ovrl, reference_wer = reference["dnsmos_ovrl"], reference["wer"]
    return {
        "dnsmos_ovrl_ratio": round(ovrl / reference_ovrl, 4)
        if ovrl is not None and reference_ovrl
        else None,
        "wer_ratio": round(wer / reference_wer, 4) if reference_wer else None,
        "recordings_dnsmos_ovrl": reference_ovrl,
        "recordings_wer": reference_wer,
    }


def verdict(row, target):
    """Pass or fail against one of TARGETS' quality targets."""
    ovrl_ok = (
        row["dnsmos_ovrl"] is not None
        and row["recordings_dnsmos_ovrl"] is not None
        and row["dnsmos_ovrl"] >= target["dnsmos_ovrl_ratio_min"] * row["recordings_dnsmos_ovrl"]
    )
    # Compared as products: a perfect recordings' WER (0) has no ratio.
    wer_ok = row["wer"] <= target["wer_ratio_max"] * row["recordings_wer"] + 1e-12
    return {**target, "dnsmos_ovrl_pass": ovrl_ok, "wer_pass": wer_ok, "pass": ovrl_ok and wer_ok}


def quality_verdicts(voices):
    """{"VOICE/ROW": pass/fail of each target row}."""
    verdicts = {}
    for voice, result in voices.items():
        for row in TARGET_ROWS:
            if row in result["rows"]:
                entry = result["rows"][row]
                verdicts[f"{voice}/{row}"] = {
                    "dnsmos_ovrl_ratio": entry["dnsmos_ovrl_ratio"],
                    "wer": entry["wer"],
                    "recordings_wer": entry["recordings_wer"],
                    "wer_ratio": entry["wer_ratio"],
                    "pass": entry["target"]["pass"],
                }
    return verdicts


# --------------------------------------------------------------------------
# Speed


def speed_log_mels(clips, frames, count):
    """`count` windows of `frames` real log-mel frames, from the clips back to back (repeated)."""
    import numpy as np

    joined = np.concatenate([c.mel for c in clips])
    repeats = -(-frames * count // len(joined))
    joined = np.concatenate([joined] * repeats)
    return np.stack([joined[i * frames : (i + 1) * frames] for i in range(count)]).astype(
        np.float32
    )


def measure_speed(vocoder, audio, clips, voice, settings):
    """Vocoder vs Griffin-Lim at batch 1 and 16, the SavedModel end to end, the TFLite vocoder."""
    import numpy as np
    import tensorflow as tf

    from mmae.vocoders import resolve_vocoder

    frames = 1 + int(SPEED_SECONDS * audio.sample_rate) // audio.frame_step
    log_mels = speed_log_mels(clips, frames, max(SPEED_BATCHES))
    seconds_per_item = vocoder.samples_for_frames(frames) / audio.sample_rate
    griffin_lim = resolve_vocoder("griffin_lim", audio)
    signature = [tf.TensorSpec([None, None, audio.num_mels], tf.float32)]
    functions = {
        "vocoder": tf.function(vocoder, input_signature=signature),
        "griffin_lim": tf.function(griffin_lim, input_signature=signature),
    }
    methods, audio_seconds, descriptions = {}, {}, {}
    for batch in SPEED_BATCHES:
        inputs = tf.constant(log_mels[:batch])
        for name, function in functions.items():
            key = f"{name}/batch{batch}"
            methods[key] = lambda function=function, inputs=inputs: function(inputs).numpy()
            audio_seconds[key] = batch * seconds_per_item
            descriptions[key] = (
                f"{batch} log-mel(s) of {frames} frames in one tf.function call"
                if name == "vocoder"
                else f"Griffin-Lim ({griffin_lim.num_iterations} iterations), "
                f"{batch} log-mel(s) of {frames} frames in one tf.function call"
            )

    sentences = [c.text for c in clips[:SPEED_SENTENCES]]
    speed = {
        "voice": voice,
        "log_mel_frames": frames,
        "seconds_per_item": seconds_per_item,
        "threads": {"tensorflow": "default (all cores)", "tflite": CORES},
        "repeats": settings.speed_repeats,
        "sentences": sentences,
    }
    with tempfile.TemporaryDirectory(prefix="vocoder-quality-bench-") as scratch:
        saved_model = saved_model_method(vocoder, scratch, sentences)
        speed["saved_model"] = saved_model["record"]
        if "method" in saved_model:
            methods["saved_model_end_to_end/batch1"] = saved_model["method"]
            descriptions["saved_model_end_to_end/batch1"] = (
                "text -> audio: the bundled acoustic model and the vocoder in an exported "
                f"SavedModel's serving_default, {len(sentences)} held-out sentences, one per call"
            )
        tflite = tflite_method(vocoder, scratch, audio, log_mels[:1])
        speed["tflite_vocoder"] = tflite["record"]
        if "method" in tflite:
            methods["tflite_vocoder/batch1"] = tflite["method"]
            audio_seconds["tflite_vocoder/batch1"] = seconds_per_item
            descriptions["tflite_vocoder/batch1"] = (
                f"the vocoder converted to TFLite, 1 log-mel of {frames} frames, "
                f"{CORES} interpreter threads"
            )
        log(f"speed on {voice}: {len(methods)} methods, {settings.speed_repeats} repeats")
        outputs, first_pass, timings = time_in_rotation(methods, settings.speed_repeats, log)

    if "saved_model_end_to_end/batch1" in outputs:
        audio_seconds["saved_model_end_to_end/batch1"] = (
            int(outputs["saved_model_end_to_end/batch1"]) / audio.sample_rate
        )
    if "tflite_vocoder/batch1" in outputs:
        # The same log-mel through the Keras vocoder: how far the conversion moved the output.
        reference = outputs["vocoder/batch1"][0]
        converted = np.asarray(outputs["tflite_vocoder/batch1"]).reshape(-1)
        speed["tflite_vocoder"]["relative_l2_difference_vs_tf"] = float(
            f"{np.linalg.norm(converted - reference) / np.linalg.norm(reference):.3g}"
        )
    entries = {}
    for name, seconds in timings.items():
        median = statistics.median(seconds)
        entries[name] = {
            "description": descriptions[name],
            "audio_s": round(audio_seconds[name], 3),
            "pass_seconds": [round(s, 4) for s in seconds],
            "median_s": round(median, 4),
            "x_real_time": round(audio_seconds[name] / median, 2),
            "real_time_factor": round(median / audio_seconds[name], 5),
            "warm_up_s": round(first_pass[name], 3),
        }
        log(f"  {name}: {entries[name]['x_real_time']}x real time")
    for batch in SPEED_BATCHES:
        neural, baseline = entries[f"vocoder/batch{batch}"], entries[f"griffin_lim/batch{batch}"]
        neural["speedup_vs_griffin_lim"] = round(baseline["median_s"] / neural["median_s"], 2)
    if "tflite_vocoder/batch1" in entries:
        entries["tflite_vocoder/batch1"]["speedup_vs_griffin_lim"] = round(
            entries["griffin_lim/batch1"]["median_s"]
            / entries["tflite_vocoder/batch1"]["median_s"],
            2,
        )
    speed["methods"] = entries
    return speed


def saved_model_method(vocoder, scratch, sentences):
    """{"record": the export's summary or error, "method": a call per sentence} of the SavedModel.

    The method returns the samples spoken in all.
    """
    import tensorflow as tf

    from mmae import export, pretrained

    out_dir = os.path.join(scratch, "saved_model")
    start = time.perf_counter()
    try:
        summary = export.export_saved_model(pretrained.path_of(), out_dir, vocoder=vocoder)
        serve = tf.saved_model.load(out_dir).signatures["serving_default"]
    except Exception as error:  # recorded, so the quality rows are not lost
        log(f"SavedModel export failed: {error}")
        return {"record": {"error": f"{type(error).__name__}: {str(error)[:500]}"}}
    texts = [tf.constant([sentence]) for sentence in sentences]

    def speak():
        samples = 0
        for text in texts:
            out = serve(text=text)
            out["audio"].numpy()
            samples += int(out["lengths"].numpy()[0])
        return samples

    return {
        "record": {
            "acoustic_model": pretrained.DEFAULT,
            "bytes": summary["saved_model_bytes"],
            "export_seconds": round(time.perf_counter() - start, 1),
        },
        "method": speak,
    }


def tflite_interpreter():
    """(Interpreter class, its name): LiteRT's if installed, else tf.lite's."""
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter, "ai_edge_litert.interpreter.Interpreter"
    except ImportError:
        import tensorflow as tf

        return tf.lite.Interpreter, "tf.lite.Interpreter"


def tflite_method(vocoder, scratch, audio, log_mel):
    """{"record": size, ops or the error, "method": one interpreter call on `log_mel`}."""
    from mmae import export

    path = os.path.join(scratch, "vocoder.tflite")
    try:
        summary = export.export_tflite_vocoder(vocoder, path, audio)
        interpreter_class, interpreter_name = tflite_interpreter()
        interpreter = interpreter_class(model_path=path, num_threads=CORES)
        (inputs,) = interpreter.get_input_details()
        interpreter.resize_tensor_input(inputs["index"], list(log_mel.shape))
        interpreter.allocate_tensors()
        output = interpreter.get_output_details()[0]["index"]
    except Exception as error:  # the converter's or the interpreter's: recorded, not fatal
        log(f"TFLite vocoder failed: {error}")
        return {"record": {"error": f"{type(error).__name__}: {str(error)[:500]}"}}

    def vocode():
        interpreter.set_tensor(inputs["index"], log_mel)
        interpreter.invoke()
        return interpreter.get_tensor(output).copy()

    record = {
        "bytes": summary["bytes"],
        "ops": summary["ops"],
        "builtin_error": summary["error"],
        "interpreter": interpreter_name,
    }
    return {"record": record, "method": vocode}


def speed_verdicts(speed):
    """Pass or fail of the speed targets."""
    methods = speed["methods"]
    verdicts = {}
    for batch in TARGETS["vocoder_faster_than_griffin_lim_at_batch"]:
        entry = methods[f"vocoder/batch{batch}"]
        verdicts[f"speed/vocoder_vs_griffin_lim_batch{batch}"] = {
            "speedup_vs_griffin_lim": entry["speedup_vs_griffin_lim"],
            "pass": entry["speedup_vs_griffin_lim"] > 1.0,
        }
    end_to_end = methods.get("saved_model_end_to_end/batch1")
    verdicts["speed/saved_model_end_to_end_batch1"] = {
        "x_real_time": end_to_end["x_real_time"] if end_to_end else None,
        "min": TARGETS["end_to_end_x_real_time_min"],
        "pass": bool(end_to_end)
        and end_to_end["x_real_time"] >= TARGETS["end_to_end_x_real_time_min"],
    }
    return verdicts


# --------------------------------------------------------------------------
# Report


ROW_ORDER = ("recordings", "griffin_lim", "vocoder", "tts_griffin_lim", "tts_vocoder")


def summary_text(results):
    vocoder = results["vocoder"]
    lines = [
        f"vocoder {vocoder['name']} (step {vocoder['step']}, "
        f"{vocoder['training_cpu_hours']} training CPU-hours)"
    ]
    for voice, result in results["voices"].items():
        lines.append(f"{voice}: {len(result['clip_ids'])} clips, {result['audio_s']} s")
        for name in ROW_ORDER:
            if name not in result["rows"]:
                continue
            row = result["rows"][name]
            line = (
                f"  {name:<16} WER {row['wer']:.3f} (x{_format(row['wer_ratio'])})  "
                f"OVRL {_format(row['dnsmos_ovrl'])} (x{_format(row['dnsmos_ovrl_ratio'])})  "
                f"SIG {_format(row['dnsmos_sig'])}  BAK {_format(row['dnsmos_bak'])}  "
                f"P808 {_format(row['dnsmos_p808'])}"
            )
            if "target" in row:
                line += "  PASS" if row["target"]["pass"] else "  FAIL"
            lines.append(line)
        for point in result["curve"]:
            lines.append(
                f"  curve {point['checkpoint']:<12} {point['training_cpu_hours']} CPU-h  "
                f"WER {point['wer']:.3f}  OVRL {_format(point['dnsmos_ovrl'])}"
            )
    speed = results["speed"]
    if "methods" in speed:
        for name, entry in speed["methods"].items():
            extra = (
                f", {entry['speedup_vs_griffin_lim']}x Griffin-Lim"
                if "speedup_vs_griffin_lim" in entry
                else ""
            )
            lines.append(f"speed {name}: {entry['x_real_time']}x real time{extra}")
        tflite = speed["tflite_vocoder"]
        lines.append(
            f"TFLite vocoder: {tflite.get('bytes')} bytes, ops {tflite.get('ops')}"
            if "error" not in tflite
            else f"TFLite vocoder: failed: {tflite['error']}"
        )
    lines.append(
        "targets: "
        + ", ".join(
            f"{k} {'pass' if v['pass'] else 'FAIL'}" for k, v in results["verdicts"].items()
        )
    )
    lines.append(f"total {results['total_seconds']} s")
    return "\n".join(lines)


def _format(value, digits=3):
    return "-" if value is None else f"{value:.{digits}f}"


def notes(results):
    return [
        "Held-out clips: the first clips (in record order) of each voice's validation split "
        "whose text has words to score; the vocoder trained on another corpus and the bundled "
        "acoustic model on the slt corpus's train split. recordings: the PCM stored in the "
        "records (trimmed and peak-normalized as prepare made it); griffin_lim, vocoder and "
        "the curve: the records' true log-mels, vocoded in padded batches of up to "
        f"{RENDER_BATCH} with their lengths, then scaled down to the output peak if louder "
        "(as mmae evaluate).",
        "tts_griffin_lim and tts_vocoder: Synthesizer(bundled acoustic model, vocoder)."
        "synthesize(the held-out texts), speaker 0 (slt); sentences split and joined with "
        "0.25 s pauses as Synthesizer does.",
        "WER and CER: PocketSphinx transcripts scored corpus-level (jiwer) against the texts, "
        "both through score_text. DNSMOS: each clip resampled to 16 kHz and scaled to -25 dBFS "
        "RMS before scoring (mmae.evaluation.Naturalness); the row's value is the mean over "
        "its clips. Ratios are the row's value over the recordings' of the same voice and "
        "clips; a WER target compares wer <= ratio x the recordings' WER, so it holds with "
        "recordings at WER 0 only for a WER of 0.",
        "training_cpu_hours: cpu_seconds (process CPU time of the training steps, summed over "
        "the run's sessions) from metrics.jsonl, linear between the logged steps, at the "
        "checkpoint's step, over 3600.",
        "Speed: one warm-up pass, then repeated passes with the methods in rotating order; "
        "medians. x_real_time = seconds of audio out / seconds of compute. The vocoders get "
        f"the same log-mels of {SPEED_SECONDS} s (real held-out frames), as one call of a "
        "tf.function with a fixed input signature; the SavedModel end to end is text in "
        "(one held-out sentence) to audio out, text frontend, acoustic model and vocoder "
        "included. The vocoder training run may share the CPU: compare ratios within a run.",
        f"Whole run: {results['total_seconds']} s.",
    ]


VOICE_COLORS = ("C0", "C3", "C2", "C4")


def plot(results, path):
    plt = pyplot()
    figure, (ovrl_axes, wer_axes, speed_axes) = plt.subplots(
        1, 3, figsize=(19, 5.4), gridspec_kw={"width_ratios": [1, 1, 1.15]}
    )
    vocoder = results["vocoder"]
    clips = {voice: len(r["clip_ids"]) for voice, r in results["voices"].items()}
    figure.suptitle(
        f"Neural vocoder against the recordings and Griffin-Lim "
        f"({'quick' if results['quick'] else 'full'} run, {results['date'][:10]}; "
        f"{results['run']}, target rows: {vocoder['name']}; held-out clips: "
        + ", ".join(f"{voice} {count}" for voice, count in clips.items())
        + ")",
        fontsize=10.5,
    )
    for axes, key, title, target_key in (
        (ovrl_axes, "dnsmos_ovrl", "DNSMOS OVRL (higher is better)", "dnsmos_ovrl_ratio_min"),
        (wer_axes, "wer", "WER, PocketSphinx (lower is better)", "wer_ratio_max"),
    ):
        quality_panel(axes, results, key, target_key)
        axes.set_title(f"{title}: copy-synthesis vs training", fontsize=10)
        axes.set_xlabel("vocoder training (CPU-hours)")
        axes.grid(alpha=0.3)
    # A WER of 0 sits on the axis, not in the middle of it.
    wer_axes.set_ylim(-0.02, max(0.1, wer_axes.get_ylim()[1]))
    # One legend: the WER panel draws the same lines.
    ovrl_axes.legend(fontsize=6.5, ncol=2, framealpha=0.8, loc="best")
    speed_panel(speed_axes, results["speed"])
    save_figure(figure, path, dpi=100)


def quality_panel(axes, results, key, target_key):
    """One quality measure per voice: the curve, the reference lines and the TTS rows."""
    copy_target = TARGETS["copy_synthesis"][target_key]
    final_x = results["vocoder"]["training_cpu_hours"]
    for index, (voice, result) in enumerate(results["voices"].items()):
        color = VOICE_COLORS[index % len(VOICE_COLORS)]
        rows = result["rows"]
        points = [
            (p["training_cpu_hours"], p[key])
            for p in result["curve"]
            if p["training_cpu_hours"] is not None and p[key] is not None
        ]
        if points:
            axes.plot(*zip(*points, strict=True), marker="o", color=color, label=f"{voice} vocoder")
        on_curve = any(p["checkpoint"] == results["vocoder"]["name"] for p in result["curve"])
        if not on_curve and final_x is not None and rows["vocoder"][key] is not None:
            axes.plot(
                [final_x],
                [rows["vocoder"][key]],
                marker="s",
                ms=8,
                ls="none",
                color=color,
                label=f"{voice} {results['vocoder']['name']} (target rows)",
            )
        reference = rows["recordings"][key]
        axes.axhline(reference, color=color, lw=1.2, label=f"{voice} recordings")
        axes.axhline(
            rows["griffin_lim"][key], color=color, ls="--", lw=1.2, label=f"{voice} Griffin-Lim"
        )
        axes.axhline(
            copy_target * reference,
            color=color,
            ls=":",
            lw=1,
            label=f"{voice} target ({copy_target}x recordings)",
        )
        if final_x is not None:
            for row, marker in (("tts_vocoder", "*"), ("tts_griffin_lim", "x")):
                if row in rows and rows[row][key] is not None:
                    axes.plot(
                        [final_x],
                        [rows[row][key]],
                        marker=marker,
                        ms=11,
                        ls="none",
                        color=color,
                        label=f"{voice} {row} (text to speech)",
                    )


SPEED_COLORS = {
    "vocoder": "#55a868",
    "griffin_lim": "#8c8c8c",
    "saved_model": "#4c72b0",
    "tflite": "#dd8452",
}


def speed_panel(axes, speed):
    if "methods" not in speed:
        axes.text(0.5, 0.5, f"speed: {speed.get('skipped', 'not measured')}", ha="center")
        axes.set_axis_off()
        return
    methods = speed["methods"]
    names = list(methods)
    values = [methods[n]["x_real_time"] for n in names]
    colors = [next(c for prefix, c in SPEED_COLORS.items() if n.startswith(prefix)) for n in names]
    positions = range(len(names))
    axes.barh(positions, values, color=colors)
    axes.set_yticks(list(positions), names, fontsize=8.5)
    axes.invert_yaxis()
    axes.set_xscale("log")
    axes.set_xlim(min(values + [1.0]) / 2, max(values) * 12)
    for position, name in zip(positions, names, strict=True):
        entry = methods[name]
        label = f" {entry['x_real_time']:.3g}x"
        if "speedup_vs_griffin_lim" in entry:
            label += f" ({entry['speedup_vs_griffin_lim']:.3g}x Griffin-Lim)"
        axes.annotate(label, (entry["x_real_time"], position), va="center", fontsize=8)
    axes.axvline(1.0, color="k", lw=0.8)
    target = TARGETS["end_to_end_x_real_time_min"]
    axes.axvline(target, color="#4c72b0", ls=":", lw=1)
    axes.text(
        target,
        len(names) - 0.45,
        f" end-to-end target {target:g}x",
        fontsize=7.5,
        color="#4c72b0",
        va="bottom",
    )
    tflite = speed["tflite_vocoder"]
    tflite_text = (
        f"TFLite vocoder {tflite['bytes'] / 1e6:.2f} MB ({tflite['ops']} ops)"
        if "error" not in tflite
        else "TFLite vocoder failed"
    )
    axes.set_title(
        f"Speed ({speed['voice']} log-mels of {speed['seconds_per_item']:.1f} s; median of "
        f"{speed['repeats']}); {tflite_text}",
        fontsize=9.5,
    )
    axes.set_xlabel("x real time (log scale; seconds of audio per second of compute)")
    axes.grid(axis="x", alpha=0.3, which="both")


SMOKE_MODE = "3 clips per voice, 2 checkpoints, 2 speed passes (smoke test)"
BENCHMARK = Benchmark(
    "vocoder_quality_bench",
    __doc__,
    measure,
    plot,
    quick=SMOKE_MODE,
    add_arguments=add_arguments,
    notes=notes,
    summary=summary_text,
)

if __name__ == "__main__":
    sys.exit(BENCHMARK.main())
