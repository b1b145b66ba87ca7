"""Time to intelligible speech: word error rate against training budget, on two voices.

    .venv/bin/python -m bench.convergence_bench                  # both voices, every variant
    .venv/bin/python -m bench.convergence_bench --voices rms --variants width192_preset --minutes 10

Trains the bundled recipe (the `flite16k` preset, `joint` regime) from
scratch on each voice's prepared 1,600-clip flite corpus (`slt`, the bundled
model's voice, and `rms`, a male speaker the recipe was not tuned on), once
per variant and budget, with `bench.quality_bench` (same budget in
CPU-seconds of the training process, same evaluation: PocketSphinx on the
held-out sentences spoken from text alone, against the recordings and the
true mel through the same Griffin-Lim, the "vocoder ceiling").

A variant is a list of config overrides (`VARIANTS`). Each trains once, for
the largest budget, and keeps a snapshot at every budget, so
a later, larger budget resumes the same run and every earlier point stays.
(A learning rate that decays to the budget was measured on 2026-11-22 and
lost at every point: bench/README.md, quality_bench.)

Targets (issue 17), on both voices: WER at most 1.2x the vocoder ceiling's
after 10 machine-minutes, and at most 1.05x after 30; and at least 90% of
a run's wall time in training steps (the trainer's "timing" records). The runs live in
bench/work/convergence/<voice>/<variant>-<minutes> and resume where they
stopped; rerunning the command continues the study. Writes
bench/results/convergence_bench.json and .png.
"""

import json
import os
import shutil

from bench import quality_bench
from bench.harness import REPO, Benchmark, logger, pyplot, save_figure

WORK = os.path.join(REPO, "bench", "work", "convergence")
VOICES = {
    "slt": os.path.join(REPO, "prepared", "slt1600"),
    "rms": os.path.join(REPO, "prepared", "rms1600"),
}
# The flite16k preset's decoder and joint step until the evening of
# 2026-11-30, when it took reduction 2 and autoencoding a quarter of each batch.
FULL_DECODER = ["model.decoder_reduction=1", "loss.audio_fraction=1.0"]
# The preset's width until 2026-12-01, when it took width 128
# (convergence_pair_width128.json): every variant measured before then was
# this wide.
WIDTH192 = ["model.hidden_dim=192"]
# The flite16k preset before this study changed it (2026-11-30).
OLD_PRESET = ["train.batch_size=16", "train.learning_rate=2e-3", *FULL_DECODER, *WIDTH192]
# The preset of 2026-11-30 before that (batch 8 at 1.4e-3): the "preset"
# rows of the results written before convergence_same_run_30.json.
BATCH8_PRESET = [*FULL_DECODER, *WIDTH192]
# name -> overrides of the flite16k preset. Each variant spells out the
# preset of its time, so its name keeps meaning what was measured.
VARIANTS = {
    # The preset as it is.
    "preset": [],
    # The preset as it was before this study.
    "baseline": OLD_PRESET,
    "batch8_preset": BATCH8_PRESET,
    # Half the clips a step: twice the updates for the same computation.
    "batch8": [*OLD_PRESET, "train.batch_size=8"],
    "batch4": [*OLD_PRESET, "train.batch_size=4"],
    # Batch 8 with the peak rate scaled by the square root of the batch
    # ratio: what helped both voices (the preset from 2026-11-30).
    "batch8_lr1.4e-3": [*OLD_PRESET, "train.batch_size=8", "train.learning_rate=1.4e-3"],
    # Twice the peak learning rate (the preset doubled it once already).
    "lr4e-3": [*OLD_PRESET, "train.learning_rate=4e-3"],
    # The joint step autoencodes half of each batch's clips (the text path
    # takes them all): the audio path is most of a step's frame-rate work.
    "audio_half": [*OLD_PRESET, "loss.audio_fraction=0.5"],
    "batch8_audio_half": [*OLD_PRESET, "train.batch_size=8", "loss.audio_fraction=0.5"],
    # The batch-8 preset, narrower: about half the arithmetic a step
    # (convolutions scale with the width squared).
    "width128": [*FULL_DECODER, "model.hidden_dim=128"],
    # The batch-8 preset autoencoding a half or a quarter of each batch: the
    # audio path (its encoder and a second decoder pass) is about 60% of a
    # step's frame-rate arithmetic, and it converges far sooner than the
    # text path.
    "audio_half_preset": [*BATCH8_PRESET, "loss.audio_fraction=0.5"],
    "audio_quarter": [*BATCH8_PRESET, "loss.audio_fraction=0.25"],
    # The batch-8 preset with a quarter of its warm-up: the first 200 steps
    # are a third of what a 10-minute run makes.
    "warmup50": [*BATCH8_PRESET, "train.warmup_steps=50"],
    # The decoder at half the frame rate (two frames a position): half its
    # arithmetic, which is about 3/4 of a joint step's.
    "reduction2": [*BATCH8_PRESET, "model.decoder_reduction=2"],
    # Both: the preset from convergence_same_run_30.json (2026-11-30) to
    # convergence_pair_width128.json (2026-12-01).
    "reduction2_audio_quarter": [
        "model.decoder_reduction=2",
        "loss.audio_fraction=0.25",
        *WIDTH192,
    ],
    # The same, by the name of what changed after it: the preset before width 128.
    "width192_preset": WIDTH192,
    # The preset at a peak rate of 2e-3 (1.4e-3 is 2e-3 scaled down to batch
    # 8): the decay to the budget lost (convergence_screen_decay_to_budget),
    # so the model may learn faster nearer the peak.
    "lr2e-3": ["train.learning_rate=2e-3", *WIDTH192],
    # The preset of its time (192 wide) narrower: the convolutions and
    # attention scale with the width squared, so more steps in the same CPU
    # time. The preset since convergence_pair_width128.json (2026-12-01).
    "preset_width128": ["model.hidden_dim=128"],
    # The preset of width 128 at the peak rate of lr2e-3, and narrower again:
    # the 10-minute screen 7 on rms (2026-12-01); neither was taken
    # (convergence_screen_width96_lr2e-3.json).
    "preset_lr2e-3": ["train.learning_rate=2e-3", "model.hidden_dim=128"],
    "preset_width96": ["model.hidden_dim=96"],
    # The objective and the model, not the step rate (screen 8 on rms): a
    # decoder of 4 blocks instead of 6 (the decoder is most of a step's
    # frame-rate arithmetic), and the alignment hardened twice as early
    # (the binarization loss from step 150 over 150 steps, not 300 over 300:
    # a 10-minute run makes about 1,700 steps). The shallower decoder was
    # ahead, within the preset's spread; the early binarization lost
    # (convergence_screen_decoder4_binarize150.json).
    "preset_decoder4": ["model.decoder_layers=4"],
    "preset_binarize150": ["loss.binarization_start=150", "loss.binarization_ramp=150"],
}
# Variants that start from a trained model instead of from nothing (`mmae
# train --init-from`): a voice fine-tuned from another. The base is the
# preset trained 60 CPU-minutes on a third flite voice, awb, whose corpus
# shares no sentence with slt's and rms's (bench/README.md, "Starting from
# another voice"): as a run (every part) and as a pack (what `mmae.pretrained`
# keeps, as the bundled model does: the aligner and audio encoder start fresh).
# And the bundled model (slt) as a new user starts from it, measured on awb:
# its held-out sentences are not among the bundled model's training ones,
# which rms's and most of slt's are.
WARM_STARTS = {
    "preset_from_awb": os.path.join("runs", "awb1600_base"),
    "preset_from_awb_pack": os.path.join("runs", "awb1600_base_pack"),
    "preset_from_bundled": os.path.join("mmae", "assets", "flite_slt"),
}
VARIANTS.update({name: [] for name in WARM_STARTS})
TARGETS = {10.0: 1.2, 30.0: 1.05}
# The least share of a run's wall time spent in training steps.
STEP_SHARE_MIN = 0.9

log = logger("convergence_bench")


def add_arguments(parser):
    parser.add_argument(
        "--voices",
        nargs="*",
        type=_voice,
        default=list(VOICES.items()),
        help="NAME=PREPARED pairs (default: slt and rms, prepared/<name>1600)",
    )
    parser.add_argument("--variants", nargs="*", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument(
        "--minutes",
        type=float,
        nargs="*",
        default=sorted(TARGETS),
        help="budgets, in minutes of all this machine's cores",
    )
    parser.add_argument("--work", default=WORK)
    parser.add_argument("--report-only", action="store_true", help="just collect and plot")


def _voice(text):
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise ValueError(f"a voice is NAME=PREPARED, got {text!r}")
    return name, os.path.abspath(path)


def command_args(args):
    voices = [f"{name}={os.path.relpath(path, REPO)}" for name, path in args.voices]
    return ["--voices", *voices, "--variants", *args.variants, "--minutes"] + [
        str(m) for m in args.minutes
    ]


def marks_of(budgets):
    """Machine-minutes at which a run of the largest budget keeps a snapshot."""
    return sorted(set(budgets))


def quality_args(args, voice, data, variant, budget, marks):
    """The `bench.quality_bench` options of one run."""
    work = os.path.join(args.work, voice, variant)
    options = ["--data", data, "--minutes", str(budget), "--only", "joint"]
    options += ["--work", work, "--marks", *map(str, marks)]
    for override in VARIANTS[variant]:
        options += ["--set", override]
    if variant in WARM_STARTS:
        options += ["--init-from", os.path.join(REPO, WARM_STARTS[variant])]
    if args.report_only:
        options.append("--report-only")
    return quality_bench.BENCHMARK.parse_args(options)


def measure(args):
    from mmae.datasets.prepare import load_dataset_info

    voices = {}
    for voice, data in args.voices:
        references = None
        variants = {}
        for variant in args.variants:
            budget = max(args.minutes)
            run_args = quality_args(args, voice, data, variant, budget, marks_of(args.minutes))
            _share_references(args.work, voice, run_args.work)
            if not args.report_only:
                log(f"{voice} {variant}: {budget:g} min")
            results = quality_bench.measure(run_args)
            _share_references(args.work, voice, run_args.work)
            references = references or results["references"]
            run = results["runs"].get("joint")
            if run is None:  # not run on this voice (--report-only)
                continue
            variants[variant] = {
                "overrides": VARIANTS[variant],
                **({"init_from": WARM_STARTS[variant]} if variant in WARM_STARTS else {}),
                "steps": run["steps"],
                "machine_minutes": run["machine_minutes"],
                "points": run["evaluation"],
                "validation": run["curve"],
                "wall_time": run.get("wall_time"),
            }
        info = load_dataset_info(data)
        voices[voice] = {
            "data": os.path.relpath(data, REPO),
            "train_clips": info["splits"]["train"]["num_clips"],
            "validation_clips": info["splits"]["validation"]["num_clips"],
            "references": references,
            "variants": variants,
        }
    return {
        "budget": "minutes x 60 x cores CPU-seconds of the training process per run",
        "targets": {
            **{f"{minutes:g}_min_wer_ratio_max": ratio for minutes, ratio in TARGETS.items()},
            "step_share_min": STEP_SHARE_MIN,
        },
        "voices": voices,
        "verdicts": verdicts(voices),
    }


def _share_references(work, voice, run_work):
    """Copies a voice's reference rows (recordings, vocoder ceiling) to and from a run's work."""
    shared = os.path.join(work, voice, "references", "report.json")
    own = os.path.join(run_work, "references", "report.json")
    for source, target in ((shared, own), (own, shared)):
        if os.path.exists(source) and not os.path.exists(target):
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copy(source, target)


def point_at(points, minutes):
    """The point measured closest to `minutes` (within 10%), or None."""
    near = [p for p in points if abs(p["machine_minutes"] - minutes) <= 0.1 * minutes]
    return min(near, key=lambda p: abs(p["machine_minutes"] - minutes)) if near else None


def verdicts(voices):
    found = {}
    for voice, study in voices.items():
        for variant, results in study["variants"].items():
            for minutes, ratio in TARGETS.items():
                point = point_at(results["points"], minutes)
                if point is None or point["wer_ratio_to_ceiling"] is None:
                    continue
                found[f"{voice}/{variant}/{minutes:g}_min"] = {
                    "wer_ratio_to_ceiling": point["wer_ratio_to_ceiling"],
                    "max": ratio,
                    "pass": point["wer_ratio_to_ceiling"] <= ratio,
                }
            wall = results.get("wall_time")
            if wall and wall["step_share"] is not None:
                found[f"{voice}/{variant}/step_share"] = {
                    "step_share": wall["step_share"],
                    "min": STEP_SHARE_MIN,
                    "pass": wall["step_share"] >= STEP_SHARE_MIN,
                }
    return found


def summary(results):
    return json.dumps(results["verdicts"], indent=1)


def plot(results, path):
    """Per voice: WER against the budget (top) and the held-out mel L1 of the text path (bottom)."""
    plt = pyplot()
    voices = results["voices"]
    figure, axes = plt.subplots(
        2, len(voices), figsize=(7 * len(voices), 9), squeeze=False, sharex="col"
    )
    for column, (voice, study) in enumerate(voices.items()):
        top, bottom = axes[0][column], axes[1][column]
        for index, (variant, runs) in enumerate(study["variants"].items()):
            color = f"C{index}"
            points = [(p["machine_minutes"], p["wer"]) for p in runs["points"] if p["wer"]]
            if points:
                top.plot(*zip(*points, strict=True), "o-", color=color, label=variant)
            curve = [
                (p["machine_minutes"], p["mel_text"])
                for p in runs.get("validation", [])
                if p.get("mel_text")
            ]
            if curve:
                bottom.plot(*zip(*curve, strict=True), ".-", color=color, label=variant)
        references = study["references"] or {}
        if "vocoder_ceiling" in references:
            ceiling = references["vocoder_ceiling"]["wer"]
            top.axhline(ceiling, color="k", ls="--", lw=1, label="vocoder ceiling")
            for minutes, ratio in TARGETS.items():
                top.plot([minutes], [ratio * ceiling], "k*", ms=10)
            top.axhline(references["original"]["wer"], color="grey", lw=1, label="recordings")
        top.set(
            title=f"{voice}: WER of text-to-speech (PocketSphinx), held-out sentences",
            ylabel="word error rate",
        )
        top.set_ylim(0, 1.1)
        top.legend(fontsize=8, title="stars: the targets", title_fontsize=8)
        bottom.set(
            title=f"{voice}: held-out mel L1 of the text path",
            xlabel="training budget (CPU-minutes / cores)",
            ylabel="mel L1 (normalized log-mel)",
        )
        bottom.legend(fontsize=8)
        for axis in (top, bottom):
            axis.grid(alpha=0.3)
    save_figure(figure, path, dpi=100)


OPTIONS = dict(add_arguments=add_arguments, command_args=command_args, summary=summary)
BENCHMARK = Benchmark("convergence_bench", __doc__, measure, plot, **OPTIONS)

if __name__ == "__main__":
    raise SystemExit(BENCHMARK.main())
