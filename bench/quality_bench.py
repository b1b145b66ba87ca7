"""Quality at equal training time: mmae's three regimes against the seed baseline.

    .venv/bin/python data/make_corpus.py corpora/slt1600 --num-clips 1600 --voices slt \\
        --skip-first 260 --format flac
    .venv/bin/mmae prepare corpora/slt1600 prepared/slt1600 --config flite16k
    .venv/bin/python -m bench.quality_bench --data prepared/slt1600 --minutes 30 [--only joint]

Each model trains on the same prepared corpus (held-out clips never seen in
training) for the same budget of CPU time, one after another, with a
validation pass every `--eval-every` steps. `--minutes` is in minutes of the
whole machine: the budget is `minutes x 60 x cores` CPU-seconds of the
training process (time.process_time over its training steps), so a run that
shares the machine with other jobs trains longer in wall time and still gets
the same computation. Wall time is recorded too. The
runs live in bench/work/quality/<name> and resume where they stopped, so an
interrupted benchmark continues by rerunning the same command.

Two numbers are compared against training time:
- the held-out mel L1 of the text path (normalized log-mel, lengths from the
  true number of frames: mmae's aligner durations, the baseline's uniform
  stretch), at every validation pass;
- what `mmae evaluate` measures on the held-out sentences synthesized from
  text alone (predicted durations): PocketSphinx word error rate, MCD and F0
  error against the recordings. The trainer snapshots the weights when the
  budget used passes each of its marks (machine-minutes, `MARKS`); these snapshots
  and each run's last checkpoint are evaluated, the recordings and the
  vocoder ceiling (true mel through the same Griffin-Lim) once.

Writes bench/results/quality_bench.json, quality_bench.png (the curves) and
quality_alignment.png (a held-out clip's learned alignment, and its mels).
Evaluation reports (with the worst sentences' audio) stay in
bench/work/quality/<name>/evaluation/<checkpoint>/.
"""

import json
import os
import shutil
import sys

from bench.harness import REPO, Benchmark, logger, pyplot, save_figure

WORK = os.path.join(REPO, "bench", "work", "quality")
CORES = len(os.sched_getaffinity(0))

# name -> config overrides of the `--config` preset (flite16k: the data's own
# features, and the training settings mmae ships for this corpus size).
# The two-stage regimes spend their first 500 steps on the audio side alone
# (about a sixth of a 30-minute budget: audio-only steps are cheaper).
RUNS = {
    "joint": ["train.regime=joint"],
    "separate": ["train.regime=separate", "train.pretrain_steps=500"],
    "self_supervised": ["train.regime=self_supervised", "train.pretrain_steps=500"],
    "seed_baseline": ["model.architecture=seed_baseline"],
}
# Machine-minutes at which each run keeps a snapshot for the WER curve: the
# seed baseline reaches its 20000-step cap after about 5 minutes, and
# `separate` is still on its text stage's first steps at 5.
MARKS = {
    "joint": [5.0, 10.0, 20.0],
    "separate": [10.0, 20.0],
    "self_supervised": [5.0, 10.0, 20.0],
    "seed_baseline": [1.0, 2.5],
}


log = logger("quality_bench")


def add_arguments(parser):
    parser.add_argument("--data", default=os.path.join(REPO, "prepared", "slt1600"))
    parser.add_argument(
        "--minutes",
        type=float,
        default=30.0,
        help="training budget per model, in minutes of all this machine's cores",
    )
    parser.add_argument(
        "--config",
        default="flite16k",
        help="preset or config file the runs start from (its features must match the data's)",
    )
    parser.add_argument(
        "--work",
        default=WORK,
        help="where the runs, their evaluations and the references go (one per corpus)",
    )
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--only", nargs="*", choices=sorted(RUNS), help="train only these")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        help="extra config override for every run",
    )
    parser.add_argument(
        "--marks",
        type=float,
        nargs="*",
        default=None,
        help="machine-minutes at which to keep a snapshot for the WER curve (default: per "
        "model, see MARKS)",
    )
    parser.add_argument(
        "--init-from",
        default=None,
        metavar="MODEL",
        help="start every run from this acoustic run or pretrained model (`mmae train "
        "--init-from`), not from nothing",
    )
    parser.add_argument(
        "--eval-limit", type=int, help="evaluate only the first N held-out sentences"
    )
    parser.add_argument("--no-eval", action="store_true", help="skip the WER/MCD evaluations")
    parser.add_argument(
        "--eval-only",
        action="store_true",
        help="no training: evaluate the checkpoints so far (beside a running benchmark)",
    )
    parser.add_argument("--report-only", action="store_true", help="just collect and plot")


def command_args(args):
    """The options that reproduce the study: not those that resume, evaluate or collect a part."""
    return (
        ["--data", os.path.relpath(args.data, REPO), "--minutes", str(args.minutes)]
        + (["--config", args.config] if args.config != "flite16k" else [])
        + (["--marks", *map(str, args.marks)] if args.marks is not None else [])
        + (["--eval-limit", str(args.eval_limit)] if args.eval_limit else [])
        + (["--init-from", _relative(args.init_from)] if args.init_from else [])
        + [option for value in args.overrides for option in ("--set", value)]
        + (["--work", os.path.relpath(args.work, REPO)] if args.work != WORK else [])
    )


def measure(args):
    """Trains what is missing, evaluates new checkpoints, then collects every run."""
    from mmae.config import Config
    from mmae.datasets.prepare import load_dataset_info
    from mmae.training import train
    from mmae.training.warm_start import warm_start_model_fn

    info = load_dataset_info(args.data)
    # The preset as it is now, not as it was when the data was prepared: a
    # changed training setting is measured without preparing again.
    base = Config.load(args.config)
    common = [
        f"train.eval_every={args.eval_every}",
        f"train.checkpoint_every={args.eval_every}",
        "train.log_every=25",
        *args.overrides,
    ]
    if not (args.report_only or args.eval_only):
        for name in args.only or list(RUNS):
            config = base.with_overrides(common + RUNS[name])
            log(f"{name}: {args.minutes} min")
            run_dir = os.path.join(args.work, name)
            model_fn = None
            if args.init_from:
                model_fn = warm_start_model_fn(args.init_from, run_dir=run_dir, report=log)
            summary = train(
                config,
                args.data,
                run_dir,
                model_fn=model_fn,
                cpu_budget_s=60 * args.minutes * CORES,
                snapshot_cpu_s=[60 * mark * CORES for mark in _marks(args, name)],
            )
            log(f"{name}: {summary['message'] or summary['stopped']}")
    if not (args.no_eval or args.report_only):
        evaluate_checkpoints(args)
    return collect(args, info)


def _relative(path):
    """`path` relative to the repository if it is a path there, else as given (a pack's name)."""
    return os.path.relpath(path, REPO) if os.path.exists(path) else path


def summary(results):
    """Each run's last validation point."""
    return json.dumps({name: run.get("final") for name, run in results["runs"].items()}, indent=1)


def _marks(args, name):
    return MARKS[name] if args.marks is None else args.marks


def checkpoints_to_evaluate(run_dir, include_last=True):
    """[(name, path, record)] of a run's snapshots and (optionally) its last checkpoint."""
    from mmae.runs import read_metrics

    found = []
    for record in read_metrics(run_dir, "snapshot"):
        found.append(
            (f"ckpt-{record['step']}", os.path.join(run_dir, record["checkpoint"]), record)
        )
    train_records = read_metrics(run_dir, "train")
    if train_records and include_last:
        last = train_records[-1]
        path = os.path.join(run_dir, "checkpoints", f"ckpt-{last['step']}")
        if os.path.exists(path + ".index") and last["step"] not in [r["step"] for *_, r in found]:
            found.append((f"ckpt-{last['step']}", path, last))
    return found


def evaluate_checkpoints(args):
    """Runs `mmae evaluate` on every checkpoint of the study that has no report yet."""
    from mmae.evaluation import ROWS, Recognizer, evaluate

    recognizer = Recognizer()
    for name in args.only or list(RUNS):
        run_dir = os.path.join(args.work, name)
        if not os.path.exists(os.path.join(run_dir, "metrics.jsonl")):
            continue
        # A run still training has only its snapshots evaluated.
        found = checkpoints_to_evaluate(run_dir, include_last=_complete(run_dir, args))
        for checkpoint, path, _ in found:
            out_dir = os.path.join(run_dir, "evaluation", checkpoint)
            if os.path.exists(os.path.join(out_dir, "report.json")):
                continue
            # The reference rows do not depend on the model: scored once.
            reference = _reference_report(args.work)
            rows = ROWS if not os.path.exists(reference) else ("model",)
            log(f"evaluate {name} {checkpoint}")
            evaluate(
                run_dir,
                args.data,
                out_dir,
                limit=args.eval_limit,
                progress=False,
                recognizer=recognizer,
                checkpoint=path,
                rows=rows,
            )
            if rows == ROWS:
                os.makedirs(os.path.dirname(reference), exist_ok=True)
                shutil.copy(os.path.join(out_dir, "report.json"), reference)


def _reference_report(work):
    return os.path.join(work, "references", "report.json")


def _read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def collect_evaluations(run_dir, reference):
    """The WER/MCD curve of one run: a point per evaluated checkpoint."""
    points = []
    ceiling = reference["rows"]["vocoder_ceiling"]["wer"] if reference else None
    for checkpoint, _, record in checkpoints_to_evaluate(run_dir):
        path = os.path.join(run_dir, "evaluation", checkpoint, "report.json")
        if not os.path.exists(path):
            continue
        model = _read_json(path)["rows"]["model"]
        points.append(
            {
                "checkpoint": checkpoint,
                "step": record["step"],
                "machine_minutes": round(record["cpu_seconds"] / CORES / 60, 2),
                "num_sentences": model["num_sentences"],
                **{key: model.get(key) for key in EVAL_KEYS},
                "wer_ratio_to_ceiling": round(model["wer"] / ceiling, 3) if ceiling else None,
            }
        )
    return sorted(points, key=lambda p: p["step"])


def wall_time(records):
    """Where a run's wall time went, summed over its calls' "timing" records (None if none)."""
    if not records:
        return None
    seconds = {}
    for record in records:
        for phase, value in record["phase_seconds"].items():
            seconds[phase] = seconds.get(phase, 0.0) + value
    total = sum(seconds.values())
    return {
        "calls": len(records),
        "seconds": round(total, 1),
        "phase_seconds": {phase: round(value, 1) for phase, value in seconds.items()},
        "step_share": round(seconds.get("step", 0.0) / total, 4) if total else None,
    }


EVAL_KEYS = ("wer", "cer", "mcd", "f0_rmse_cents", "voicing_error", "mel_l1_dtw")


def collect(args, info):
    from mmae.config import Config
    from mmae.runs import read_metrics

    path = _reference_report(args.work)
    reference = _read_json(path) if os.path.exists(path) else None

    runs = {}
    for name in RUNS:
        run_dir = os.path.join(args.work, name)
        if not os.path.exists(os.path.join(run_dir, "metrics.jsonl")):
            continue
        validation = read_metrics(run_dir, "validation")
        train_records = read_metrics(run_dir, "train")
        curve = [
            {
                "step": r["step"],
                "train_seconds": round(r["train_seconds"], 1),
                "machine_minutes": round(r.get("cpu_seconds", 0.0) / CORES / 60, 2),
                "mel_text": r.get("mel_text"),
                "mel_audio": r.get("mel_audio"),
            }
            for r in validation
        ]
        used = train_records[-1].get("cpu_seconds", 0.0) if train_records else 0.0
        # What the run was trained with (it may predate a preset change).
        settings = Config.load(os.path.join(run_dir, "config.yaml")).to_dict()
        runs[name] = {
            "overrides": RUNS[name] + args.overrides,
            "model": settings["model"],
            "train": settings["train"],
            "curve": curve,
            "final": curve[-1] if curve else None,
            "steps": train_records[-1]["step"] if train_records else 0,
            "machine_minutes": round(used / CORES / 60, 2),
            "complete": _complete(run_dir, args),
            "evaluation": collect_evaluations(run_dir, reference),
            "wall_time": wall_time(read_metrics(run_dir, "timing")),
        }
    final = {
        n: r["final"]["mel_text"]
        for n, r in runs.items()
        if r["complete"] and r["final"] and r["final"]["mel_text"]
    }
    final_wer = {
        name: run["evaluation"][-1]
        for name, run in runs.items()
        if run["complete"] and run["evaluation"]
    }
    return {
        "data": os.path.relpath(args.data, REPO),
        "work": os.path.relpath(args.work, REPO),
        "train_clips": info["splits"]["train"]["num_clips"],
        "validation_clips": info["splits"]["validation"]["num_clips"],
        "minutes_per_model": args.minutes,
        "budget": f"{args.minutes} x 60 x {CORES} cores = {args.minutes * 60 * CORES:.0f} "
        "CPU-seconds of the training process per model",
        "cores": CORES,
        "metric": "held-out mel L1 of the text path (normalized log-mel; true frame count)",
        "evaluation_metric": "mmae evaluate on the held-out sentences: PocketSphinx WER/CER "
        "of speech synthesized from text alone, MCD (dB) and F0 error against the recordings",
        "references": {
            row: {key: reference["rows"][row].get(key) for key in EVAL_KEYS}
            for row in ("original", "vocoder_ceiling")
        }
        if reference
        else None,
        "final_evaluation": {
            name: {
                "machine_minutes": point["machine_minutes"],
                "wer": point["wer"],
                "wer_ratio_to_ceiling": point["wer_ratio_to_ceiling"],
                "mcd": point["mcd"],
            }
            for name, point in final_wer.items()
        },
        "runs": runs,
        "final_mel_text_l1": final,
        "ratio_to_seed_baseline": {
            n: round(v / final["seed_baseline"], 3) for n, v in final.items()
        }
        if "seed_baseline" in final
        else None,
    }


def _complete(run_dir, args):
    """Stopped by its budget or by the step cap, not interrupted (it would resume)."""
    from mmae.runs import read_metrics

    train_records = read_metrics(run_dir, "train")
    if not train_records:
        return False
    last = train_records[-1]
    return last.get("cpu_seconds", 0.0) >= 60 * args.minutes * CORES or last["step"] >= _max_steps(
        run_dir
    )


def _max_steps(run_dir):
    from mmae.config import Config

    return Config.load(os.path.join(run_dir, "config.yaml")).train.steps


def plot(results, path):
    """The curves into `path` and, once `joint` has a checkpoint, its alignment beside them."""
    plot_curves(results, path)
    joint = os.path.join(REPO, results.get("work", os.path.relpath(WORK, REPO)), "joint")
    if os.path.exists(os.path.join(joint, "checkpoints")):
        alignment_path = os.path.join(os.path.dirname(path), "quality_alignment.png")
        plot_alignment(os.path.join(REPO, results["data"]), joint, alignment_path)


def plot_curves(results, path):
    plt = pyplot()
    figure, axes = plt.subplots(1, 3, figsize=(17, 4.8))
    xlabel = f"training budget used (CPU-minutes / {results['cores']} cores)"
    for index, (name, run) in enumerate(results["runs"].items()):
        color = f"C{index}"
        label = name if run.get("complete", True) else f"{name} (unfinished)"
        points = [(p["machine_minutes"], p["mel_text"]) for p in run["curve"] if p["mel_text"]]
        if points:
            axes[0].plot(*zip(*points, strict=True), marker=".", color=color, label=label)
        for axis, key in ((axes[1], "wer"), (axes[2], "mcd")):
            points = [(p["machine_minutes"], p[key]) for p in run.get("evaluation", []) if p[key]]
            if points:
                axis.plot(*zip(*points, strict=True), marker="o", color=color, label=label)
    references = results.get("references") or {}
    if "vocoder_ceiling" in references:
        ceiling = references["vocoder_ceiling"]
        axes[1].axhline(ceiling["wer"], color="k", ls="--", lw=1, label="vocoder ceiling")
        axes[1].axhline(1.2 * ceiling["wer"], color="k", ls=":", lw=1, label="1.2 x ceiling")
        axes[1].axhline(references["original"]["wer"], color="grey", lw=1, label="recordings")
        axes[2].axhline(ceiling["mcd"], color="k", ls="--", lw=1, label="vocoder ceiling")
    titles = (
        "held-out mel L1, text path (teacher-forced)",
        "word error rate (PocketSphinx), text to speech",
        "mel-cepstral distortion (dB) vs the recordings",
    )
    for axis, title in zip(axes, titles, strict=True):
        axis.set(title=title, xlabel=xlabel)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    axes[1].set_ylim(0, 1.05)
    figure.suptitle(f"Quality against training time ({results['train_clips']} training clips)")
    save_figure(figure, path, dpi=100)


def plot_alignment(data_dir, run_dir, path):
    """The joint model's learned alignment and mels for one held-out clip."""
    from mmae.config import Config
    from mmae.datasets.pipeline import make_dataset
    from mmae.datasets.prepare import load_dataset_info
    from mmae.models import build_model
    from mmae.runs import restore_weights

    config = Config.load(os.path.join(run_dir, "config.yaml"))
    model = build_model(config, load_dataset_info(data_dir))
    restore_weights(model, run_dir)
    batch = next(iter(make_dataset(data_dir, config, "validation")))
    shown = model.display(batch)
    figure, axes = pyplot().subplots(1, 4, figsize=(20, 4))
    axes[0].imshow(shown["alignment"].T, origin="lower", aspect="auto", interpolation="none")
    axes[0].set(title="soft alignment (held-out clip)", xlabel="mel frame", ylabel="token")
    axes[1].imshow(shown["hard_alignment"].T, origin="lower", aspect="auto", interpolation="none")
    axes[1].set(title="monotonic alignment search (durations)", xlabel="mel frame")
    for axis, key in zip(axes[2:], ("mel_target", "mel_text"), strict=True):
        axis.imshow(shown[key].T, origin="lower", aspect="auto", interpolation="none")
        axis.set(title=key.replace("_", " "), xlabel="mel frame", ylabel="mel channel")
    save_figure(figure, path, dpi=100)


# Only some options are recorded in `command` (see command_args).
OPTIONS = dict(add_arguments=add_arguments, command_args=command_args, summary=summary)
BENCHMARK = Benchmark("quality_bench", __doc__, measure, plot, **OPTIONS)

if __name__ == "__main__":
    sys.exit(BENCHMARK.main())
