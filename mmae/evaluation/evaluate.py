"""`mmae evaluate`: how intelligible and natural a run's speech is, and how close to the recordings.

The held-out (validation) sentences of a prepared corpus are rendered in
several ways, each a row of the report:

- `original`: the corpus recording, loaded with `load_clip` and the run's
  audio settings (trimmed and peak-normalized as `mmae prepare` saw it). If
  the recording is gone, the prepared record's own audio is used when it was
  stored (`data.store_audio`); otherwise the sentence has no `original`, and
  with no recording at all the row is missing, with the reason in
  `report["missing_rows"]`.
- `vocoder_ceiling`: the record's true log-mel through the synthesizer's
  vocoder (`vocoder`, or `Synthesizer`'s default), the best the acoustic
  model can reach with this vocoder. `vocoders` renders other copy-synthesis
  ceilings instead, a row each; when none of them is Griffin-Lim (a neural
  vocoder), a `griffin_lim_ceiling` row is added, so the two can be compared
  in one report.
- `model`: `Synthesizer.synthesize(text)` of the run, with the record's speaker.

Every row is transcribed by PocketSphinx (`Recognizer`) and scored against
the sentence with `word_error_rate` / `character_error_rate` (corpus level,
both sides through `score_text`), and its naturalness is predicted by
DNSMOS (`Naturalness`: P.808 MOS and P.835 SIG, BAK, OVRL, means of the
per-sentence scores; `dnsmos=False` leaves them out). The synthetic rows
are compared with the original by mel-cepstral distortion and F0 errors on
one DTW path (`compare_features`). The model's log-mel (`synthesize_mel`)
is compared with the record's by L1 after DTW (`mel_l1_dtw`; durations are
predicted, so the frames do not line up otherwise), and the teacher-forced
`mel_text` L1 of the run's last validation record is copied from
`metrics.jsonl` (`validation_mel_text_l1`, in normalized mel units).

Files in `out_dir`: `report.json` (everything, with a row per sentence,
worst model WER first), `report.md` (the table and the worst sentences with
links to their audio), `report.png` (per-sentence WER, MCD and DNSMOS OVRL
per row) and `audio/<clip_id>_<row>.wav` for the worst `num_worst`
sentences (or all).

Example:

>>> report = evaluate("runs/sample", "prepared/sample", "runs/sample/evaluation", limit=40)
>>> report["rows"]["model"]["wer"], report["rows"]["vocoder_ceiling"]["wer"]
>>> report["rows"]["model"]["dnsmos_ovrl"], report["rows"]["original"]["dnsmos_ovrl"]
"""

import dataclasses
import hashlib
import io
import json
import os
import re
import time

import numpy as np
import tensorflow as tf

from mmae.evaluation import metrics
from mmae.evaluation.asr import Recognizer
from mmae.evaluation.naturalness import Naturalness
from mmae.progress import progress_bar
from mmae.synthesis import limit_peak

__all__ = ["ROWS", "evaluate"]

# The rows of an evaluation with the run's own (Griffin-Lim) vocoder; other
# vocoders add their ceiling rows between the original and the model.
ROWS = ("original", "vocoder_ceiling", "model")
_GRIFFIN_LIM_CEILING = "griffin_lim_ceiling"
_ACOUSTIC_KEYS = ("mcd", "f0_rmse_hz", "f0_rmse_cents", "voicing_error")
# Report key -> `Naturalness.score` key.
_DNSMOS_KEYS = {
    "dnsmos_ovrl": "ovrl",
    "dnsmos_sig": "sig",
    "dnsmos_bak": "bak",
    "dnsmos_p808": "mos_p808",
}

# WORLD's frame period and its default F0 range. ESPnet's floor of 40 Hz let
# harvest find sub-harmonics in Griffin-Lim speech: on slt_00012 through the
# tiny preset's vocoder, an F0 RMSE of 915 cents against 174 with 71 Hz.
_FRAME_PERIOD_MS = 5.0
_F0_FLOOR, _F0_CEIL = 71.0, 800.0


@dataclasses.dataclass
class _Clip:
    clip_id: str
    text: str
    reference: str  # the text as scored (`metrics.score_text`)
    speaker_id: int
    mel: np.ndarray
    stored_audio: np.ndarray


def evaluate(
    run_dir,
    data_dir,
    out_dir,
    limit=None,
    progress=True,
    write_audio=True,
    all_audio=False,
    num_worst=10,
    corpus=None,
    recognizer=None,
    checkpoint=None,
    rows=None,
    vocoder=None,
    vocoders=None,
    dnsmos=True,
):
    """Synthesizes the validation sentences of `data_dir` with `run_dir` and scores them.

    Args:
        run_dir: a training run (its latest checkpoint is used), or a packed model.
        data_dir: the prepared data with `validation-*.tfrecord` shards; its
            `dataset.json` names the corpus the recordings come from.
        out_dir: where the report, plot and audio are written.
        limit: evaluate only the first `limit` validation sentences.
        progress: show progress bars and print a summary table at the end.
        write_audio: write the audio of every row of the `num_worst`
            sentences with the highest model WER.
        all_audio: write the audio of every sentence instead.
        num_worst: sentences listed in `report.md` (and written as audio).
        corpus: the corpus to read recordings from, instead of
            `dataset.json`'s `source` (e.g. after moving it).
        recognizer: a `Recognizer` to reuse; a new one by default.
        checkpoint: a checkpoint prefix of the run to evaluate instead of its
            latest (e.g. one of its `snapshots/`).
        rows: the rows to score (all by default): `original`, `model` (always)
            and ceiling rows; the reference rows do not depend on the model,
            so a study of many checkpoints scores them once. The recordings
            are read either way, for MCD and F0 errors.
        vocoder: the vocoder of the model row (and of `vocoder_ceiling`),
            passed to `Synthesizer.from_run`; its default when None.
        vocoders: {row name: Vocoder} of the copy-synthesis ceilings to
            render, `{"vocoder_ceiling": <the model's vocoder>}` by default.
            A `griffin_lim_ceiling` row is added when none is Griffin-Lim.
        dnsmos: predict every row's naturalness with DNSMOS (`Naturalness`,
            from the `eval` extra).

    Returns:
        The report (also written to `out_dir/report.json`).
    """
    from mmae.config import Config, check_compatible
    from mmae.datasets.prepare import load_dataset_info
    from mmae.runs import read_metrics
    from mmae.synthesis import Synthesizer

    start = time.time()
    # Before the slow part: fails at once when the `eval` extra is missing.
    naturalness = Naturalness() if dnsmos else None
    synthesizer = Synthesizer.from_run(run_dir, checkpoint, vocoder=vocoder)
    config = synthesizer.config
    sample_rate = synthesizer.sample_rate
    ceilings = _ceiling_vocoders(synthesizer, vocoders)
    row_names = ("original", *ceilings, "model")
    rows = row_names if rows is None else tuple(rows)
    if set(rows) - set(row_names) or "model" not in rows:
        raise ValueError(f"rows must include 'model' and come from {row_names}, not {rows}.")
    info = load_dataset_info(data_dir)
    # The model speaks the clips' texts: only the audio features must match
    # (a run of another text frontend version warns in the Synthesizer).
    check_compatible(config, Config.from_dict(info["config"]), what=data_dir, sections=("audio",))
    clips, notes = _read_validation(data_dir, info, config.audio.num_mels, limit)
    source = corpus or info["source"]

    audio = {}
    audio["original"], original_note = _load_originals(clips, source, config.audio)
    if original_note and audio["original"]:
        notes.append(original_note)
    for row, ceiling in ceilings.items():
        audio[row] = _vocode(ceiling, row, clips, config.audio, progress) if row in rows else {}
    model_mels, audio["model"] = _synthesize(synthesizer, clips, progress)
    present_rows = [row for row in row_names if row in rows and audio[row]]
    missing_rows = {row: "not asked for (rows=...)" for row in row_names if row not in rows}
    if not audio["original"]:
        missing_rows["original"] = original_note
        notes.append("No recording to compare with: MCD and F0 errors are not reported.")

    recognizer = recognizer or Recognizer()
    hypotheses = _recognize(recognizer, audio, present_rows, clips, sample_rate, progress)
    compared_rows = [row for row in present_rows if row != "original"]
    acoustic = _compare(audio, compared_rows, clips, sample_rate, progress)
    if naturalness is not None:
        judged = _judge(naturalness, audio, present_rows, clips, sample_rate, progress)
    else:
        judged = {}
    sentences = _sentences(
        clips, present_rows, audio, hypotheses, acoustic, judged, model_mels, config.audio
    )
    sentences.sort(key=_badness, reverse=True)

    summaries = {
        row: _summarize_row(row, sentences, row in compared_rows, dnsmos) for row in present_rows
    }
    validation = read_metrics(run_dir, "validation")
    summaries["model"]["validation_mel_text_l1"] = (
        validation[-1].get("mel_text") if validation else None
    )
    summaries["model"]["validation_step"] = validation[-1].get("step") if validation else None
    if not validation:
        notes.append("The run has no validation record: no teacher-forced mel L1.")
    ceiling_wer = summaries.get("vocoder_ceiling", {}).get("wer")
    report = {
        "run_dir": str(run_dir),
        "data_dir": str(data_dir),
        "checkpoint": os.path.basename(checkpoint) if checkpoint else _latest_checkpoint(run_dir),
        "source": str(source),
        "sample_rate": sample_rate,
        "num_sentences": len(clips),
        "row_names": list(row_names),
        "rows": summaries,
        "missing_rows": missing_rows,
        "wer_ratio_model_to_ceiling": (
            summaries["model"]["wer"] / ceiling_wer if ceiling_wer else None
        ),
        "methods": _methods(recognizer, naturalness, ceilings, sample_rate),
        "notes": notes,
        "sentences": sentences,
    }

    tf.io.gfile.makedirs(out_dir)
    if write_audio or all_audio:
        chosen = sentences if all_audio else sentences[:num_worst]
        _write_audio(out_dir, chosen, audio, row_names, sample_rate)
    report["seconds"] = time.time() - start
    _write_text(os.path.join(out_dir, "report.json"), json.dumps(report, indent=1))
    _write_text(os.path.join(out_dir, "report.md"), _markdown(report, num_worst))
    _plot(report, os.path.join(out_dir, "report.png"))
    if progress:
        print(_summary_table(report))
    return report


# -- inputs ------------------------------------------------------------------


def _read_validation(data_dir, info, num_mels, limit):
    """The validation clips (first `limit`), and notes on any left out."""
    from mmae.datasets.records import parse

    shards = info["splits"].get("validation", {}).get("shards", [])
    if not shards:
        raise ValueError(f"{data_dir} has no validation clips to evaluate on.")
    dataset = tf.data.TFRecordDataset([os.path.join(data_dir, name) for name in shards])
    dataset = dataset.map(lambda record: parse(record, num_mels))
    if limit is not None:
        dataset = dataset.take(limit)
    clips, notes = [], []
    for example in dataset.as_numpy_iterator():
        text = example["text"].decode("utf-8")
        clip = _Clip(
            clip_id=example["clip_id"].decode("utf-8"),
            text=text,
            reference=metrics.score_text(text),
            speaker_id=int(example["speaker_id"]),
            mel=example["mel"],
            stored_audio=example["audio"],
        )
        if clip.reference:
            clips.append(clip)
        else:
            notes.append(f"{clip.clip_id} left out: its text has no words to score ({text!r}).")
    if not clips:
        raise ValueError(f"No validation sentence of {data_dir} has words to score.")
    return clips, notes


def _load_originals(clips, source, audio_config):
    """{clip_id: waveform} of the recordings that can be read, and a note on the others."""
    from mmae.audio.io import AudioError, load_clip
    from mmae.datasets.readers import read_corpus

    try:
        utterances, _ = read_corpus(source)
        paths = {u.clip_id: u.audio_path for u in utterances}
        corpus_problem = None
    except (FileNotFoundError, OSError) as error:
        paths, corpus_problem = {}, f"cannot read the corpus: {error}"
    originals, from_records, missing = {}, [], []
    for clip in clips:
        try:
            if clip.clip_id not in paths:
                raise AudioError(corpus_problem or f"{clip.clip_id} is not in {source}")
            originals[clip.clip_id] = load_clip(paths[clip.clip_id], audio_config)
        except AudioError as error:
            if clip.stored_audio.size:
                originals[clip.clip_id] = clip.stored_audio.astype(np.float32)
                from_records.append(clip.clip_id)
            else:
                missing.append((clip.clip_id, str(error)))
    parts = []
    if missing:
        first_id, first_reason = missing[0]
        parts.append(
            f"{len(missing)} of {len(clips)} recordings are missing, so their sentences have "
            f"no `original` (first: {first_id}: {first_reason})"
        )
    if from_records:
        parts.append(
            f"{len(from_records)} recordings were read from the prepared records instead "
            f"of {source}"
        )
    return originals, ("; ".join(parts) + ".") if parts else None


# -- rendering ---------------------------------------------------------------


def _ceiling_vocoders(synthesizer, vocoders):
    """{row name: Vocoder}: `vocoders` (or the model's), and Griffin-Lim when none is."""
    from mmae.vocoders import GriffinLim, vocoder_from_config

    audio_config = synthesizer.config.audio
    ceilings = {"vocoder_ceiling": synthesizer.vocoder} if vocoders is None else dict(vocoders)
    if not any(isinstance(vocoder, GriffinLim) for vocoder in ceilings.values()):
        ceilings.setdefault(_GRIFFIN_LIM_CEILING, vocoder_from_config(audio_config))
    for name, vocoder in ceilings.items():
        # The name goes into audio file names (`<clip_id>_<row>.wav`).
        if name in ("original", "model") or not re.fullmatch(r"[A-Za-z0-9_]+", name):
            raise ValueError(
                f"A ceiling row needs a name of letters, digits and '_' other than "
                f"'original' and 'model', not {name!r}."
            )
        if (vocoder.sample_rate, vocoder.frame_step) != (
            audio_config.sample_rate,
            audio_config.frame_step,
        ):
            raise ValueError(
                f"The {name} vocoder works at {vocoder.sample_rate} Hz with a frame step of "
                f"{vocoder.frame_step}; the run's features are {audio_config.sample_rate} Hz "
                f"and {audio_config.frame_step}."
            )
    return ceilings


def _vocode(vocoder, row, clips, audio_config, progress):
    """{clip_id: waveform} of each record's true log-mel through `vocoder`."""
    # One trace for every length.
    vocode = tf.function(
        lambda log_mel: vocoder(log_mel),
        input_signature=[tf.TensorSpec([1, None, audio_config.num_mels], tf.float32)],
    )
    waveforms = {}
    for clip in progress_bar(clips, desc=row.replace("_", " "), unit="clip", disable=not progress):
        waveform = vocode(tf.constant(clip.mel[None]))[0].numpy()
        waveforms[clip.clip_id] = limit_peak(waveform, audio_config)
    return waveforms


def _synthesize(synthesizer, clips, progress):
    """({clip_id: log-mel}, {clip_id: waveform}) from the run's model, batch by batch."""
    mels, waveforms = {}, {}
    bar = progress_bar(total=len(clips), desc="synthesize", unit="clip", disable=not progress)
    for speaker_id in sorted({clip.speaker_id for clip in clips}):
        group = [clip for clip in clips if clip.speaker_id == speaker_id]
        for start in range(0, len(group), synthesizer.batch_size):
            batch = group[start : start + synthesizer.batch_size]
            texts = [clip.text for clip in batch]
            pairs = synthesizer.synthesize_with_mel(texts, speaker_id=speaker_id)
            for clip, (waveform, mel) in zip(batch, pairs, strict=True):
                waveforms[clip.clip_id] = waveform
                mels[clip.clip_id] = mel
            bar.update(len(batch))
    bar.close()
    return mels, waveforms


# -- scoring -----------------------------------------------------------------


def _recognize(recognizer, audio, rows, clips, sample_rate, progress):
    """{row: {clip_id: transcript}}."""
    jobs = [(row, clip) for row in rows for clip in clips if clip.clip_id in audio[row]]
    transcripts = {row: {} for row in rows}
    for row, clip in progress_bar(jobs, desc="recognize", unit="clip", disable=not progress):
        transcripts[row][clip.clip_id] = recognizer.transcribe(
            audio[row][clip.clip_id], sample_rate
        )
    return transcripts


def _judge(naturalness, audio, rows, clips, sample_rate, progress):
    """{row: {clip_id: {dnsmos_*: score}}}."""
    jobs = [(row, clip) for row in rows for clip in clips if clip.clip_id in audio[row]]
    results = {row: {} for row in rows}
    for row, clip in progress_bar(jobs, desc="DNSMOS", unit="clip", disable=not progress):
        scores = naturalness.score(audio[row][clip.clip_id], sample_rate)
        results[row][clip.clip_id] = {key: scores[name] for key, name in _DNSMOS_KEYS.items()}
    return results


def _compare(audio, rows, clips, sample_rate, progress):
    """{row: {clip_id: MCD and F0 errors against the original}} for the synthetic `rows`."""
    results = {row: {} for row in rows}
    compared = [clip for clip in clips if clip.clip_id in audio["original"]]
    if not compared:
        return results
    for clip in progress_bar(compared, desc="analyze", unit="clip", disable=not progress):
        reference = _reference_world(audio["original"][clip.clip_id], sample_rate)
        for row in rows:
            synthesized = _world(audio[row][clip.clip_id], sample_rate)
            if reference is None or synthesized is None:
                results[row][clip.clip_id] = dict.fromkeys(_ACOUSTIC_KEYS)
                continue
            values = metrics.compare_features(reference, synthesized)
            results[row][clip.clip_id] = {key: values[key] for key in _ACOUSTIC_KEYS}
    return results


# The recordings' WORLD analysis (most of an evaluation's time, with harvest)
# is the same for every checkpoint: kept per process, keyed by the audio itself.
_REFERENCE_CACHE = {}
_REFERENCE_CACHE_SIZE = 4096


def _reference_world(waveform, sample_rate):
    waveform = np.ascontiguousarray(waveform, dtype=np.float32)
    key = (sample_rate, hashlib.sha1(waveform.tobytes()).hexdigest())
    if key not in _REFERENCE_CACHE:
        if len(_REFERENCE_CACHE) >= _REFERENCE_CACHE_SIZE:
            _REFERENCE_CACHE.clear()
        _REFERENCE_CACHE[key] = _world(waveform, sample_rate)
    return _REFERENCE_CACHE[key]


def _world(waveform, sample_rate):
    try:
        return metrics.world_features(
            waveform, sample_rate, _FRAME_PERIOD_MS, f0_floor=_F0_FLOOR, f0_ceil=_F0_CEIL
        )
    except ValueError:  # too short to analyze (e.g. a text with nothing to say)
        return None


def _sentences(clips, rows, audio, hypotheses, acoustic, judged, model_mels, audio_config):
    """One entry per clip: its text and, per row, transcript, error rates, distances, DNSMOS."""
    sentences = []
    for clip in clips:
        scores = {}
        for row in rows:
            if clip.clip_id not in audio[row]:
                continue
            hypothesis = hypotheses[row][clip.clip_id]
            scores[row] = {
                "hypothesis": hypothesis,
                "wer": metrics.word_error_rate(clip.reference, hypothesis),
                "cer": metrics.character_error_rate(clip.reference, hypothesis),
                **acoustic.get(row, {}).get(clip.clip_id, {}),
                **judged.get(row, {}).get(clip.clip_id, {}),
                "audio": None,
            }
        mel = model_mels[clip.clip_id]
        scores["model"]["mel_l1_dtw"] = metrics.mel_l1(clip.mel, mel) if len(mel) else None
        sentences.append(
            {
                "clip_id": clip.clip_id,
                "text": clip.text,
                "reference": clip.reference,
                "speaker_id": clip.speaker_id,
                "seconds": len(clip.mel) * audio_config.frame_step / audio_config.sample_rate,
                "rows": scores,
            }
        )
    return sentences


def _badness(sentence):
    """Sort key: the model's WER, then its MCD (a missing value counts as best)."""
    model = sentence["rows"].get("model", {})
    mcd = model.get("mcd")
    return (model.get("wer", 0.0), -np.inf if mcd is None else mcd)


def _mean(values):
    values = [value for value in values if value is not None]
    return float(np.mean(values)) if values else None


def _summarize_row(row, sentences, compared, dnsmos):
    scored = [s for s in sentences if row in s["rows"]]
    references = [s["reference"] for s in scored]
    hypotheses = [s["rows"][row]["hypothesis"] for s in scored]
    summary = {
        "num_sentences": len(scored),
        "wer": metrics.word_error_rate(references, hypotheses),
        "cer": metrics.character_error_rate(references, hypotheses),
    }
    if compared:
        for key in _ACOUSTIC_KEYS:
            summary[key] = _mean(s["rows"][row].get(key) for s in scored)
        summary["num_compared"] = sum(s["rows"][row].get("mcd") is not None for s in scored)
    if dnsmos:
        for key in _DNSMOS_KEYS:
            summary[key] = _mean(s["rows"][row][key] for s in scored)
        # Empty or silent audio has no scores (see `Naturalness`).
        summary["num_dnsmos"] = sum(s["rows"][row]["dnsmos_ovrl"] is not None for s in scored)
    if row == "model":
        summary["mel_l1_dtw"] = _mean(s["rows"][row]["mel_l1_dtw"] for s in scored)
    return summary


def _methods(recognizer, naturalness, ceilings, sample_rate):
    order, alpha = metrics.mel_cepstrum_settings(sample_rate)
    methods = {
        "asr": recognizer.description,
        "ceilings": {
            row: f"the record's log-mel through {type(vocoder).__name__}"
            for row, vocoder in ceilings.items()
        },
        "text_scoring": "normalize_text, lower case, only letters and apostrophes "
        "(score_text), the same for references and transcripts",
        "error_rates": "corpus level (jiwer): all edits over all reference words / characters",
        "mcd": {
            "analysis": "WORLD: harvest F0, cheaptrick envelope",
            "frame_period_ms": _FRAME_PERIOD_MS,
            "mel_cepstrum": "SPTK sp2mc (real cepstrum of log power, freqt warping)",
            "order": order,
            "alpha": alpha,
            "coefficients": f"1..{order} (c0 excluded)",
            "alignment": "DTW, Euclidean distance on coefficients 1..order",
            "formula": "10/ln10 * sqrt(2 * sum_d (c_d - c'_d)^2), mean over aligned frames",
            "average": "mean of the per-sentence values",
        },
        "f0": {
            "analysis": "WORLD harvest",
            "range_hz": [_F0_FLOOR, _F0_CEIL],
            "rmse": "Hz and cents, over DTW-aligned frame pairs voiced in both",
            "voicing_error": "fraction of DTW-aligned frame pairs whose voicing differs",
            "average": "mean of the per-sentence values",
        },
        "mel_l1": {
            "mel_l1_dtw": "model log-mel (synthesize_mel) vs the record's log-mel, "
            "mean |difference| over frame pairs of a DTW on the log-mel frames "
            "(natural-log mel units)",
            "validation_mel_text_l1": "teacher-forced mel_text L1 of the run's last "
            "validation record in metrics.jsonl (normalized mel units)",
        },
    }
    if naturalness is not None:
        methods["dnsmos"] = {
            **naturalness.description,
            "scores": "dnsmos_p808: P.808 MOS; dnsmos_sig, dnsmos_bak, dnsmos_ovrl: P.835 "
            "speech, background and overall quality; all from 1 to 5",
            "average": "mean of the per-sentence values (empty or silent audio left out)",
        }
    return methods


def _latest_checkpoint(run_dir):
    directory = os.path.join(run_dir, "checkpoints")
    found = tf.train.latest_checkpoint(directory) if tf.io.gfile.isdir(directory) else None
    return os.path.basename(found) if found else None


# -- outputs -----------------------------------------------------------------


def _write_audio(out_dir, sentences, audio, row_names, sample_rate):
    from mmae.audio.io import save_audio

    audio_dir = os.path.join(out_dir, "audio")
    tf.io.gfile.makedirs(audio_dir)
    # Files of an earlier evaluation would otherwise sit beside these, unlisted.
    known = {*ROWS, _GRIFFIN_LIM_CEILING, *row_names}
    suffixes = tuple(f"_{row}.wav" for row in known)
    for name in tf.io.gfile.listdir(audio_dir):
        if name.endswith(suffixes):
            tf.io.gfile.remove(os.path.join(audio_dir, name))
    for sentence in sentences:
        for row, values in sentence["rows"].items():
            name = f"{sentence['clip_id'].replace('/', '_')}_{row}.wav"
            save_audio(os.path.join(audio_dir, name), audio[row][sentence["clip_id"]], sample_rate)
            values["audio"] = f"audio/{name}"


def _format(value, digits=3):
    if value is None:
        return "-"
    return f"{value:.{digits}f}"


_COLUMNS = (
    ("WER", "wer", 3),
    ("CER", "cer", 3),
    ("MCD dB", "mcd", 2),
    ("F0 RMSE Hz", "f0_rmse_hz", 1),
    ("F0 RMSE cents", "f0_rmse_cents", 0),
    ("voicing err", "voicing_error", 3),
    ("mel L1 (DTW)", "mel_l1_dtw", 3),
    ("DNSMOS OVRL", "dnsmos_ovrl", 2),
    ("SIG", "dnsmos_sig", 2),
    ("BAK", "dnsmos_bak", 2),
    ("P.808", "dnsmos_p808", 2),
)


def _markdown(report, num_worst):
    lines = [
        "# Evaluation report\n",
        f"Run `{report['run_dir']}` ({report['checkpoint'] or 'no checkpoint name'}), "
        f"{report['num_sentences']} validation sentences of `{report['data_dir']}` "
        f"(recordings: `{report['source']}`).\n",
        "| row | sentences | " + " | ".join(title for title, _, _ in _COLUMNS) + " |",
        "|---|---:|" + "---:|" * len(_COLUMNS),
    ]
    for row in report["row_names"]:
        if row not in report["rows"]:
            lines.append(f"| {row} | missing |" + " |" * len(_COLUMNS))
            continue
        summary = report["rows"][row]
        cells = [_format(summary.get(key), digits) for _, key, digits in _COLUMNS]
        lines.append(f"| {row} | {summary['num_sentences']} | " + " | ".join(cells) + " |")
    ratio = report["wer_ratio_model_to_ceiling"]
    lines.append(f"\nModel WER / vocoder ceiling WER: {_format(ratio, 2)}.")
    model = report["rows"]["model"]
    lines.append(
        "Teacher-forced validation mel L1 (normalized mel units, metrics.jsonl at step "
        f"{model['validation_step']}): {_format(model['validation_mel_text_l1'])}."
    )
    for row, reason in report["missing_rows"].items():
        lines.append(f"\n**`{row}` is missing**: {reason}")
    if report["notes"]:
        lines.append("\n## Notes\n")
        lines += [f"- {note}" for note in report["notes"]]
    lines.append(f"\n## The {min(num_worst, len(report['sentences']))} worst sentences\n")
    lines.append("Highest model WER first, then highest model MCD.\n")
    lines.append("| clip | text | row | transcript | WER | MCD dB | DNSMOS OVRL | audio |")
    lines.append("|---|---|---|---|---:|---:|---:|---|")
    for sentence in report["sentences"][:num_worst]:
        first = True
        for row, values in sentence["rows"].items():
            link = f"[wav]({values['audio']})" if values["audio"] else "-"
            clip = f"{sentence['clip_id']}" if first else ""
            text = _escape(sentence["reference"]) if first else ""
            lines.append(
                f"| {clip} | {text} | {row} | {_escape(values['hypothesis'])} | "
                f"{_format(values['wer'], 2)} | {_format(values.get('mcd'), 2)} | "
                f"{_format(values.get('dnsmos_ovrl'), 2)} | {link} |"
            )
            first = False
    lines.append("\n## Methods\n")
    lines.append("```json\n" + json.dumps(report["methods"], indent=1) + "\n```")
    return "\n".join(lines) + "\n"


def _escape(text):
    return text.replace("|", "\\|") or "(nothing)"


def _summary_table(report):
    width = max(16, *(len(row) + 2 for row in report["row_names"]))
    header = f"{'row':<{width}}{'sentences':>10}" + "".join(
        f"{title:>{max(len(title) + 2, 9)}}" for title, _, _ in _COLUMNS
    )
    lines = [header]
    for row in report["row_names"]:
        if row not in report["rows"]:
            lines.append(f"{row:<{width}}{'missing':>10}")
            continue
        summary = report["rows"][row]
        cells = "".join(
            f"{_format(summary.get(key), digits):>{max(len(title) + 2, 9)}}"
            for title, key, digits in _COLUMNS
        )
        lines.append(f"{row:<{width}}{summary['num_sentences']:>10}{cells}")
    ratio = report["wer_ratio_model_to_ceiling"]
    lines.append(f"model WER / vocoder ceiling WER: {_format(ratio, 2)}")
    return "\n".join(lines)


def _plot(report, path):
    from matplotlib.figure import Figure

    rows = [row for row in report["row_names"] if row in report["rows"]]
    figure = Figure(figsize=(15, 4.5), layout="constrained")
    wer_axes, mcd_axes, dnsmos_axes = figure.subplots(1, 3)
    wer = _per_sentence(report, rows, "wer")
    # No mean marker: the table's WER is corpus level, not a mean of these.
    wer_axes.boxplot(wer, tick_labels=rows)
    _scatter(wer_axes, wer)
    wer_axes.set_title("Per-sentence WER (PocketSphinx)")
    wer_axes.set_ylabel("WER")
    compared = [row for row in rows if row != "original"]
    _mean_boxplot(
        mcd_axes,
        compared,
        _per_sentence(report, compared, "mcd"),
        "no recordings to compare with",
    )
    mcd_axes.set_title("Per-sentence MCD vs the recording (triangle: mean)", fontsize=10)
    mcd_axes.set_ylabel("MCD (dB)")
    _mean_boxplot(dnsmos_axes, rows, _per_sentence(report, rows, "dnsmos_ovrl"), "no DNSMOS scores")
    dnsmos_axes.set_title("Per-sentence DNSMOS OVRL (triangle: mean)", fontsize=10)
    dnsmos_axes.set_ylabel("DNSMOS P.835 OVRL (1 to 5)")
    for axes in (wer_axes, mcd_axes, dnsmos_axes):
        axes.tick_params(axis="x", labelrotation=15)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    with tf.io.gfile.GFile(path, "wb") as f:
        f.write(buffer.getvalue())


def _per_sentence(report, rows, key):
    """[[the sentences' `key` values of the row] for each of `rows`], missing values left out."""
    return [
        [
            s["rows"][row][key]
            for s in report["sentences"]
            if s["rows"].get(row, {}).get(key) is not None
        ]
        for row in rows
    ]


def _mean_boxplot(axes, rows, groups, empty_text):
    if any(groups):
        axes.boxplot(groups, tick_labels=rows, showmeans=True)
        _scatter(axes, groups)
    else:
        axes.text(0.5, 0.5, empty_text, ha="center", va="center")


def _scatter(axes, groups):
    # The points themselves: with few sentences a box hides how many there are.
    jitter = np.random.default_rng(0)
    for position, values in enumerate(groups, start=1):
        axes.scatter(position + jitter.uniform(-0.12, 0.12, len(values)), values, s=8, alpha=0.5)


def _write_text(path, text):
    with tf.io.gfile.GFile(path, "w") as f:
        f.write(text)
