"""The frame every benchmark runs in: its options, provenance, timing and output files.

A benchmark declares its own options and measurements as a `Benchmark`, and
`Benchmark.main` does the rest:

    BENCHMARK = Benchmark(
        name="vocoder_bench",  # the module bench.vocoder_bench
        doc=__doc__,
        measure=measure,  # measure(args) -> {key: numbers}
        plot=plot,  # plot(results, path)
        quick="2 clips, 4 iterations (smoke test)",
    )

    if __name__ == "__main__":
        sys.exit(BENCHMARK.main())

Every run writes `<name>.json` and `<name>.png` to `--out` (default
bench/results/). The JSON starts with where its numbers come from
(`benchmark`, `command`, `date`, `quick`, `machine`, `git_commit`,
`git_worktree_dirty`), then holds the measurements, then `total_seconds`,
the load average at the end in `machine`, and the benchmark's `notes`.

Only the standard library is imported here (TensorFlow when the run starts,
matplotlib when it plots), so that importing a benchmark stays cheap.
"""

import argparse
import dataclasses
import datetime
import json
import os
import sys
import time
from collections.abc import Callable

from bench.provenance import REPO, command_line, git_commit, git_dirty, machine_info

RESULTS = os.path.join(REPO, "bench", "results")


@dataclasses.dataclass(frozen=True)
class Benchmark:
    """What one benchmark declares; `main` parses, records, times and writes.

    Args:
        name: the benchmark's module is `bench.<name>`; it writes `<name>.json`
            and `<name>.png`.
        doc: the module's docstring; its first line describes the command in `--help`.
        measure: `measure(args) -> dict`: the measurements, stored after the provenance.
        plot: `plot(results, path)`: draws the results into the PNG file `path`.
        quick: the help of the `--quick` smoke mode; None: the benchmark has none
            (and its results no `quick` key).
        add_arguments: `add_arguments(parser)` adds the benchmark's own options.
        notes: `notes(results) -> [str]`, stored as `notes` once everything is measured.
        summary: `summary(results) -> str`, printed to stdout at the end.
        command_args: `command_args(args) -> [str]`, the options recorded in `command`
            when they are not the ones given (some options only resume or report).
    """

    name: str
    doc: str
    measure: Callable
    plot: Callable
    quick: str | None = None
    add_arguments: Callable | None = None
    notes: Callable | None = None
    summary: Callable | None = None
    command_args: Callable | None = None

    def parse_args(self, argv=None):
        parser = argparse.ArgumentParser(
            prog=f"python -m bench.{self.name}", description=self.doc.strip().splitlines()[0]
        )
        if self.quick is not None:
            parser.add_argument("--quick", action="store_true", help=self.quick)
        parser.add_argument(
            "--out", default=RESULTS, help="results directory (default: bench/results)"
        )
        if self.add_arguments is not None:
            self.add_arguments(parser)
        return parser.parse_args(argv)

    def main(self, argv=None):
        """Runs the benchmark with the command line `argv` (default: this process's)."""
        args = self.parse_args(argv)
        # TensorFlow's C++ start-up chatter would bury the progress lines; errors still show.
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        # An unwritable --out fails now, not after an hour of measuring.
        os.makedirs(args.out, exist_ok=True)
        started = time.perf_counter()
        results = {
            "benchmark": self.name,
            "command": command_line(
                f"bench.{self.name}", self.command_args(args) if self.command_args else argv
            ),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }
        if self.quick is not None:
            results["quick"] = args.quick
        results["machine"] = machine_info()
        results["git_commit"] = git_commit()
        results["git_worktree_dirty"] = git_dirty()
        results.update(self.measure(args))
        results["total_seconds"] = round(time.perf_counter() - started, 1)
        if hasattr(os, "getloadavg"):
            # Other work on the machine shows here, beside the load at the start.
            results["machine"]["load_average_1_5_15_min_at_end"] = [
                round(x, 2) for x in os.getloadavg()
            ]
        if self.notes is not None:
            results["notes"] = self.notes(results)
        json_path, plot_path = write_results(args.out, self.name, results, self.plot)
        logger(self.name)(f"wrote {os.path.relpath(json_path)} and {os.path.relpath(plot_path)}")
        if self.summary is not None:
            print(self.summary(results))
        return 0


def write_results(out_dir, name, results, plot):
    """Writes `<name>.json` and, through `plot(results, path)`, `<name>.png`; returns both paths."""
    os.makedirs(out_dir, exist_ok=True)
    json_path = os.path.join(out_dir, f"{name}.json")
    with open(json_path, "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)
        f.write("\n")
    plot_path = os.path.join(out_dir, f"{name}.png")
    plot(results, plot_path)
    return json_path, plot_path


def logger(name):
    """A `log(message)` that writes `[name] message` to stderr: progress, not results."""

    def log(message):
        print(f"[{name}] {message}", file=sys.stderr, flush=True)

    return log


def time_in_rotation(methods, repeats, log=None):
    """Runs each of `methods` once to warm up, then `repeats` timed passes in rotation.

    Each pass runs every method once, starting one method later than the pass
    before, so that a burst of load from elsewhere on a shared machine hits
    every method alike instead of all passes of one.

    Args:
        methods: {name: a callable without arguments}, in the order of the first pass.
        repeats: how many timed passes.
        log: optional `log(message)` for progress lines.

    Returns:
        (outputs, first_pass_seconds, seconds): dicts by name of what each
        method returned in its warm-up pass (the pass that traces, compiles
        and fills caches), how long that pass took, and the list of its timed
        passes' seconds.
    """
    names = list(methods)
    outputs, first_pass = {}, {}
    for name in names:
        if log is not None:
            log(f"  warm-up {name}")
        start = time.perf_counter()
        outputs[name] = methods[name]()
        first_pass[name] = time.perf_counter() - start
    seconds = {name: [] for name in names}
    for repeat in range(repeats):
        shift = repeat % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            methods[name]()
            seconds[name].append(time.perf_counter() - start)
        if log is not None:
            log(f"  repeat {repeat + 1}/{repeats} done")
    return outputs, first_pass, seconds


def librosa_framing(audio, center=None):
    """librosa's STFT arguments for the framing of `audio` (an `AudioConfig`), zero-padded.

    The reference the project's `tf.signal` features and vocoder are compared with.
    """
    return dict(
        n_fft=audio.fft_length,
        hop_length=audio.frame_step,
        win_length=audio.frame_length,
        window="hann",
        center=audio.center if center is None else center,
        pad_mode="constant",
    )


def librosa_mel_scale(audio):
    """librosa's mel filter arguments for `audio`: its bands, edges, scale and normalization."""
    return dict(
        sr=audio.sample_rate,
        n_mels=audio.num_mels,
        fmin=audio.lower_edge_hertz,
        fmax=audio.upper_edge_hertz,
        htk=audio.mel_scale == "htk",
        norm="slaney",
    )


def bar_panel(axes, names, values, headroom):
    """Horizontal log-scale bars of `values`, librosa's grey, ours green; returns the positions.

    Args:
        headroom: the x axis ends at `max(values) * headroom`, to leave room for labels.
    """
    colors = ["#8c8c8c" if n.startswith("librosa") else "#55a868" for n in names]
    positions = range(len(names))
    axes.barh(positions, values, color=colors)
    axes.set_yticks(list(positions), names)
    axes.invert_yaxis()
    axes.set_xscale("log")
    axes.set_xlim(min(values) / 2, max(values) * headroom)
    return positions


def pyplot():
    """matplotlib.pyplot on the Agg backend: benchmarks draw to files, never to a screen."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(figure, path, dpi=110):
    """Lays out `figure`, writes it to `path` and frees it."""
    import matplotlib.pyplot as plt

    figure.tight_layout()
    figure.savefig(path, dpi=dpi)
    plt.close(figure)
