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

The compared number is the held-out mel L1 of the text path (normalized
log-mel, lengths from the true number of frames: mmae's aligner durations,
the baseline's uniform stretch) against training time. Writes
bench/results/quality_bench.json, quality_bench.png (the curves) and
quality_alignment.png (a held-out clip's learned alignment, and its mels).
"""

import argparse
import datetime
import json
import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.path.join(REPO, "bench", "work", "quality")
RESULTS = os.path.join(REPO, "bench", "results")
CORES = len(os.sched_getaffinity(0))

# name -> config overrides; every run uses the data's own (flite16k) config.
# The two-stage regimes spend their first 500 steps on the audio side alone
# (about a sixth of a 30-minute budget: audio-only steps are cheaper).
RUNS = {
    "joint": ["train.regime=joint"],
    "separate": ["train.regime=separate", "train.pretrain_steps=500"],
    "self_supervised": ["train.regime=self_supervised", "train.pretrain_steps=500"],
    "seed_baseline": ["model.architecture=seed_baseline"],
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.path.join(REPO, "prepared", "slt1600"))
    parser.add_argument(
        "--minutes",
        type=float,
        default=30.0,
        help="training budget per model, in minutes of all this machine's cores",
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
    parser.add_argument("--report-only", action="store_true", help="just collect and plot")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    from mmae.config import Config
    from mmae.datasets.prepare import load_dataset_info
    from mmae.training import train

    info = load_dataset_info(args.data)
    base = Config.from_dict(info["config"])
    common = [
        f"train.eval_every={args.eval_every}",
        f"train.checkpoint_every={args.eval_every}",
        "train.log_every=25",
        *args.overrides,
    ]
    if not args.report_only:
        for name in args.only or list(RUNS):
            config = base.with_overrides(common + RUNS[name])
            print(f"[quality_bench] {name}: {args.minutes} min", flush=True)
            summary = train(
                config,
                args.data,
                os.path.join(WORK, name),
                cpu_budget_s=60 * args.minutes * CORES,
            )
            print(f"[quality_bench] {name}: {summary['message'] or summary['stopped']}", flush=True)
    results = collect(args, info)
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "quality_bench.json"), "w") as f:
        json.dump(results, f, indent=1)
    plot_curves(results, os.path.join(RESULTS, "quality_bench.png"))
    if os.path.exists(os.path.join(WORK, "joint", "checkpoints")):
        plot_alignment(
            args.data, os.path.join(WORK, "joint"), os.path.join(RESULTS, "quality_alignment.png")
        )
    print(json.dumps({name: run.get("final") for name, run in results["runs"].items()}, indent=1))


def collect(args, info):
    from mmae.training import read_metrics

    runs = {}
    for name in RUNS:
        run_dir = os.path.join(WORK, name)
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
        runs[name] = {
            "overrides": RUNS[name] + args.overrides,
            "curve": curve,
            "final": curve[-1] if curve else None,
            "steps": train_records[-1]["step"] if train_records else 0,
            "machine_minutes": round(used / CORES / 60, 2),
            # Stopped by its budget or by the step cap, not interrupted
            # (an interrupted run resumes with the same command).
            "complete": used >= 60 * args.minutes * CORES
            or (bool(train_records) and train_records[-1]["step"] >= _max_steps(run_dir)),
        }
    final = {
        n: r["final"]["mel_text"]
        for n, r in runs.items()
        if r["complete"] and r["final"] and r["final"]["mel_text"]
    }
    return {
        "benchmark": "quality_bench",
        "command": "python -m bench.quality_bench "
        + " ".join(f"--data {args.data} --minutes {args.minutes}".split()),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "data": os.path.relpath(args.data, REPO),
        "train_clips": info["splits"]["train"]["num_clips"],
        "validation_clips": info["splits"]["validation"]["num_clips"],
        "minutes_per_model": args.minutes,
        "budget": f"{args.minutes} x 60 x {CORES} cores = {args.minutes * 60 * CORES:.0f} "
        "CPU-seconds of the training process per model",
        "cores": CORES,
        "metric": "held-out mel L1 of the text path (normalized log-mel; true frame count)",
        "runs": runs,
        "final_mel_text_l1": final,
        "ratio_to_seed_baseline": {
            n: round(v / final["seed_baseline"], 3) for n, v in final.items()
        }
        if "seed_baseline" in final
        else None,
    }


def _max_steps(run_dir):
    from mmae.config import Config

    return Config.load(os.path.join(run_dir, "config.yaml")).train.steps


def plot_curves(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.5))
    for name, run in results["runs"].items():
        points = [(p["machine_minutes"], p["mel_text"]) for p in run["curve"] if p["mel_text"]]
        if points:
            label = name if run.get("complete", True) else f"{name} (unfinished)"
            axis.plot(*zip(*points, strict=True), marker=".", label=label)
    axis.set_xlabel(f"training budget used (CPU-minutes / {results['cores']} cores)")
    axis.set_ylabel("held-out mel L1, text path (normalized)")
    axis.set_title(f"Quality against training time ({results['train_clips']} training clips)")
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_alignment(data_dir, run_dir, path):
    """The joint model's learned alignment and mels for one held-out clip."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mmae.config import Config
    from mmae.datasets.pipeline import make_dataset
    from mmae.datasets.prepare import load_dataset_info
    from mmae.models import build_model
    from mmae.training import restore_weights

    config = Config.load(os.path.join(run_dir, "config.yaml"))
    model = build_model(config, load_dataset_info(data_dir))
    restore_weights(model, run_dir)
    batch = next(iter(make_dataset(data_dir, config, "validation")))
    shown = model.display(batch)
    figure, axes = plt.subplots(1, 4, figsize=(20, 4))
    axes[0].imshow(shown["alignment"].T, origin="lower", aspect="auto", interpolation="none")
    axes[0].set(title="soft alignment (held-out clip)", xlabel="mel frame", ylabel="token")
    axes[1].imshow(shown["hard_alignment"].T, origin="lower", aspect="auto", interpolation="none")
    axes[1].set(title="monotonic alignment search (durations)", xlabel="mel frame")
    for axis, key in zip(axes[2:], ("mel_target", "mel_text"), strict=True):
        axis.imshow(shown[key].T, origin="lower", aspect="auto", interpolation="none")
        axis.set(title=key.replace("_", " "), xlabel="mel frame", ylabel="mel channel")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


if __name__ == "__main__":
    main()
