"""What a training step consumes: the yardstick for the input pipeline's throughput."""

import dataclasses
import tempfile


def measure(config, settings, data_dir):
    """Mel frames per second that the real trainer consumes with the default model.

    Runs `mmae.training.train` itself (jit_compile off, so the number is not
    dominated by XLA's per-bucket compile time in a short run) and reads the
    throughput it logs; the pipeline must deliver far more than this.
    """
    from mmae.runs import read_metrics
    from mmae.training import train

    quick = settings.mel_clips < 50  # only --quick measures so few clips
    steps = 4 if quick else 40
    run_config = config.with_overrides(
        [
            f"train.steps={steps}",
            "train.log_every=5",
            "train.jit_compile=false",
            f"train.eval_every={10**9}",
            f"train.checkpoint_every={10**9}",
        ]
    )
    if quick:  # the tiny model
        run_config = run_config.with_overrides(["model.hidden_dim=32", "model.latent_dim=16"])
    with tempfile.TemporaryDirectory(prefix="mmae-step-bench-") as run_dir:
        train(run_config, data_dir, run_dir, progress=False)
        records = read_metrics(run_dir, "train")
    steady = records[1:] or records  # the first interval includes tracing
    frames_per_s = sum(r["frames_per_second"] for r in steady) / len(steady)
    steps_per_s = sum(r["steps_per_second"] for r in steady) / len(steady)
    return {
        "model": dataclasses.asdict(run_config.model),
        "steps": steps,
        "jit_compile": False,
        "steps_per_s": round(steps_per_s, 3),
        "mel_frames_per_s": round(frames_per_s),
    }
