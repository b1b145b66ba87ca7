"""The README's results tables, written from the benchmarks' JSON in bench/results/.

    .venv/bin/python -m bench.summary            # rewrite the tables in README.md
    .venv/bin/python -m bench.summary --check    # exit 1 if README.md is out of date

The tables sit between `<!-- bench:summary:start -->` and
`<!-- bench:summary:end -->` in README.md; everything else is left alone. A
benchmark whose JSON is missing is named as missing, never filled in.
"""

import argparse
import json
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(REPO, "bench", "results")
README = os.path.join(REPO, "README.md")
START, END = "<!-- bench:summary:start -->", "<!-- bench:summary:end -->"
REGIMES = ("joint", "separate", "self_supervised", "seed_baseline")
BENCHMARKS = (
    "data_bench",
    "train_bench",
    "vocoder_bench",
    "synthesis_bench",
    "quality_bench",
    "vocoder_architecture_bench",
    "vocoder_quality_bench",
    "vocoder_finetune_bench",
    "frontend_bench",
)
# The neural vocoder's held-out voices, and its rows in each voice's table.
VOCODER_VOICES = ("slt", "rms")
VOCODER_ROWS = (
    ("recordings", "the recordings"),
    ("griffin_lim", "Griffin-Lim copy-synthesis (true mel)"),
    ("vocoder", "neural vocoder copy-synthesis (true mel)"),
    ("tts_griffin_lim", "text to speech with Griffin-Lim"),
    ("tts_vocoder", "text to speech with the neural vocoder"),
)
# Which of the quality bench's `targets` a row answers to, when the row does not carry it.
VOCODER_TARGET_ROWS = {"vocoder": "copy_synthesis", "tts_vocoder": "text_to_speech"}


def load_results(results_dir=RESULTS):
    """{benchmark name: its JSON} for every results file present."""
    results = {}
    for name in BENCHMARKS:
        path = os.path.join(results_dir, f"{name}.json")
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                results[name] = json.load(f)
    return results


def render(results):
    """The Markdown of the summary: quality, speed, then the neural vocoder's tables."""
    return "\n".join(
        [
            START,
            "<!-- Written by `python -m bench.summary` from bench/results/*.json. -->",
            "",
            *_quality(results.get("quality_bench")),
            "",
            *_speed(results),
            "",
            *_neural_vocoder(
                results.get("vocoder_quality_bench"), results.get("vocoder_architecture_bench")
            ),
            "",
            *_vocoder_finetune(results.get("vocoder_finetune_bench")),
            "",
            *_frontend(results.get("frontend_bench")),
            END,
        ]
    )


def update_readme(path=README, results_dir=RESULTS):
    """Rewrites the summary in `path`; returns whether it changed."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if START not in text or END not in text:
        raise ValueError(f"{path} has no {START} ... {END} block to fill in.")
    before, rest = text.split(START, 1)
    _, after = rest.split(END, 1)
    updated = before + render(load_results(results_dir)) + after
    if updated != text:
        with open(path, "w", encoding="utf-8") as f:
            f.write(updated)
    return updated != text


def _number(value, digits=3, suffix=""):
    return "–" if value is None else f"{value:.{digits}f}{suffix}"


def _quality(quality):
    if not quality:
        return ["Quality: `bench/results/quality_bench.json` is missing (`python -m bench`)."]
    references = quality.get("references") or {}
    runs = quality["runs"]
    lines = [
        f"**Quality** ({quality['validation_clips']} held-out sentences; models trained on "
        f"{quality['train_clips']} clips for {quality['minutes_per_model']:g} machine-minutes "
        f"each, {quality['cores']} cores; speech from text alone, transcribed by PocketSphinx):",
        "",
        "| speech | training | WER | WER / ceiling | CER | MCD dB | held-out mel L1 |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    ceiling_wer = references.get("vocoder_ceiling", {}).get("wer")
    for row, title in (
        ("original", "the recordings"),
        ("vocoder_ceiling", "true mel through our Griffin-Lim (ceiling)"),
    ):
        if row in references:
            values = references[row]
            ratio = values["wer"] / ceiling_wer if ceiling_wer else None
            lines.append(
                f"| {title} | – | {_number(values['wer'])} | {_number(ratio, 2)} | "
                f"{_number(values['cer'])} | {_number(values.get('mcd'), 2)} | – |"
            )
    for name in REGIMES:
        run = runs.get(name)
        if run is None:
            lines.append(f"| {name} | not run | | | | | |")
            continue
        point = run["evaluation"][-1] if run.get("evaluation") else {}
        final = run.get("final") or {}
        minutes = run.get("machine_minutes", final.get("machine_minutes"))
        training = f"{_number(minutes, 1)} min, {run['steps']} steps"
        if not run.get("complete"):
            training += " (unfinished)"
        title = "the seed's dense autoencoder" if name == "seed_baseline" else f"mmae `{name}`"
        lines.append(
            f"| {title} | {training} | {_number(point.get('wer'))} | "
            f"{_number(point.get('wer_ratio_to_ceiling'), 2)} | {_number(point.get('cer'))} | "
            f"{_number(point.get('mcd'), 2)} | {_number(final.get('mel_text'))} |"
        )
    lines += ["", *_settings_note(runs)]
    lines += [
        "Goal: WER at most 1.2x the ceiling's after 30 minutes. The curves against training "
        "time are in [bench/results/quality_bench.png](bench/results/quality_bench.png).",
    ]
    return lines


def _settings_note(runs):
    """A line naming the runs trained with other dropout or peak rate than `joint`."""
    reference = runs.get("joint")
    if not reference or "model" not in reference:
        return []

    def settings(run):
        return run["model"]["dropout"], run["train"]["learning_rate"]

    others = [
        f"`{name}` (dropout {settings(run)[0]:g}, peak learning rate {settings(run)[1]:g})"
        for name, run in runs.items()
        if "model" in run and settings(run) != settings(reference)
    ]
    if not others:
        return []
    dropout, rate = settings(reference)
    return [
        f"Trained with other settings than `joint` (dropout {dropout:g}, peak learning rate "
        f"{rate:g}), from an earlier preset: {', '.join(others)}.",
        "",
    ]


def _speed(results):
    lines = ["**Speed** (this 2-core CPU; ratios measured within one run):", ""]
    lines += ["| what | measured | compared with |", "|---|---|---|"]
    data = results.get("data_bench")
    if data:
        mel = data["mel"]["methods"]
        jobs2 = data["prepare"]["jobs2"]
        lines.append(
            f"| `mmae prepare`, {data['prepare']['num_clips']} clips | "
            f"{jobs2['clips_per_s']:.0f} clips/s ({jobs2['audio_s_per_s']:.0f}x real time) | – |"
        )
        lines.append(
            f"| log-mel, `tf.function` batches of 16 | {mel['tf_function_batched']['ms_per_clip']}"
            f" ms/clip | librosa {mel['librosa']['ms_per_clip']} ms/clip "
            f"({mel['tf_function_batched']['speedup_vs_librosa']}x faster) |"
        )
    train = results.get("train_bench")
    if train:
        bucket = train["buckets"][-1]
        lines.append(
            f"| training step, batch {'x'.join(map(str, bucket['batch_shape']))} | "
            f"{bucket['graph']['seconds_per_step']:.2f} s graph, "
            f"{bucket['xla']['seconds_per_step']:.2f} s XLA | "
            f"{bucket['graph']['utilization_percent']}% of measured matmul peak "
            f"({bucket.get('matmul', train['matmul'])['gflops_per_s']} GFLOP/s, timed beside it) |"
        )
    vocoder = results.get("vocoder_bench")
    if vocoder:
        ours, librosa = vocoder["methods"]["tf_graph_batch1"], vocoder["methods"]["librosa"]
        lines.append(
            f"| Griffin-Lim ({vocoder['num_iterations']} iterations), per utterance | "
            f"{ours['seconds_per_utterance'] * 1000:.1f} ms (spectral convergence "
            f"{ours['spectral_convergence_mean']}) | librosa `mel_to_audio` "
            f"{librosa['seconds_per_utterance'] * 1000:.1f} ms "
            f"({librosa['spectral_convergence_mean']}): {ours['speedup_vs_librosa']}x faster |"
        )
        recognition = vocoder.get("speech_recognition", {})
        if "tf_graph_batch1" in recognition:
            lines.append(
                f"| Griffin-Lim, PocketSphinx WER on {vocoder['clips']['num_clips']} clips | "
                f"{recognition['tf_graph_batch1']['wer']} (recordings "
                f"{recognition['original']['wer']}) | librosa {recognition['librosa']['wer']} |"
            )
    synthesis = results.get("synthesis_bench")
    if synthesis:
        rows = synthesis["rows"]
        for path, title, target in (
            ("acoustic", "text to mel: frontend and acoustic model", "200x (acoustic model)"),
            ("acoustic_from_ids", "acoustic model alone, from token ids", "200x"),
            ("frontend", "SavedModel text frontend alone", None),
            ("end_to_end", "text to waveform", "10x"),
        ):
            cells = []
            for api in ("python", "saved_model"):
                for batch in (1, 16):
                    row = rows.get(f"{api}/{path}/batch{batch}")
                    if row:
                        cells.append(f"{row['x_real_time']:.0f}x ({api}, batch {batch})")
            if cells:
                goal = f"target {target}" if target else "–"
                lines.append(f"| {title}, x real time | {', '.join(cells)} | {goal} |")
    missing = [
        name
        for name in ("data_bench", "train_bench", "vocoder_bench", "synthesis_bench")
        if name not in results
    ]
    if missing:
        lines += ["", "Missing results: " + ", ".join(missing) + "."]
    return lines


def _neural_vocoder(quality, architecture):
    """The neural vocoder's part: a quality table per voice, then its speed."""
    if quality:
        blocks = [[_vocoder_heading(quality)]]
        voices = quality.get("voices") or {}
        for voice in _vocoder_voices(quality):
            blocks.append(_vocoder_voice_table(voice, voices.get(voice), quality))
        blocks.append(_vocoder_notes(quality))
    else:
        blocks = [
            [
                "**Neural vocoder**: `bench/results/vocoder_quality_bench.json` is missing "
                "(`python -m bench --only vocoder_quality`)."
            ]
        ]
    speed = (quality or {}).get("speed") or {}
    speed_rows = _vocoder_speed_rows(quality) if quality else []
    if architecture:
        speed_rows.append(_architecture_row(architecture))
    if speed_rows:
        source = (
            f"{speed['seconds_per_item']:.1f} s log-mels of `{speed['voice']}`, median of "
            f"{speed['repeats']} passes; "
            if {"methods", "seconds_per_item", "voice", "repeats"} <= set(speed)
            else ""
        )
        blocks.append(
            [
                f"Speed of the neural vocoder ({source}this 2-core CPU; ratios measured "
                "within one run):",
                "",
                "| what | measured | compared with |",
                "|---|---|---|",
                *speed_rows,
            ]
        )
    if quality and "methods" not in speed:
        reason = f"skipped ({_cell(speed['skipped'])})" if "skipped" in speed else "not measured"
        blocks.append([f"Neural vocoder speed: {reason}."])
    if not architecture:
        blocks.append(["Missing results: vocoder_architecture_bench."])
    return [line for block in blocks for line in ["", *block]][1:]


# The fine-tuning study's vocoders, as its rows name them, and how the table calls them.
FINETUNE_VOCODERS = (
    ("base", "the base vocoder (the bundled one's run)"),
    ("true_mels", "control: fine-tuned as long on the true log-mels"),
    ("predicted", "fine-tuned on the acoustic model's log-mels"),
)


def _vocoder_finetune(finetune):
    """Text to speech with and without fine-tuning, and what it costs on true log-mels."""
    if not finetune:
        return [
            "**Vocoder fine-tuning**: `bench/results/vocoder_finetune_bench.json` is missing "
            "(`python -m bench --only vocoder_finetune`)."
        ]
    voices = finetune["voices"]
    slt = voices["slt"]["rows"]
    runs = finetune["fine_tuning"]
    hours = [r["training_cpu_hours"] for r in runs.values() if r.get("training_cpu_hours")]
    cost = f", {max(hours):.2f} CPU-hours each" if hours else ""
    smoke = "; a `--quick` smoke run, not the benchmark's numbers" if finetune.get("quick") else ""
    lines = [
        f"**Vocoder fine-tuning** (`bench.vocoder_finetune_bench`: "
        f"{finetune['settings']['steps']} adversarial steps{cost}, from `{finetune['vocoder_run']}` "
        f"on the slt corpus, for the acoustic run `{finetune['acoustic_run']}`; "
        f"{len(voices['slt']['clip_ids'])} held-out slt clips{smoke}):",
        "",
        "| slt text to speech through | WER | DNSMOS OVRL | DNSMOS SIG |",
        "|---|---:|---:|---:|",
        f"| Griffin-Lim | {_number(slt['tts_griffin_lim']['wer'])} | "
        f"{_number(slt['tts_griffin_lim']['dnsmos_ovrl'], 2)} | "
        f"{_number(slt['tts_griffin_lim']['dnsmos_sig'], 2)} |",
    ]
    for name, label in FINETUNE_VOCODERS:
        row = slt[f"tts_{name}"]
        lines.append(
            f"| {label} | {_number(row['wer'])} | {_number(row['dnsmos_ovrl'], 2)} | "
            f"{_number(row['dnsmos_sig'], 2)} |"
        )
    for name, label in (
        ("bundled_tts_base", "the bundled acoustic model through the base vocoder"),
        ("bundled_tts_predicted", "the bundled acoustic model through the fine-tuned vocoder"),
    ):
        if name in slt:
            row = slt[name]
            lines.append(
                f"| {label} | {_number(row['wer'])} | {_number(row['dnsmos_ovrl'], 2)} | "
                f"{_number(row['dnsmos_sig'], 2)} |"
            )
    recordings = slt["recordings"]
    lines.append(
        f"| (the recordings) | {_number(recordings['wer'])} | "
        f"{_number(recordings['dnsmos_ovrl'], 2)} | {_number(recordings['dnsmos_sig'], 2)} |"
    )
    names = list(voices)
    lines += [
        "",
        "| copy-synthesis (true log-mels) through | "
        + " | ".join(f"{voice} WER | {voice} DNSMOS OVRL" for voice in names)
        + " |",
        "|---|" + "---:|---:|" * len(names),
    ]
    for name, label in (*FINETUNE_VOCODERS, ("recordings", "(the recordings)")):
        key = name if name == "recordings" else f"copy_{name}"
        cells = []
        for voice in names:
            row = voices[voice]["rows"][key]
            cells += [_number(row["wer"]), _number(row["dnsmos_ovrl"], 2)]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Plot: [bench/results/vocoder_finetune_bench.png](bench/results/vocoder_finetune_bench.png).",
    ]
    return lines


def _frontend(frontend):
    """The G2P on held-out words, and the frontend's ids against espeak-ng's on new text."""
    if not frontend:
        return [
            "**Text frontend**: `bench/results/frontend_bench.json` is missing "
            "(`python -m bench --only frontend`)."
        ]
    held = frontend["held_out_words"]
    smoke = "; a `--quick` smoke run, not the benchmark's numbers" if frontend.get("quick") else ""
    reference = frontend["comparison"]["transformer_g2p_cmudict_per_wer"]
    lines = [
        f"**Text frontend** (`bench.frontend_bench`, against espeak-ng; {held['words']:,} "
        f"held-out words{smoke}):",
        "",
        "| words outside the lexicon read by | phoneme error rate | without stress marks | "
        "word error rate |",
        "|---|---:|---:|---:|",
    ]
    for key, label in (
        ("g2p", "the G2P model"),
        ("spelled_with_letter_names", "letter names (before the G2P)"),
    ):
        row = held[key]
        lines.append(
            f"| {label} | {_number(row['phoneme_error_rate'])} | "
            f"{_number(row['phoneme_error_rate_without_stress'])} | "
            f"{_number(row['word_error_rate'])} |"
        )
    lines += [
        f"| (a Transformer G2P on CMUdict, Yolchuyeva et al. 2019) | {reference[0]:.3f} | – | "
        f"{reference[1]:.3f} |",
        "",
        "| sentences of | sentences | ids equal to espeak-ng's, with the G2P | "
        "spelling unknown words | words outside the lexicon | spelled (no vowel) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for source, row in frontend["sentences"].items():
        lines.append(
            f"| {source} | {row['sentences']} | {_number(row['equal_ids_g2p'])} | "
            f"{_number(row['equal_ids_spelled'])} | {row['words_outside_lexicon']} of "
            f"{row['words']:,} | {row['spelled_words']} |"
        )
    speed = frontend.get("speed") or {}
    names = {
        "graph_frontend": "the frontend, traced (one batch)",
        "saved_model": "the frontend inside a SavedModel (one batch)",
        "prepare_frontend_per_shard": "the frontend as `mmae prepare` calls it (64 a call)",
        "phoneme_tokenizer_espeak": "espeak-ng, `PhonemeTokenizer` (one batch)",
        "phoneme_tokenizer_espeak_per_clip": "espeak-ng one clip a call (prepare, version 1)",
    }
    if speed:
        lines += [
            "",
            f"| {speed['sentences']:,} sentences, phonemes by | seconds | ids per second |",
            "|---|---:|---:|",
        ]
        lines += [
            f"| {label} | {speed[key]['seconds']} | {speed[key]['ids_per_second']:,} |"
            for key, label in names.items()
            if key in speed
        ]
    speech = frontend.get("speech")
    if speech:
        verdict = "met" if speech["pass"] else "not met"
        lines += [
            "",
            f"The bundled model speaking {speech['sentences']} {speech['source']}, transcribed "
            f"by PocketSphinx: WER {speech['synthesizer']['wer']:.3f} through the Python "
            f"`Synthesizer`, {speech['saved_model']['wer']:.3f} through its SavedModel "
            f"({speech['saved_model_vs_synthesizer_wer']:.3f}x; target at most "
            f"{speech['target_max']}x: {verdict}); {speech['same_length_waveforms']} of "
            f"{speech['sentences']} waveforms have the same length, the largest sample "
            f"difference is {speech['max_abs_sample_difference']}.",
        ]
    prepare = frontend.get("prepare")
    if prepare:
        best = prepare["best_seconds"]
        lines += [
            "",
            f"`mmae prepare` of {prepare['clips']} clips of `{prepare['corpus']}` (best of two): "
            f"{best['frontend']} s with the frontend, {best['espeak_per_clip']} s with espeak-ng "
            f"one clip at a time as version 1 did ({prepare['frontend_vs_espeak_per_clip']:.2f}x).",
        ]
    lines += [
        "",
        "Plot: [bench/results/frontend_bench.png](bench/results/frontend_bench.png).",
    ]
    return lines


def _vocoder_heading(quality):
    vocoder = quality.get("vocoder") or {}
    hours = vocoder.get("training_cpu_hours")
    if hours is None:
        trained = "training CPU-hours not recorded"
    else:
        trained = f"{hours:.2f} training CPU-hours"
        if vocoder.get("training_cpu_hours_extrapolated"):
            trained += " (extrapolated past the last logged step)"
    name = vocoder.get("name", "?")
    run = quality.get("run")
    step = vocoder.get("step")
    if "/" in name:  # another run or a pack
        where = f"`{name}`" + (f" at step {step}" if step is not None else "")
    else:
        where = f"`{run}` at {name}" if run and step is not None else f"`{name}`"
    clips = (quality.get("settings") or {}).get("clips_per_voice")
    held_out = f"the first {clips} held-out clips" if clips else "held-out clips"
    smoke = "; a `--quick` smoke run, not the benchmark's numbers" if quality.get("quick") else ""
    return (
        f"**Neural vocoder** ({where}, {trained}; {held_out} of each voice, which neither "
        f"it nor the bundled acoustic model trained on; transcribed by PocketSphinx, "
        f"naturalness by DNSMOS{smoke}):"
    )


def _vocoder_voices(quality):
    """The expected voices first (named as missing when absent), then any others."""
    voices = quality.get("voices") or {}
    return [*VOCODER_VOICES, *(voice for voice in voices if voice not in VOCODER_VOICES)]


def _vocoder_voice_table(name, voice, quality):
    if not voice:
        return [f"Voice `{name}`: not in the results."]
    count = len(voice.get("clip_ids") or [])
    lines = [
        f"Voice `{name}` ({count} clips, {_number(voice.get('audio_s'), 1)} s of speech):",
        "",
        "| speech | WER | DNSMOS OVRL | DNSMOS SIG | OVRL / recordings | WER / recordings "
        "| target |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    rows = voice.get("rows") or {}
    for key, title in VOCODER_ROWS:
        row = rows.get(key)
        if row is None:
            continue
        lines.append(
            f"| {title} | {_number(row.get('wer'))} | {_number(row.get('dnsmos_ovrl'), 2)} | "
            f"{_number(row.get('dnsmos_sig'), 2)} | {_number(row.get('dnsmos_ovrl_ratio'), 2)} | "
            f"{_number(row.get('wer_ratio'), 2)} | {_verdict(key, row, quality)} |"
        )
    return lines


def _verdict(key, row, quality):
    """'met' or 'not met', with the target, of a row the quality targets apply to."""
    target = row.get("target")
    if target is None:
        if key not in VOCODER_TARGET_ROWS:
            return "–"
        target = (quality.get("targets") or {}).get(VOCODER_TARGET_ROWS[key])
        if not target:
            return "–"
    ovrl = f"OVRL >= {target['dnsmos_ovrl_ratio_min']:g}x"
    wer = f"WER <= {target['wer_ratio_max']:g}x"
    if "pass" not in target:
        return f"not judged ({ovrl}, {wer})"
    if target["pass"]:
        return f"met ({ovrl}, {wer})"
    parts = [
        f"{text}: {'met' if target.get(flag) else 'missed'}"
        for text, flag in ((ovrl, "dnsmos_ovrl_pass"), (wer, "wer_pass"))
    ]
    return f"not met ({'; '.join(parts)})"


def _vocoder_notes(quality):
    targets = quality.get("targets") or {}
    copy, tts = targets.get("copy_synthesis"), targets.get("text_to_speech")
    lines = []
    if copy and tts:
        lines.append(
            f"Targets, as ratios to the recordings' scores on the same clips: copy-synthesis "
            f"DNSMOS OVRL at least {copy['dnsmos_ovrl_ratio_min']:g}x and WER at most "
            f"{copy['wer_ratio_max']:g}x, text to speech {tts['dnsmos_ovrl_ratio_min']:g}x and "
            f"{tts['wer_ratio_max']:g}x (WER / recordings is – where the recordings' WER is 0: "
            "the target then asks for WER 0)."
        )
    curves = {
        name: voice.get("curve") or [] for name, voice in (quality.get("voices") or {}).items()
    }
    points = [point for curve in curves.values() for point in curve]
    if points:
        hours = [p["training_cpu_hours"] for p in points if p.get("training_cpu_hours") is not None]
        span = f" ({min(hours):.2f} to {max(hours):.2f} training CPU-hours)" if hours else ""
        verdicts = []
        for name, curve in curves.items():
            met = next((p for p in curve if p.get("meets_copy_synthesis_targets")), None)
            verdicts.append(
                f"`{name}` first met at {met['checkpoint']} "
                f"({_number(met.get('training_cpu_hours'), 2)} CPU-hours)"
                if met
                else f"`{name}` not met at any"
            )
        checkpoints = max(len(curve) for curve in curves.values())
        lines.append(
            f"Copy-synthesis targets on the curve's {checkpoints} checkpoints{span}: "
            f"{'; '.join(verdicts)}."
        )
    lines.append(
        "The curves against training CPU-hours are in "
        "[bench/results/vocoder_quality_bench.png](bench/results/vocoder_quality_bench.png)."
    )
    return [" ".join(lines)]


def _vocoder_speed_rows(quality):
    speed = quality.get("speed") or {}
    methods = speed.get("methods")
    if not methods:
        return []
    verdicts = quality.get("verdicts") or {}
    targets = quality.get("targets") or {}
    rows = []
    for batch in targets.get("vocoder_faster_than_griffin_lim_at_batch", (1, 16)):
        neural, griffin_lim = (
            methods.get(f"vocoder/batch{batch}"),
            methods.get(f"griffin_lim/batch{batch}"),
        )
        if not neural or not griffin_lim:
            continue
        speedup = neural.get("speedup_vs_griffin_lim")
        passed = verdicts.get(f"speed/vocoder_vs_griffin_lim_batch{batch}", {}).get(
            "pass", speedup is not None and speedup > 1
        )
        rows.append(
            f"| neural vocoder alone, batch {batch} | {neural['x_real_time']:.0f}x real time | "
            f"Griffin-Lim {griffin_lim['x_real_time']:.0f}x: {_number(speedup, 2)}x faster "
            f"(target faster: {'met' if passed else 'not met'}) |"
        )
    target = targets.get("end_to_end_x_real_time_min")
    goal = f"target {target:g}x" if target is not None else "–"
    end_to_end = methods.get("saved_model_end_to_end/batch1")
    saved_model = speed.get("saved_model") or {}
    title = "text to waveform, SavedModel with the neural vocoder, batch 1"
    if end_to_end:
        passed = verdicts.get("speed/saved_model_end_to_end_batch1", {}).get(
            "pass", target is not None and end_to_end["x_real_time"] >= target
        )
        verdict = f": {'met' if passed else 'not met'}" if target is not None else ""
        rows.append(f"| {title} | {end_to_end['x_real_time']:.0f}x real time | {goal}{verdict} |")
    else:
        failure = saved_model.get("error", "not measured")
        rows.append(f"| {title} | failed: {_cell(failure)} | {goal} |")
    tflite = speed.get("tflite_vocoder") or {}
    method = methods.get("tflite_vocoder/batch1")
    if "error" in tflite or not method:
        failure = tflite.get("error", "not measured")
        rows.append(f"| TFLite vocoder, batch 1 | failed: {_cell(failure)} | – |")
    else:
        size = f", {tflite['bytes'] / 1e6:.1f} MB" if tflite.get("bytes") else ""
        difference = tflite.get("relative_l2_difference_vs_tf")
        compared = [f"Griffin-Lim: {_number(method.get('speedup_vs_griffin_lim'), 2)}x faster"]
        if difference is not None:
            compared.append(f"{difference:.1e} relative L2 from TensorFlow's output")
        rows.append(
            f"| TFLite vocoder ({tflite.get('ops', '?')} ops), batch 1 | "
            f"{method['x_real_time']:.0f}x real time{size} | {'; '.join(compared)} |"
        )
    return rows


def _architecture_row(architecture):
    """Vocos against HiFi-GAN V3: inference and training-step time, parameters."""
    entries = architecture.get("architectures") or {}
    vocos, hifigan = entries.get("vocos"), entries.get("hifigan_v3")
    title = "Vocos against HiFi-GAN V3 (architecture benchmark, random weights)"
    if architecture.get("quick"):
        title += ", a `--quick` smoke run"
    if not vocos or not hifigan:
        return f"| {title} | not measured | – |"
    batches = (architecture.get("inference") or {}).get("batch_sizes", [])
    speeds = [
        f"{vocos[f'infer_batch{b}']['x_real_time']:.0f}x (batch {b})"
        for b in batches
        if f"infer_batch{b}" in vocos
    ]
    measured = [f"Vocos: {_millions(vocos.get('parameters'))} M parameters"]
    if speeds:
        measured.append(f"{' and '.join(speeds)} real time")
    if "train_step" in vocos:
        measured.append(f"{vocos['train_step']['median_s']:.2f} s per training step")
    compared = [
        f"HiFi-GAN V3: {_millions(hifigan.get('parameters'))} M parameters "
        f"({_number(hifigan.get('parameters_vs_vocos'), 2)}x)"
    ]
    ratios = hifigan.get("time_vs_vocos") or {}
    times = [
        f"{ratios[f'infer_batch{b}']:.2f}x (batch {b})"
        for b in batches
        if f"infer_batch{b}" in ratios
    ]
    if times:
        compared.append(f"{' and '.join(times)} Vocos's inference time")
    if "train_step" in ratios:
        compared.append(f"{ratios['train_step']:.2f}x its training step")
    return f"| {title} | {', '.join(measured)} | {', '.join(compared)} |"


def _millions(count):
    return _number(None if count is None else count / 1e6, 2)


def _cell(text, limit=160):
    """`text` as one table cell: one line, no column breaks, at most `limit` characters."""
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only say whether it is current")
    parser.add_argument("--readme", default=README)
    args = parser.parse_args(argv)
    if args.check:
        with open(args.readme, encoding="utf-8") as f:
            current = f.read()
        expected = render(load_results())
        if expected not in current:
            print(f"{args.readme} is out of date: run python -m bench.summary", file=sys.stderr)
            return 1
        return 0
    changed = update_readme(args.readme)
    print(f"{args.readme}: {'updated' if changed else 'already current'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
