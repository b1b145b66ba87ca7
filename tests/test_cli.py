"""The `mmae` command as a new user meets it, and its progress bars."""

import io
import re
import subprocess
import sys

import tqdm.std

from conftest import run_mmae
from mmae import cli
from mmae.progress import progress_bar

# Any line of TensorFlow's C++ logging, or absl's notice before it starts.
TENSORFLOW_LOG_LINE = re.compile(
    r"^(?:[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+ |WARNING: All log messages before absl)", re.MULTILINE
)
# What TensorFlow 2.21 prints on a machine without a GPU (captured there).
NOISE = {
    "absl": "WARNING: All log messages before absl::InitializeLog() is called are written to "
    "STDERR\n",
    "onednn": "I0000 00:00:1795934618.266125    3853 port.cc:153] oneDNN custom operations are "
    "on. You may see slightly different numerical results due to floating-point round-off "
    "errors from different computation orders. To turn them off, set the environment variable "
    "`TF_ENABLE_ONEDNN_OPTS=0`.\n",
    "no_cuda": "I0000 00:00:1795934618.266924    3853 cudart_stub.cc:31] Could not find cuda "
    "drivers on your machine, GPU will not be used.\n",
    "cuinit": "E0000 00:00:1795934621.464279    3853 cuda_platform.cc:52] failed call to cuInit: "
    "INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)\n",
    "int32": "E0000 00:00:1795934622.685265    3853 util.cc:131] oneDNN supports DT_INT32 only "
    "on platforms with AVX-512. Falling back to the default Eigen-based implementation if "
    "present.\n",
}
REAL_ERROR = "E0000 00:00:1795934622.685300    3853 bfc_allocator.cc:485] Out of memory\n"


def test_help_and_synthesize_print_no_tensorflow_start_up_lines(tmp_path):
    shown = run_mmae("--help", cwd=tmp_path)
    assert shown.returncode == 0 and "synthesize" in shown.stdout
    assert not TENSORFLOW_LOG_LINE.search(shown.stderr), shown.stderr

    wav = tmp_path / "hello.wav"
    spoken = run_mmae("synthesize", "Hello.", "-o", str(wav), cwd=tmp_path)
    assert spoken.returncode == 0, spoken.stderr
    assert "Wrote 1 file(s)" in spoken.stdout and wav.stat().st_size > 1000
    assert not TENSORFLOW_LOG_LINE.search(spoken.stderr), spoken.stderr


def test_only_known_harmless_lines_are_dropped():
    text = "".join(NOISE.values()) + REAL_ERROR
    without_gpu = re.compile(cli._noise_pattern(has_nvidia_driver=False))
    assert without_gpu.sub("", text) == REAL_ERROR
    # With a driver, the CUDA lines tell why the GPU is not used: they stay.
    with_gpu = re.compile(cli._noise_pattern(has_nvidia_driver=True))
    assert with_gpu.sub("", text) == NOISE["no_cuda"] + NOISE["cuinit"] + REAL_ERROR


def test_real_errors_reach_the_user_even_when_the_command_aborts():
    # A failed C++ check logs, then aborts: the filter, a separate process,
    # still passes the line on.
    script = (
        "import os, sys\n"
        "from mmae.cli import _without_tensorflow_noise\n"
        "with _without_tensorflow_noise():\n"
        "    print('from Python', file=sys.stderr)\n"
        f"    os.write(2, {(NOISE['int32'] + REAL_ERROR).encode()!r})\n"
        "    os.abort()\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert run.returncode != 0
    assert sorted(run.stderr.splitlines()) == sorted(["from Python", REAL_ERROR.strip()])


class _Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_progress_bar_estimates_only_after_warm_up(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr(tqdm.std, "time", clock)
    bar = progress_bar(total=101, unit="clip", file=io.StringIO(), mininterval=0)
    clock.now += 60  # the first item traces and compiles
    bar.update(1)
    assert "[01:00<?, ?clip/s]" in str(bar)
    for _ in range(10):
        clock.now += 0.125
        bar.update(1)
    # 90 left at 8 clips/s, not the 90 minutes the first item alone suggests.
    assert "[01:01<00:11,  8.00clip/s]" in str(bar)
    bar.close()


def test_progress_bar_warm_up_counts_from_initial_and_works_unsmoothed(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr(tqdm.std, "time", clock)
    bar = progress_bar(
        total=100, initial=50, warmup=2, smoothing=0, file=io.StringIO(), mininterval=0
    )
    for _ in range(2):  # two workers warm up
        clock.now += 30
        bar.update(1)
        assert "<?, ?it/s]" in str(bar)
    clock.now += 0.5
    bar.update(2)
    assert "54/100 [01:00<00:11,  4.00it/s]" in str(bar)
    bar.close()
    assert list(progress_bar(range(3), disable=True)) == [0, 1, 2]
