"""Fine-tuning the neural vocoder on the acoustic model's own log-mels: text to speech, with and without.

Run from the repository root once the two runs it starts from exist:

    .venv/bin/python -m bench.quality_bench --data prepared/slt1600 --minutes 30 --only joint
    .venv/bin/python -m bench.vocoder_finetune_bench            # trains what is missing, then judges
    .venv/bin/python -m bench.vocoder_finetune_bench --only predicted --no-eval   # one run, say
                                                                # beside --only true_mels

The acoustic run is the bundled model's recipe (the `joint` run of the
quality study) and, unlike the bundled pack, keeps its aligner; the vocoder
run is the bundled vocoder's (`runs/vocoder2v`, generator and
discriminators). Under bench/work/vocoder_finetune/:

1. `predicted/`: the prepared slt corpus with each clip's log-mel replaced by
   the acoustic model's teacher-forced text-path prediction
   (`mmae predict-mels`), so it still lines up with the recording;
2. `predicted_run/`: the vocoder fine-tuned on it (`mmae train-vocoder
   --init-from`), `--steps` adversarial steps;
3. `true_mels_run/`, the control: the same steps from the same start on the
   same clips' true log-mels. It tells learning the model's mels apart from
   just training longer on this voice.

Then, on the held-out clips of the slt corpus (its validation split, never
trained on by any of these), each judged by PocketSphinx and DNSMOS:

- text to speech by the acoustic run through Griffin-Lim, the base vocoder,
  the control and the fine-tuned vocoder (the issue's with and without);
- copy-synthesis (true log-mels) through the same three vocoders, on slt and
  on a second voice (rms): what fine-tuning on one model's mels costs a
  vocoder on real speech.

Writes bench/results/vocoder_finetune_bench.json and .png. Training resumes:
rerun the same command after a stop.
"""

import dataclasses
import os
import sys

from bench.harness import REPO, Benchmark, logger, pyplot, save_figure
from bench.vocoder_quality_bench import (
    Judges,
    check_features,
    copy_synthesis,
    judged_row,
    ratios,
    read_clips,
    training_cpu_hours,
)

WORK = os.path.join(REPO, "bench", "work", "vocoder_finetune")
DEFAULT_ACOUSTIC = os.path.join("bench", "work", "quality", "joint")
DEFAULT_VOCODER = os.path.join("runs", "vocoder2v")
DEFAULT_DATA = os.path.join("prepared", "slt1600")
DEFAULT_OTHER_VOICE = os.path.join("prepared", "rms1600")
# The two fine-tuning runs: {name: whether it trains on the model's predicted log-mels}.
RUNS = {"predicted": True, "true_mels": False}


@dataclasses.dataclass(frozen=True)
class Settings:
    steps: int  # adversarial steps of each fine-tuning run
    clips: int | None  # held-out clips judged per voice (None: every one with words)


FULL = Settings(steps=1000, clips=None)
QUICK = Settings(steps=4, clips=3)

log = logger("vocoder_finetune_bench")


def add_arguments(parser):
    parser.add_argument("--acoustic-run", default=DEFAULT_ACOUSTIC, help="with an aligner")
    parser.add_argument(
        "--vocoder-run", default=DEFAULT_VOCODER, help="the vocoder run (or pack) to start from"
    )
    parser.add_argument("--data", default=DEFAULT_DATA, help="prepared with stored audio")
    parser.add_argument(
        "--other-voice",
        default=DEFAULT_OTHER_VOICE,
        help="a second prepared voice for the copy-synthesis rows ('' for none)",
    )
    parser.add_argument("--steps", type=int, help="fine-tuning steps (default 1000; --quick 4)")
    parser.add_argument("--clips", type=int, help="held-out clips per voice (default: all)")
    parser.add_argument("--work", default=WORK, help="where the runs go")
    parser.add_argument("--only", nargs="+", choices=sorted(RUNS), help="train only these runs")
    parser.add_argument("--no-eval", action="store_true", help="train, judge nothing")


def command_args(args):
    """The options that reproduce the study: not those that split the training up."""
    return (
        ["--acoustic-run", args.acoustic_run, "--vocoder-run", args.vocoder_run]
        + ["--data", args.data, "--other-voice", args.other_voice]
        + (["--steps", str(args.steps)] if args.steps else [])
        + (["--clips", str(args.clips)] if args.clips else [])
        + (["--quick"] if args.quick else [])
    )


def settings_of(args):
    base = QUICK if args.quick else FULL
    return dataclasses.replace(base, steps=args.steps or base.steps, clips=args.clips or base.clips)


def measure(args):
    settings = settings_of(args)
    for name in args.only or list(RUNS):
        fine_tune(name, args, settings)
    if args.no_eval:
        raise SystemExit(0)
    return judge(args, settings)


# --------------------------------------------------------------------------
# Training


def predicted_data(args):
    """The prepared data with the acoustic model's log-mels (made once)."""
    from mmae.datasets.predicted import predict_mels

    out = os.path.join(args.work, "predicted")
    if not os.path.exists(os.path.join(out, "dataset.json")):
        log(f"predicting the log-mels of {args.data} with {args.acoustic_run}")
        predict_mels(args.acoustic_run, args.data, out, progress=not args.quick)
    return out


def fine_tune(name, args, settings):
    """Trains (or resumes) one fine-tuning run from the vocoder run; returns its directory."""
    from mmae.training.vocoder import train_vocoder, vocoder_config

    data = predicted_data(args) if RUNS[name] else args.data
    run_dir = os.path.join(args.work, f"{name}_run")
    overrides = [f"train.steps={settings.steps}", "vocoder.adversarial_start=0"]
    if args.quick:
        overrides += ["train.batch_size=2", "train.checkpoint_every=2", "train.eval_every=100"]
    # The default preset is the one the bundled vocoder's run trained with.
    config = vocoder_config(data, overrides=overrides, run_dir=run_dir)
    log(f"{name}: {settings.steps} steps on {data} from {args.vocoder_run}")
    train_vocoder(config, data, run_dir, init_from=args.vocoder_run, progress=not args.quick)
    return run_dir


# --------------------------------------------------------------------------
# Judging


def judge(args, settings):
    from mmae import pretrained, runs
    from mmae.evaluation import Naturalness, Recognizer
    from mmae.vocoders import resolve_vocoder

    config, model = runs.load_run(args.acoustic_run)
    audio = config.audio
    judges = Judges(Recognizer(), Naturalness(), audio.sample_rate)
    vocoders = {"base": _load(args.vocoder_run, audio)}
    for name in RUNS:
        vocoders[name] = _load(os.path.join(args.work, f"{name}_run"), audio)
    griffin_lim = resolve_vocoder("griffin_lim", audio)
    bundled_config, bundled_model = pretrained.load()
    check_features(bundled_config.audio, audio, "the bundled acoustic model")

    voices = {"slt": args.data}
    if args.other_voice:
        voices["rms"] = args.other_voice
    results = {
        "acoustic_run": os.path.relpath(os.path.abspath(args.acoustic_run), REPO),
        "vocoder_run": os.path.relpath(os.path.abspath(args.vocoder_run), REPO),
        "settings": dataclasses.asdict(settings),
        "fine_tuning": {
            name: _run_record(
                os.path.join(args.work, f"{name}_run"),
                os.path.join(args.work, "predicted") if RUNS[name] else args.data,
            )
            for name in RUNS
        },
        "judges": {"asr": judges.recognizer.description, "dnsmos": judges.naturalness.description},
        "voices": {},
    }
    for voice, data_dir in voices.items():
        clips = read_clips(data_dir, audio, settings.clips)
        log(f"{voice}: {len(clips)} held-out clips of {data_dir}")
        # Text to speech for the acoustic model's voice; copy-synthesis for every voice.
        speakers = []
        if voice == "slt":
            speakers = [
                ("tts", model, config, {"griffin_lim": griffin_lim, **vocoders}),
                # The bundled model (same recipe, no aligner kept) through the same vocoders.
                (
                    "bundled_tts",
                    bundled_model,
                    bundled_config,
                    {name: vocoders[name] for name in ("base", "predicted")},
                ),
            ]
        results["voices"][voice] = {
            "data": data_dir,
            "clip_ids": [c.clip_id for c in clips],
            "rows": voice_rows(voice, clips, audio, judges, vocoders, speakers),
        }
    results["with_and_without"] = with_and_without(results["voices"]["slt"]["rows"])
    return results


def voice_rows(voice, clips, audio, judges, vocoders, speakers):
    """The judged rows of one voice, with ratios to its recordings.

    Args:
        vocoders: {name: vocoder} of the copy-synthesis (and text-to-speech) rows.
        speakers: [(row prefix, acoustic model, its config, {name: vocoder})]: the
            text-to-speech rows, `{prefix}_{name}`.
    """
    from mmae.synthesis import Synthesizer

    rows = {}

    def add(row, what, render):
        rows[row], _ = judged_row(what, clips, render, judges, f"{voice} {row}")

    add(
        "recordings", "the PCM stored in the prepared records", lambda: [c.recording for c in clips]
    )
    texts = [c.text for c in clips]
    for prefix, model, config, speaker_vocoders in speakers:
        for name, vocoder in speaker_vocoders.items():
            synthesizer = Synthesizer(model, config, vocoder=vocoder)
            add(
                f"{prefix}_{name}",
                f"{'the bundled model' if prefix.startswith('bundled') else 'the acoustic run'} "
                f"from text, through the {name} vocoder",
                lambda synthesizer=synthesizer: synthesizer.synthesize(texts),
            )
    for name, vocoder in vocoders.items():
        add(
            f"copy_{name}",
            f"the true log-mel through the {name} vocoder",
            lambda vocoder=vocoder: copy_synthesis(vocoder, clips, audio),
        )
    for row in rows.values():
        row.update(ratios(row, rows["recordings"]))
    return rows


def _load(path, audio):
    from mmae.runs import load_vocoder

    config, vocoder = load_vocoder(path)
    check_features(config.audio, audio, path)
    return vocoder


def _run_record(run_dir, data_dir):
    from mmae.config import Config
    from mmae.runs import checkpoint_step, checkpoints

    prefixes = checkpoints(os.path.join(run_dir, "checkpoints"))
    step = max((checkpoint_step(p) for p in prefixes), default=None)
    config = Config.load(os.path.join(run_dir, "config.yaml"))
    cpu_hours, _ = training_cpu_hours(run_dir, step) if step else (None, False)
    return {
        "run": os.path.relpath(run_dir, REPO),
        "data": os.path.relpath(os.path.abspath(data_dir), REPO),
        "step": step,
        "training_cpu_hours": cpu_hours,
        "learning_rate": config.train.learning_rate,
        "batch_size": config.train.batch_size,
        "segment_frames": config.vocoder.segment_frames,
    }


def with_and_without(rows):
    """The text-to-speech differences the fine-tuning makes, against the base and the control."""
    pairs = {
        "predicted_vs_base": ("tts_predicted", "tts_base"),
        "predicted_vs_true_mels": ("tts_predicted", "tts_true_mels"),
        "bundled_model_predicted_vs_base": ("bundled_tts_predicted", "bundled_tts_base"),
    }
    return {
        name: {
            key: _difference(rows[fine][key], rows[other][key])
            for key in ("wer", "dnsmos_ovrl", "dnsmos_sig")
        }
        for name, (fine, other) in pairs.items()
        if fine in rows and other in rows
    }


def _difference(a, b):
    return None if a is None or b is None else round(a - b, 4)


# --------------------------------------------------------------------------
# Report

ROWS = (
    "recordings",
    "tts_griffin_lim",
    "tts_base",
    "tts_true_mels",
    "tts_predicted",
    "bundled_tts_base",
    "bundled_tts_predicted",
)
COPY_ROWS = ("copy_base", "copy_true_mels", "copy_predicted")


def summary_text(results):
    lines = []
    for voice, result in results["voices"].items():
        lines.append(f"{voice} ({len(result['clip_ids'])} held-out clips):")
        lines.append(f"  {'row':<22} {'WER':>6} {'OVRL':>6} {'SIG':>6} {'OVRL x rec':>10}")
        for row, values in result["rows"].items():
            lines.append(
                f"  {row:<22} {values['wer']:>6.3f} {_format(values['dnsmos_ovrl']):>6} "
                f"{_format(values['dnsmos_sig']):>6} {_format(values['dnsmos_ovrl_ratio']):>10}"
            )
    for name, difference in results["with_and_without"].items():
        lines.append(
            f"{name}: WER {difference['wer']:+.3f}, OVRL {_signed(difference['dnsmos_ovrl'])}, "
            f"SIG {_signed(difference['dnsmos_sig'])}"
        )
    return "\n".join(lines)


def _format(value, digits=3):
    return "-" if value is None else f"{value:.{digits}f}"


def _signed(value):
    return "-" if value is None else f"{value:+.3f}"


def notes(results):
    steps = results["settings"]["steps"]
    return [
        f"Both fine-tuning runs start from the vocoder run's newest checkpoint (generator and "
        f"both discriminators; new Adam state) and train {steps} adversarial steps with its "
        "settings (vocoder.adversarial_start=0): predicted_run on the acoustic run's "
        "teacher-forced log-mels of the slt corpus (train and validation splits of "
        "predict-mels; the vocoder trains on the train split only), true_mels_run on the same "
        "clips' true log-mels.",
        "tts_*: Synthesizer(acoustic run, vocoder).synthesize(held-out texts), durations "
        "predicted (not teacher-forced): what a user hears. copy_*: the held-out clips' true "
        "log-mels through each vocoder.",
        "WER: PocketSphinx, corpus-level; DNSMOS: level-normalized to -25 dBFS, mean over "
        "clips (as bench.vocoder_quality_bench). Ratios are over the same voice's recordings.",
        f"Whole run: {results['total_seconds']} s.",
    ]


def plot(results, path):
    plt = pyplot()
    figure, axes = plt.subplots(1, 3, figsize=(19, 5), gridspec_kw={"width_ratios": [1.3, 1.3, 1]})
    slt = results["voices"]["slt"]["rows"]
    figure.suptitle(
        f"Vocoder fine-tuned on the acoustic model's log-mels ({results['settings']['steps']} "
        f"steps) against the base vocoder and a control trained as long on true log-mels "
        f"({results['date'][:10]})",
        fontsize=10.5,
    )
    names = [r for r in ROWS if r in slt]
    colors = ["#4c72b0", "#8c8c8c", "#dd8452", "#937860", "#55a868", "#dd8452", "#55a868"]
    colors = colors[: len(names)]
    labels = [n.replace("bundled_tts_", "bundled\n").replace("tts_", "") for n in names]
    for ax, key, title in (
        (axes[0], "wer", "slt text to speech: WER (lower is better)"),
        (axes[1], "dnsmos_ovrl", "slt text to speech: DNSMOS OVRL (higher is better)"),
    ):
        values = [slt[n][key] or 0.0 for n in names]
        ax.bar(
            range(len(names)),
            values,
            color=colors,
            hatch=["//" if n.startswith("bundled") else "" for n in names],
        )
        ax.set_xticks(range(len(names)), labels, fontsize=8)
        for x, value in enumerate(values):
            ax.text(x, value, f"{value:.3f}", ha="center", va="bottom", fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    ax = axes[2]
    width = 0.8 / max(1, len(results["voices"]))
    for index, (voice, result) in enumerate(results["voices"].items()):
        rows = result["rows"]
        values = [rows[r]["dnsmos_ovrl"] or 0.0 for r in COPY_ROWS]
        positions = [x + index * width for x in range(len(COPY_ROWS))]
        ax.bar(positions, values, width=width, label=f"{voice}", color=f"C{index}")
        ax.axhline(rows["recordings"]["dnsmos_ovrl"], color=f"C{index}", lw=1, ls="--")
    ax.set_xticks(
        [x + width / 2 for x in range(len(COPY_ROWS))],
        [r.replace("copy_", "") for r in COPY_ROWS],
        fontsize=8.5,
    )
    ax.set_title("copy-synthesis DNSMOS OVRL (dashed: recordings)", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    save_figure(figure, path, dpi=100)


BENCHMARK = Benchmark(
    "vocoder_finetune_bench",
    __doc__,
    measure,
    plot,
    quick="4 fine-tuning steps at batch 2, 3 clips per voice (smoke test)",
    add_arguments=add_arguments,
    notes=notes,
    summary=summary_text,
    command_args=command_args,
)

if __name__ == "__main__":
    sys.exit(BENCHMARK.main())
