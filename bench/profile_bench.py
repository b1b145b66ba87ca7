"""Where a training run's wall time goes: the trainer's own timers and a tf.profiler trace.

    .venv/bin/python -m bench.profile_bench --data prepared/slt1600v3 [--steps 300]

Trains the bundled model's recipe (the `flite16k` preset, `joint` regime)
from scratch on a prepared corpus in bench/work/profile/run, for `--steps`
steps with a validation pass and a checkpoint every `--every` steps and a
log record every 25 (the recipe of mmae/assets/flite_slt). The trainer
times each phase of the call (`mmae.training.trainer`: setup, input,
tracing, step, guard, logging, validation, checkpoints, profiling, other)
and a `tf.profiler` trace covers the steps in `--profile`, chosen to hold
a validation pass and a checkpoint. Records:

- the call's wall time by phase, in seconds and as shares;
- each validation pass's and checkpoint's cost, and a step's mean time;
- from these, the share of wall time in steps for a 2,053-step run (the
  bundled model's 30 CPU-minutes) with the recipe's every-100 and with the
  config's defaults (every 500), setup and tracing included;
- the trace's self time by op type (TensorFlow's framework_op_stats tool,
  read without TensorBoard), over the traced steps.

Target (issue 17): at least 90% of a run's wall time in training steps,
validation and checkpoints included. Writes bench/results/profile_bench.json
and .png; the trace itself stays in bench/work/profile/run/tensorboard/plugins/profile
(TensorBoard's profile plugin reads it: pip install tensorboard-plugin-profile).
"""

import glob
import json
import os
import shutil
import sys

from bench.harness import REPO, Benchmark, logger, pyplot, save_figure

WORK = os.path.join(REPO, "bench", "work", "profile")
RECIPE_STEPS = 2053  # the bundled model's 30 CPU-minutes (mmae/assets/flite_slt/README.md)

log = logger("profile_bench")


def add_arguments(parser):
    parser.add_argument("--data", default=os.path.join(REPO, "prepared", "slt1600v3"))
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--every", type=int, default=100, help="validation and checkpoints")
    parser.add_argument(
        "--profile", default="190:210", help="FIRST:LAST steps traced by tf.profiler"
    )


def measure(args):
    from mmae.config import Config
    from mmae.runs import read_metrics
    from mmae.training import train

    run_dir = os.path.join(WORK, "run")
    shutil.rmtree(run_dir, ignore_errors=True)  # a whole run: setup and tracing included
    config = Config.load("flite16k").with_overrides(
        [
            "train.regime=joint",
            f"train.steps={args.steps}",
            f"train.eval_every={args.every}",
            f"train.checkpoint_every={args.every}",
            "train.log_every=25",
        ]
    )
    first, last = (int(step) for step in args.profile.split(":"))
    log(f"training {args.steps} steps on {args.data}; tracing steps {first + 1}-{last}")
    summary = train(config, args.data, run_dir, progress=False, profile_steps=(first, last))
    timing = summary["timing"]
    seconds = timing["phase_seconds"]
    train_records = read_metrics(run_dir, "train")
    validations = len(read_metrics(run_dir, "validation"))
    checkpoints = args.steps // args.every + (args.steps % args.every != 0)
    # A step's mean time, over the steps that did not trace (each trace is one step).
    traced_steps = sum(summary["traces"].values())
    step_seconds = seconds["step"] / max(args.steps - traced_steps, 1)
    per = {
        "step_mean_s": round(step_seconds, 4),
        "validation_pass_s": round(seconds.get("validation", 0) / max(validations, 1), 3),
        "checkpoint_s": round(seconds.get("checkpoints", 0) / max(checkpoints, 1), 3),
        "logging_per_record_s": round(seconds.get("logging", 0) / max(len(train_records), 1), 4),
        "setup_s": round(seconds.get("setup", 0), 2),
        "tracing_s": round(seconds.get("tracing", 0), 2),
        "validations": validations,
        "checkpoints": checkpoints,
    }
    return {
        "data": os.path.relpath(args.data, REPO),
        "steps": args.steps,
        "every": args.every,
        "profiled_steps": [first + 1, last],
        "timing": timing,
        "per_occurrence": per,
        "projected_step_share": {
            f"{RECIPE_STEPS}_steps_every_{every}": _projected_share(per, seconds, args, every)
            for every in (100, 500)
        },
        "op_types": _op_types(run_dir),
    }


def _projected_share(per, seconds, args, every):
    """The share of wall time in steps for a RECIPE_STEPS-step run validating every `every`."""
    steps = RECIPE_STEPS * per["step_mean_s"]
    passes = RECIPE_STEPS // every + 1
    other = seconds.get("other", 0) / args.steps * RECIPE_STEPS
    guard = seconds.get("guard", 0) / args.steps * RECIPE_STEPS
    input_wait = seconds.get("input", 0) / args.steps * RECIPE_STEPS
    overhead = (
        per["setup_s"]
        + per["tracing_s"]
        + passes * (per["validation_pass_s"] + per["checkpoint_s"])
        + (RECIPE_STEPS // 25) * per["logging_per_record_s"]
        + other
        + guard
        + input_wait
    )
    return round(steps / (steps + overhead), 4)


def _op_types(run_dir, top=12):
    """Self time of the traced ops by type, in ms and as shares, the `top` largest then the rest."""
    from tensorflow.python.profiler.internal import _pywrap_profiler_plugin

    paths = glob.glob(
        os.path.join(run_dir, "tensorboard", "plugins", "profile", "*", "*.xplane.pb")
    )
    if not paths:
        return None
    data, ok = _pywrap_profiler_plugin.xspace_to_tools_data(paths, "framework_op_stats", {})
    if not ok:
        return None
    table = json.loads(data)[0]
    columns = [column["id"] for column in table["cols"]]
    by_type = {}
    for row in table["rows"]:
        cells = (cell.get("v") if cell else None for cell in row["c"])
        values = dict(zip(columns, cells, strict=True))
        if values.get("type") in (None, "IDLE"):
            continue
        by_type[values["type"]] = by_type.get(values["type"], 0) + values["total_self_time"]
    total = sum(by_type.values())
    ranked = sorted(by_type.items(), key=lambda item: -item[1])
    rows = {name: micros for name, micros in ranked[:top]}
    if len(ranked) > top:
        rows["(other op types)"] = sum(micros for _, micros in ranked[top:])
    return {
        "total_self_ms": round(total / 1000, 1),
        "self_ms": {name: round(micros / 1000, 1) for name, micros in rows.items()},
        "shares": {name: round(micros / total, 4) for name, micros in rows.items()},
    }


def summary(results):
    shares = results["timing"]["phase_shares"]
    lines = [f"{name}: {share:.1%}" for name, share in sorted(shares.items(), key=lambda i: -i[1])]
    lines += [
        f"projected {k}: {v:.1%} in steps" for k, v in results["projected_step_share"].items()
    ]
    return "\n".join(lines)


def plot(results, path):
    figure, axes = pyplot().subplots(1, 2, figsize=(14, 4.5))
    shares = sorted(results["timing"]["phase_shares"].items(), key=lambda item: -item[1])
    axes[0].barh([name for name, _ in shares][::-1], [100 * v for _, v in shares][::-1])
    axes[0].set(
        title=f"wall time of a {results['steps']}-step run by phase "
        f"({results['timing']['wall_seconds']:.0f} s)",
        xlabel="% of wall time",
    )
    ops = results.get("op_types")
    if ops:
        names = list(ops["shares"])
        axes[1].barh(names[::-1], [100 * ops["shares"][n] for n in names][::-1], color="C1")
        first, last = results["profiled_steps"]
        axes[1].set(
            title=f"tf.profiler: self time by op type, steps {first}-{last}", xlabel="% of op time"
        )
    figure.tight_layout()
    save_figure(figure, path)


BENCHMARK = Benchmark(
    name="profile_bench",
    doc=__doc__,
    measure=measure,
    plot=plot,
    add_arguments=add_arguments,
    summary=summary,
)

if __name__ == "__main__":
    sys.exit(BENCHMARK.main())
