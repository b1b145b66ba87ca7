"""`mmae prepare`: a corpus in, sharded TFRecords with features, statistics and a report out.

The unit of work is a shard. Each shard is written to a temporary name,
renamed into place, and only then marked finished by its sidecar
`<shard>.json`; a rerun skips shards with a sidecar, so an interrupted run
resumes and never mistakes a half-written shard for a finished one. Bad clips
are skipped and listed with their reason; nothing stops a large corpus
half-way unless `strict` asks for it.

Paths may be local or `gs://` (through `tf.io.gfile`), so the same command
prepares data for a Colab TPU.

Example:

>>> config = Config.load("flite16k")
>>> summary = prepare("data/sample", "prepared/sample", config)
>>> summary["splits"]["train"]["num_clips"]
"""

import collections
import concurrent.futures
import hashlib
import json
import math
import os
import re
import threading
import time
import warnings

import numpy as np
import tensorflow as tf

from mmae.config import (
    PRESET_DIR,
    Config,
    IncompatibleConfigError,
    check_compatible,
    with_current_frontend,
)
from mmae.datasets import readers, records
from mmae.progress import progress_bar

SPLITS = ("train", "validation")
FORMAT_VERSION = 1


class PrepareError(RuntimeError):
    pass


def prepare(source, out_dir, config, *, jobs=None, strict=False, overwrite=False, progress=True):
    """Prepares a corpus into `out_dir`.

    Args:
        source: corpus directory or manifest (see `readers.read_corpus`).
        out_dir: output directory, local or `gs://`.
        config: the `Config` whose audio, text and data sections apply.
        jobs: worker threads (default: one per core).
        strict: fail on any bad row instead of skipping it.
        overwrite: discard what `out_dir` already holds from an earlier run.
        progress: show a progress bar.

    Returns:
        The dataset summary that is also written to `out_dir/dataset.json`.
    """
    start = time.time()
    # The tokens are this frontend's, whatever version the config came with.
    config = with_current_frontend(config)
    utterances, row_problems = readers.read_corpus(source)
    row_problems = [{"where": p.where, "reason": p.reason, "kind": "bad row"} for p in row_problems]
    if strict and row_problems:
        raise PrepareError(_problem_text("bad rows in the corpus (strict mode)", row_problems))
    if not utterances:
        if row_problems:
            raise PrepareError(_problem_text(f"bad rows in {source}, no good one", row_problems))
        raise PrepareError(f"No rows in {source}.")
    speakers = sorted({u.speaker for u in utterances})
    plan = _plan(utterances, speakers, config)

    tf.io.gfile.makedirs(out_dir)
    if overwrite:
        _remove_outputs(out_dir)
    _check_or_write_config(out_dir, config)
    _check_or_write_plan(out_dir, plan, source)
    _remove_temporary_files(out_dir)

    pending = [
        s for s in plan["shards"] if not tf.io.gfile.exists(_sidecar_path(out_dir, s["name"]))
    ]
    total = sum(len(s["clips"]) for s in plan["shards"])
    done = total - sum(len(s["clips"]) for s in pending)
    _run_shards(out_dir, pending, config, jobs, progress, total, done)

    sidecars = [_read_json(_sidecar_path(out_dir, s["name"])) for s in plan["shards"]]
    summary = _summarize(plan, sidecars, row_problems, config, source, time.time() - start)
    _write_report(out_dir, summary, config, total)
    clip_problems = [p for sidecar in sidecars for p in sidecar["problems"]]
    if strict and clip_problems:
        title = "bad clips (strict mode); see report.md"
        raise PrepareError(_skipped_text(title, clip_problems, config, total))
    if not summary["splits"]["train"]["num_clips"]:
        title = f"clips skipped and none kept; see {out_dir}/report.md"
        raise PrepareError(_skipped_text(title, clip_problems, config, total))
    _write_json(os.path.join(out_dir, "dataset.json"), summary)
    return summary


def load_dataset_info(data_dir):
    """Reads `dataset.json` of a prepared directory, with a clear error if unfinished."""
    path = os.path.join(data_dir, "dataset.json")
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(
            f"{data_dir} is not a finished prepared dataset (no dataset.json); "
            f"run `mmae prepare SOURCE {data_dir}` (it resumes where it stopped)."
        )
    return _read_json(path)


def split_of(clip_id, validation_fraction):
    """Deterministic split from a hash of the clip id alone."""
    digest = hashlib.sha1(clip_id.encode("utf-8")).digest()
    position = int.from_bytes(digest[:8], "big") / 2.0**64
    return "validation" if position < validation_fraction else "train"


def _plan(utterances, speakers, config):
    """Assigns every clip to a split and a shard, deterministically."""
    by_split = {split: [] for split in SPLITS}
    for u in utterances:
        by_split[split_of(u.clip_id, config.data.validation_fraction)].append(u)
    # A tiny corpus may hash no clip into validation; keep at least one there.
    if not by_split["validation"] and len(utterances) > 1 and config.data.validation_fraction > 0:
        first = min(by_split["train"], key=lambda u: hashlib.sha1(u.clip_id.encode()).digest())
        by_split["train"].remove(first)
        by_split["validation"].append(first)
    speaker_ids = {name: i for i, name in enumerate(speakers)}
    shards = []
    for split in SPLITS:
        # Hash order mixes speakers and sentence lengths across shards.
        clips = sorted(by_split[split], key=lambda u: hashlib.sha1(u.clip_id.encode()).digest())
        count = max(1, -(-len(clips) // config.data.clips_per_shard)) if clips else 0
        for index in range(count):
            chunk = clips[index::count]
            shards.append(
                {
                    "name": f"{split}-{index:05d}-of-{count:05d}",
                    "split": split,
                    "clips": [
                        [u.clip_id, u.audio_path, u.text, speaker_ids[u.speaker]] for u in chunk
                    ],
                }
            )
    return {"speakers": speakers, "shards": shards}


def _run_shards(out_dir, shards, config, jobs, progress, total, done):
    """Writes `shards` with `jobs` threads.

    Threads, not processes: decoding (libsndfile), resampling (soxr) and the
    mel layer (TensorFlow) release the GIL, and a spawned process would
    spend seconds importing TensorFlow before its first clip.
    """
    if not shards:
        return
    jobs = min(jobs or os.cpu_count() or 1, len(shards))
    config_dict = config.to_dict()
    # Each worker's first clip also builds its featurizer (a tf.function trace).
    bar = progress_bar(
        total=total, initial=done, unit="clip", desc="prepare", disable=not progress, warmup=jobs
    )
    lock = threading.Lock()
    stop = threading.Event()

    def tick(count):
        with lock:
            bar.update(count)

    def work(shard):
        _write_shard(out_dir, shard, config_dict, tick, stop)

    try:
        if jobs == 1:
            for shard in shards:
                work(shard)
            return
        with concurrent.futures.ThreadPoolExecutor(jobs, thread_name_prefix="prepare") as pool:
            futures = [pool.submit(work, shard) for shard in shards]
            try:
                for future in concurrent.futures.as_completed(futures):
                    future.result()  # re-raise a worker's unexpected failure
            except BaseException:
                # Ctrl-C: unstarted shards are cancelled, running ones stop at
                # their next clip and leave only a temporary file.
                stop.set()
                for future in futures:
                    future.cancel()
                raise
    finally:
        bar.close()


class _Interrupted(Exception):
    pass


_THREAD_STATE = threading.local()


def _featurizer(config_dict):
    """The tokenizer and compiled mel function, built once per thread.

    Per thread because a tokenizer counts unknown characters as it goes (and
    phonemizer's espeak backend is not thread-safe).
    """
    from mmae.audio.features import MelSpectrogram
    from mmae.text import tokenizer_from_config

    key = json.dumps(config_dict, sort_keys=True)
    if getattr(_THREAD_STATE, "key", None) != key:
        config = Config.from_dict(config_dict)
        layer = MelSpectrogram.from_config_dataclass(config.audio)
        mel_fn = tf.function(layer, input_signature=[tf.TensorSpec([None], tf.float32)])
        _THREAD_STATE.key = key
        _THREAD_STATE.value = (config, tokenizer_from_config(config.text), mel_fn)
    return _THREAD_STATE.value


def _write_shard(out_dir, shard, config_dict, tick, stop=None):
    """Writes one shard and its sidecar; returns nothing (the sidecar is the result)."""
    from mmae.audio.io import AudioError, load_clip
    from mmae.text import EmptyTextError

    config, tokenizer, mel_fn = _featurizer(config_dict)
    audio, data = config.audio, config.data
    final_path = _shard_path(out_dir, shard["name"])
    tmp_path = f"{final_path}.tmp-{os.getpid()}-{threading.get_ident()}"
    problems, lengths, durations = [], [], []
    unknown = collections.Counter()
    mel_sum = np.zeros(audio.num_mels, np.float64)
    mel_square_sum = np.zeros(audio.num_mels, np.float64)
    num_frames_total = 0
    before = collections.Counter(tokenizer.unknown_counts)
    encoded = _encode_shard(tokenizer, shard["clips"])
    unknown.update(tokenizer.unknown_counts - before)
    with tf.io.TFRecordWriter(tmp_path) as writer:
        for (clip_id, audio_path, _, speaker_id), (tokens, shown_text) in zip(
            shard["clips"], encoded, strict=True
        ):
            if stop is not None and stop.is_set():
                raise _Interrupted(shard["name"])
            try:
                if isinstance(tokens, Exception):
                    raise tokens
                if len(tokens) > data.max_tokens:
                    raise _Skip(
                        "too many tokens",
                        len(tokens),
                        f"text too long: {len(tokens)} tokens > data.max_tokens {data.max_tokens}",
                    )
                waveform = load_clip(audio_path, audio)
                duration = len(waveform) / audio.sample_rate
                if duration < data.min_duration:
                    raise _Skip(
                        "too short",
                        duration,
                        f"too short: {duration:.2f} s < data.min_duration {data.min_duration} s",
                    )
                if duration > data.max_duration:
                    raise _Skip(
                        "too long",
                        duration,
                        f"too long: {duration:.2f} s > data.max_duration {data.max_duration} s",
                    )
                mel = mel_fn(tf.constant(waveform, tf.float32)).numpy()
            except _Skip as error:
                problems.append(_problem(clip_id, error, error.kind, error.value))
            except AudioError as error:
                problems.append(_problem(clip_id, error, *_audio_problem(error, audio_path)))
            except EmptyTextError as error:
                problems.append(_problem(clip_id, error, "empty text"))
            except Exception as error:  # a decoder crash must not stop a large corpus
                reason = f"unexpected {type(error).__name__}: {error}"
                problems.append(_problem(clip_id, reason, "unexpected error"))
            else:
                pcm = waveform if data.store_audio else None
                writer.write(records.serialize(clip_id, speaker_id, shown_text, tokens, mel, pcm))
                lengths.append([clip_id, int(mel.shape[0]), len(tokens)])
                durations.append(duration)
                mel_sum += mel.sum(axis=0)
                mel_square_sum += np.square(mel, dtype=np.float64).sum(axis=0)
                num_frames_total += mel.shape[0]
            tick(1)
    tf.io.gfile.rename(tmp_path, final_path, overwrite=True)
    sidecar = {
        "name": shard["name"],
        "split": shard["split"],
        "num_clips": len(lengths),
        "lengths": lengths,
        "seconds": float(sum(durations)),
        "num_frames": int(num_frames_total),
        "mel_sum": mel_sum.tolist(),
        "mel_square_sum": mel_square_sum.tolist(),
        "unknown_characters": dict(unknown),
        "problems": problems,
    }
    # Written last: its presence is what marks the shard finished.
    _write_json(_sidecar_path(out_dir, shard["name"]), sidecar)


def _encode_shard(tokenizer, clips):
    """[(ids or the clip's error, normalized text)] of a shard's clips, in one frontend call.

    Unknown characters are counted on `tokenizer` and reported once per
    dataset, not warned per clip. Should the batch fail as a whole, the clips
    are encoded one by one, so that one bad text costs only its clip.
    """
    texts = [text for _, _, text, _ in clips]
    clip_ids = [clip_id for clip_id, _, _, _ in clips]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            encoded, normalized = tokenizer.encode_batch(
                texts, clip_ids, errors="return", return_normalized=True
            )
            return list(zip(encoded, normalized, strict=True))
        except Exception:  # one clip's text broke the batch: find it
            results = []
            for text, clip_id in zip(texts, clip_ids, strict=True):
                try:
                    encoded, normalized = tokenizer.encode_batch(
                        [text], [clip_id], errors="return", return_normalized=True
                    )
                    results.append((encoded[0], normalized[0]))
                except Exception as error:
                    results.append((error, text))
            return results


class _Skip(Exception):
    """A clip left out by a data setting: `kind` names the rule, `value` is what was measured."""

    def __init__(self, kind, value, message):
        super().__init__(message)
        self.kind = kind
        self.value = value


def _problem(clip_id, reason, kind, value=None):
    return {"where": clip_id, "reason": str(reason), "kind": kind, "value": value}


# AudioError's messages (mmae.audio.io) name the file, then the problem. The
# group, where there is one, is the measured value.
_AUDIO_PROBLEMS = (
    ("file not found", re.compile(r": file not found$")),
    ("sample rate too low", re.compile(r": sample rate (\d+) Hz is below")),
    ("wrong sample rate", re.compile(r": wrong sample rate: (\d+) Hz")),
    ("unreadable audio", re.compile(r": unreadable audio")),
    ("no sound", re.compile(r": (?:empty|silent) audio|: non-finite samples")),
)


def _audio_problem(error, audio_path):
    """(kind, value) of an AudioError: the source rate for a rate, the path for a missing file."""
    for kind, pattern in _AUDIO_PROBLEMS:
        match = pattern.search(str(error))
        if match:
            if kind == "file not found":
                return kind, audio_path
            return kind, int(match.group(1)) if match.groups() else None
    return "other", None


# Kinds whose fix changes every clip (or the whole corpus): suggested only when
# most clips are skipped for it, not to keep one odd clip.
_CORPUS_WIDE = ("sample rate too low", "wrong sample rate", "file not found", "empty text")


def _how_to_keep(kind, values, config):
    """What to change so that clips skipped as `kind`, measuring `values`, are kept; or None."""
    if kind == "sample rate too low":
        rate = min(values)
        settings = [f"audio.sample_rate={rate}"]
        if config.audio.upper_edge_hertz > rate / 2:
            settings.append(f"audio.upper_edge_hertz={rate / 2:g}")
        options = [f"--config {name} (a preset at {rate} Hz)" for name in _presets_at(rate)[:1]]
        return ", or ".join(options + [" ".join(f"--set {s}" for s in settings)])
    if kind == "wrong sample rate":
        rates = sorted(set(values))
        other = f", or --set audio.sample_rate={rates[0]}" if len(rates) == 1 else ""
        return f"--set audio.resample=true{other}"
    if kind == "too long":
        return f"--set data.max_duration={math.ceil(max(values))}"
    if kind == "too short":
        return f"--set data.min_duration={math.floor(min(values) * 100) / 100:g}"
    if kind == "too many tokens":
        return f"--set data.max_tokens={max(values)}"
    if kind == "file not found":
        return (
            f"put the audio where the corpus says, e.g. {values[0]} (an LJSpeech corpus keeps "
            "SOURCE/wavs/ID.wav, .flac, .ogg or .mp3; a manifest's paths are relative to it)"
        )
    if kind == "unreadable audio":
        return "convert the files to WAV or FLAC (with ffmpeg or sox, for example)"
    if kind == "empty text":
        return (
            f"check the corpus's text column: no symbol of text.symbol_set "
            f"{config.text.symbol_set} is left in these transcripts once normalized"
        )
    return None


def _presets_at(sample_rate):
    # By name, so flite16k comes before tiny (the tests' preset) at 16000 Hz.
    names = sorted(name[:-5] for name in os.listdir(PRESET_DIR) if name.endswith(".yaml"))
    return [name for name in names if Config.load(name).audio.sample_rate == sample_rate]


def _by_kind(problems, config, num_clips):
    """(kind, its problems, what keeps them or None) per kind, the most frequent first."""
    groups = collections.defaultdict(list)
    for problem in problems:
        # Sidecars written before kinds were recorded have none.
        groups[problem.get("kind", "other")].append(problem)
    for kind, group in sorted(groups.items(), key=lambda item: -len(item[1])):
        fix = None
        if kind not in _CORPUS_WIDE or 2 * len(group) >= num_clips:
            fix = _how_to_keep(kind, [p.get("value") for p in group], config)
        yield kind, group, fix


def _skipped_text(title, problems, config, num_clips):
    """`title`, then per kind of problem: how many, one example, and what keeps them."""
    lines = [f"{len(problems)} {title}:"]
    for kind, group, fix in _by_kind(problems, config, num_clips):
        example = group[0]
        lines.append(f"  {kind}: {len(group)}, e.g. {example['where']}: {example['reason']}")
        if fix:
            lines.append(f"    to keep them: {fix}")
    return "\n".join(lines)


def _summarize(plan, sidecars, row_problems, config, source, seconds):
    splits = {}
    for split in SPLITS:
        parts = [s for s in sidecars if s["split"] == split]
        splits[split] = {
            "shards": [s["name"] + ".tfrecord" for s in parts],
            "num_clips": sum(s["num_clips"] for s in parts),
            "num_frames": sum(s["num_frames"] for s in parts),
            "hours": sum(s["seconds"] for s in parts) / 3600.0,
            "lengths": [length for s in parts for length in s["lengths"]],
        }
    train = [s for s in sidecars if s["split"] == "train"] or sidecars
    frames = max(1, sum(s["num_frames"] for s in train))
    mean = np.sum([s["mel_sum"] for s in train], axis=0) / frames
    square = np.sum([s["mel_square_sum"] for s in train], axis=0) / frames
    std = np.sqrt(np.maximum(square - mean**2, 1e-8))
    unknown = collections.Counter()
    for s in sidecars:
        unknown.update(s["unknown_characters"])
    skipped = row_problems + [p for s in sidecars for p in s["problems"]]
    return {
        "format_version": FORMAT_VERSION,
        "source": str(source),
        "speakers": plan["speakers"],
        "splits": splits,
        "mel_mean": mean.tolist(),
        "mel_std": std.tolist(),
        "unknown_characters": dict(unknown.most_common()),
        "skipped": skipped,
        "seconds_to_prepare": seconds,
        "config": config.to_dict(),
    }


def _write_report(out_dir, summary, config, num_clips):
    report = {key: value for key, value in summary.items() if key != "config"}
    report["splits"] = {
        name: {k: v for k, v in split.items() if k != "lengths"}
        for name, split in summary["splits"].items()
    }
    _write_json(os.path.join(out_dir, "report.json"), report)
    lines = [f"# Prepared dataset report\n\nSource: `{summary['source']}`\n"]
    lines.append("| split | clips | hours | frames |\n|---|---|---|---|")
    for name, split in summary["splits"].items():
        lines.append(
            f"| {name} | {split['num_clips']} | {split['hours']:.3f} | {split['num_frames']} |"
        )
    if summary["speakers"] != [""]:
        lines.append(f"\nSpeakers: {', '.join(summary['speakers'])}")
    lines.append(f"\n## Skipped: {len(summary['skipped'])}\n")
    for kind, group, fix in _by_kind(summary["skipped"], config, num_clips):
        lines.append(f"- {kind}: {len(group)}" + (f" (to keep them: {fix})" if fix else ""))
    if summary["skipped"]:
        lines.append("\n| where | reason |\n|---|---|")
        lines += [f"| {s['where']} | {s['reason']} |" for s in summary["skipped"]]
    if summary["unknown_characters"]:
        dropped = ", ".join(f"{c!r} x{n}" for c, n in summary["unknown_characters"].items())
        lines.append(f"\n## Unknown characters dropped\n\n{dropped}")
    _write_text(os.path.join(out_dir, "report.md"), "\n".join(lines) + "\n")


def _problem_text(title, problems):
    rows = [f"  {p['where']}: {p['reason']}" for p in problems[:20]]
    more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
    return f"{len(problems)} {title}:\n" + "\n".join(rows) + more


def _check_or_write_config(out_dir, config):
    path = os.path.join(out_dir, "config.yaml")
    if tf.io.gfile.exists(path):
        stored = Config.load(path)
        try:
            check_compatible(stored, config, what=f"this config (vs. {path})")
        except IncompatibleConfigError as error:
            raise IncompatibleConfigError(
                f"{error}\n{out_dir} holds data prepared that other way: prepare into another "
                "directory, or pass --overwrite (overwrite=True) to replace it."
            ) from None
        if stored.data != config.data:
            raise PrepareError(
                f"{out_dir} was prepared with different data settings ({path}); "
                "use another directory or --overwrite."
            )
    else:
        config.save(path)


def _check_or_write_plan(out_dir, plan, source):
    path = os.path.join(out_dir, "plan.json")
    if tf.io.gfile.exists(path):
        if _read_json(path) != plan:
            raise PrepareError(
                f"The corpus {source} changed since {out_dir} was started (different clips or "
                "text); use another directory or --overwrite."
            )
    else:
        _write_json(path, plan)


def _remove_outputs(out_dir):
    for name in tf.io.gfile.listdir(out_dir):
        if name.startswith(SPLITS) or name in (
            "config.yaml",
            "plan.json",
            "dataset.json",
            "report.json",
            "report.md",
        ):
            tf.io.gfile.remove(os.path.join(out_dir, name))


def _remove_temporary_files(out_dir):
    for name in tf.io.gfile.listdir(out_dir):
        if ".tmp-" in name:
            tf.io.gfile.remove(os.path.join(out_dir, name))


def _shard_path(out_dir, name):
    return os.path.join(out_dir, name + ".tfrecord")


def _sidecar_path(out_dir, name):
    return os.path.join(out_dir, name + ".json")


def _read_json(path):
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)


def _write_json(path, value):
    _write_text(path, json.dumps(value, indent=1))


def _write_text(path, text):
    tmp = f"{path}.tmp-{os.getpid()}"
    with tf.io.gfile.GFile(tmp, "w") as f:
        f.write(text)
    tf.io.gfile.rename(tmp, path, overwrite=True)
