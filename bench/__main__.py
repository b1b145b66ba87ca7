"""Reruns every benchmark of the project, then rewrites the README's results tables.

    .venv/bin/python -m bench                      # everything: about 3 hours on 2 cores
    .venv/bin/python -m bench --only vocoder synthesis
    .venv/bin/python -m bench --quick              # each benchmark's smoke mode, to a temp dir

Each benchmark runs in its own Python process, one after another, so none
times another's start-up or shares the CPU with it. The quality study needs
the 1,600-clip flite corpus; it is built and prepared first when missing
(`data/make_corpus.py`, `mmae prepare`). A full run ends with
`bench.summary`, which rewrites the tables in README.md from
bench/results/*.json. Long runs resume: rerunning the same command
continues the quality study where it stopped.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join("corpora", "slt1600")
PREPARED = os.path.join("prepared", "slt1600")
BENCHMARKS = ("data", "train", "vocoder", "synthesis", "quality")


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
        }
    return {
        "data": [[python, "-m", "bench.data_bench"]],
        "train": [[python, "-m", "bench.train_bench", "--data", PREPARED]],
        "vocoder": [[python, "-m", "bench.vocoder_bench"]],
        "synthesis": [[python, "-m", "bench.synthesis_bench"]],
        "quality": [[python, "-m", "bench.quality_bench", "--data", PREPARED, "--minutes", "30"]],
    }


def corpus_commands():
    """The commands that build and prepare the quality corpus, if it is missing."""
    python = sys.executable
    steps = []
    if not os.path.exists(os.path.join(REPO, CORPUS, "metadata.csv")):
        steps.append(
            [python, "data/make_corpus.py", CORPUS, "--num-clips", "1600", "--voices", "slt"]
            + ["--skip-first", "260", "--format", "flac"]
        )
    if not os.path.exists(os.path.join(REPO, PREPARED, "dataset.json")):
        steps.append(
            [python, "-m", "mmae.cli", "prepare", CORPUS, PREPARED, "--config", "flite16k"]
        )
    return steps


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
    if not args.quick and {"train", "quality"} & set(names):
        # The training benchmark and the quality study share the flite corpus.
        first = next(name for name in names if name in ("train", "quality"))
        plan[first] = corpus_commands() + plan[first]
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
