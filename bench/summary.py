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


def load_results(results_dir=RESULTS):
    """{benchmark name: its JSON} for every results file present."""
    results = {}
    for name in ("data_bench", "train_bench", "vocoder_bench", "synthesis_bench", "quality_bench"):
        path = os.path.join(results_dir, f"{name}.json")
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                results[name] = json.load(f)
    return results


def render(results):
    """The Markdown of the summary: a quality table, then a speed table."""
    return "\n".join(
        [
            START,
            "<!-- Written by `python -m bench.summary` from bench/results/*.json. -->",
            "",
            *_quality(results.get("quality_bench")),
            "",
            *_speed(results),
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
            f"({train['matmul']['gflops_per_s']} GFLOP/s) |"
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
