"""Reruns every benchmark of the project, then rewrites the README's results tables.

    .venv/bin/python -m bench                      # everything: about 6 hours on 2 cores
    .venv/bin/python -m bench --only vocoder synthesis
    .venv/bin/python -m bench --quick              # each benchmark's smoke mode, to a temp dir

Each benchmark runs in its own Python process, one after another, so none
times another's start-up or shares the CPU with it. The quality study and
the training and profile benchmarks need the 1,600-clip flite corpus of the
slt voice, the convergence study (about 2.5 hours) and the neural vocoder's
quality benchmark (`vocoder_quality`) that one and the rms voice's; they are built and prepared first when missing,
and prepared again when an older text frontend made their tokens
(`data/make_corpus.py`, `mmae prepare --set data.store_audio=true`: the
vocoder's rows need the recordings, the acoustic benchmarks ignore them).
A full run ends with `bench.summary`, which rewrites the tables in README.md
from bench/results/*.json. Long runs resume: rerunning the same command
continues the quality study where it stopped.

`vocoder_quality` measures the vocoder run `runs/vocoder2v`, and
`vocoder_finetune` fine-tunes it (on the log-mels of the quality study's
`joint` run, about 1.2 hours): this command does not make that run. `bash
scripts/make_bundled_vocoder.sh` does (about 2.5 hours of both cores from
nothing; it also packs the bundled vocoder into mmae/assets/ again, and it
cannot run while a training holds the run). Without that run's checkpoints
`python -m bench` stops before starting anything, with that command in its
message; `--only` without the two needs no run. The vocoder quality
benchmark may run while the vocoder still trains: it measures the newest
checkpoint. `--quick` leaves out the three studies of trained models
(`quality`, `vocoder_quality`, `vocoder_finetune`). `frontend` measures the
bundled text frontend against espeak-ng (a few minutes; the King James Bible
of its second text comes from `sudo apt-get install bible-kjv`).
"""

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCHMARKS = (
    "data",
    "train",
    "profile",
    "vocoder",
    "synthesis",
    "quality",
    "convergence",
    "vocoder_architecture",
    "vocoder_quality",
    "vocoder_finetune",
    "frontend",
    "serve",
)
# Built and prepared when missing: {voice: (corpus, prepared)}, and the benchmarks using each.
VOICES = {
    "slt": (os.path.join("corpora", "slt1600"), os.path.join("prepared", "slt1600")),
    "rms": (os.path.join("corpora", "rms1600"), os.path.join("prepared", "rms1600")),
}
VOICES_OF = {
    "train": ("slt",),
    "profile": ("slt",),
    "quality": ("slt",),
    "convergence": ("slt", "rms"),
    "vocoder_quality": ("slt", "rms"),
    "vocoder_finetune": ("slt", "rms"),
}
# The benchmarks that read the recordings stored in the prepared records.
NEED_RECORDINGS = ("vocoder_quality", "vocoder_finetune")
PREPARED = VOICES["slt"][1]
VOCODER_RUN = os.path.join("runs", "vocoder2v")
# The quality study's joint run (the bundled acoustic model's recipe, with its aligner).
ACOUSTIC_RUN = os.path.join("bench", "work", "quality", "joint")


def commands(quick, out_dir):
    """{name: [argv, ...]}: the commands of each benchmark, in order."""
    python = sys.executable
    if quick:
        out = ["--out", out_dir]
        return {
            "data": [[python, "-m", "bench.data_bench", "--quick", *out]],
            "train": [[python, "-m", "bench.train_bench", "--quick", *out]],
            "vocoder": [[python, "-m", "bench.vocoder_bench", "--quick", *out]],
            "synthesis": [[python, "-m", "bench.synthesis_bench", "--quick", *out]],
            "vocoder_architecture": [
                [python, "-m", "bench.vocoder_architecture_bench", "--quick", *out]
            ],
            "frontend": [[python, "-m", "bench.frontend_bench", "--quick", *out]],
            "serve": [[python, "-m", "bench.serve_bench", "--quick", *out]],
        }
    voices = [f"{voice}={prepared}" for voice, (_, prepared) in VOICES.items()]
    return {
        "data": [[python, "-m", "bench.data_bench"]],
        "train": [[python, "-m", "bench.train_bench", "--data", PREPARED]],
        "profile": [[python, "-m", "bench.profile_bench", "--data", PREPARED]],
        "vocoder": [[python, "-m", "bench.vocoder_bench"]],
        "synthesis": [[python, "-m", "bench.synthesis_bench"]],
        "quality": [[python, "-m", "bench.quality_bench", "--data", PREPARED, "--minutes", "30"]],
        "convergence": [[python, "-m", "bench.convergence_bench", "--voices", *voices]],
        "vocoder_architecture": [[python, "-m", "bench.vocoder_architecture_bench"]],
        "vocoder_quality": [
            [python, "-m", "bench.vocoder_quality_bench", "--run", VOCODER_RUN]
            + ["--voices", *voices]
        ],
        "vocoder_finetune": [
            [python, "-m", "bench.vocoder_finetune_bench", "--acoustic-run", ACOUSTIC_RUN]
            + ["--vocoder-run", VOCODER_RUN, "--data", PREPARED, "--other-voice", VOICES["rms"][1]]
        ],
        "frontend": [[python, "-m", "bench.frontend_bench"]],
        "serve": [[python, "-m", "bench.serve_bench"]],
    }


def corpus_commands(voice, recordings=True):
    """The commands that build and prepare a voice's 1,600-clip corpus, as far as it is missing.

    Always prepared with the recordings; with `recordings`, a directory
    prepared without them is prepared again.
    """
    python = sys.executable
    corpus, prepared = VOICES[voice]
    steps = []
    if not os.path.exists(os.path.join(REPO, corpus, "metadata.csv")):
        steps.append(
            [python, "data/make_corpus.py", corpus, "--num-clips", "1600", "--voices", voice]
            + ["--skip-first", "260", "--format", "flac"]
        )
    info = os.path.join(REPO, prepared, "dataset.json")
    exists = os.path.exists(info)
    if not exists or (recordings and not _stores_audio(info)) or _older_frontend(info):
        steps.append(
            [python, "-m", "mmae.cli", "prepare", corpus, prepared, "--config", "flite16k"]
            + ["--set", "data.store_audio=true"]
            + (["--overwrite"] if exists else [])
        )
    return steps


def _older_frontend(dataset_json):
    """Whether the data's tokens came from another text frontend version (training refuses it)."""
    from mmae.text.rules import FRONTEND_VERSION

    with open(dataset_json, encoding="utf-8") as f:
        return json.load(f)["config"]["text"].get("frontend", 1) != FRONTEND_VERSION


def _stores_audio(dataset_json):
    with open(dataset_json, encoding="utf-8") as f:
        return bool(json.load(f)["config"]["data"].get("store_audio"))


def missing_prerequisites(names):
    """What the chosen benchmarks need and this command does not make, with how to make it."""
    missing = []
    vocoder_users = [name for name in ("vocoder_quality", "vocoder_finetune") if name in names]
    if vocoder_users and not glob.glob(
        os.path.join(REPO, VOCODER_RUN, "checkpoints", "ckpt-*.index")
    ):
        missing.append(
            f"{' and '.join(vocoder_users)} start from the vocoder run {VOCODER_RUN}, which has "
            "no checkpoint: make it first with `bash scripts/make_bundled_vocoder.sh` (about 2.5 "
            "hours of both cores), or leave them out (--only ...)."
        )
    if (
        "vocoder_finetune" in names
        and "quality" not in names
        and not glob.glob(os.path.join(REPO, ACOUSTIC_RUN, "checkpoints", "ckpt-*.index"))
    ):
        missing.append(
            f"vocoder_finetune fine-tunes on the log-mels of the acoustic run {ACOUSTIC_RUN}, "
            "which the quality study makes: add quality to --only."
        )
    return missing


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, help="run only these")
    parser.add_argument(
        "--quick", action="store_true", help="smoke mode, results to --out, README untouched"
    )
    parser.add_argument("--out", help="where --quick writes (default: a temporary directory)")
    args = parser.parse_args(argv)
    out_dir = args.out or (tempfile.mkdtemp(prefix="mmae-bench-") if args.quick else None)
    plan = commands(args.quick, out_dir)
    names = [name for name in (args.only or BENCHMARKS) if name in plan]
    missing = missing_prerequisites(names)
    if missing:
        parser.exit(2, "".join(f"[bench] {line}\n" for line in missing))
    if not args.quick:
        # Each corpus is built by the first benchmark that uses it.
        recordings = {v for name in names if name in NEED_RECORDINGS for v in VOICES_OF[name]}
        built = set()
        for name in names:
            voices = [voice for voice in VOICES_OF.get(name, ()) if voice not in built]
            built.update(voices)
            steps = [step for v in voices for step in corpus_commands(v, v in recordings)]
            plan[name] = steps + plan[name]
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
    timings = {}
    for name in names:
        started = time.time()
        for command in plan[name]:
            print(f"[bench] {name}: {' '.join(command[1:])}", flush=True)
            subprocess.run(command, cwd=REPO, env=environment, check=True)
        timings[name] = time.time() - started
    if not args.quick:
        subprocess.run([sys.executable, "-m", "bench.summary"], cwd=REPO, check=True)
    for name, seconds in timings.items():
        print(f"[bench] {name}: {seconds / 60:.1f} min")
    if args.quick:
        print(f"[bench] results in {out_dir}")


if __name__ == "__main__":
    main()
