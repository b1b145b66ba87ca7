"""Where a benchmark's numbers come from: the command, the machine and the commit."""

import os
import platform
import shlex
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def command_line(module, argv=None):
    """The command that reproduces a run, with the interpreter relative to the repo.

    `argv` is the benchmark's arguments (default: this process's).
    """
    argv = sys.argv[1:] if argv is None else argv
    python = sys.executable
    if python.startswith(REPO + os.sep):
        python = os.path.relpath(python, REPO)
    return shlex.join([python, "-m", module, *argv])


def machine_info():
    import keras
    import librosa
    import numpy as np
    import tensorflow as tf

    info = {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "librosa": librosa.__version__,
        "gpus": [device.name for device in tf.config.list_physical_devices("GPU")],
    }
    if hasattr(os, "getloadavg"):
        info["load_average_1_5_15_min_at_start"] = [round(x, 2) for x in os.getloadavg()]
    try:
        pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        info["memory_gib"] = round(pages * page_size / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    return info


def cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def git_commit():
    return _git("rev-parse", "HEAD")


def git_dirty():
    """Whether the working tree differs from the commit (the numbers may come from edits)."""
    status = _git("status", "--porcelain")
    return None if status is None else bool(status)


def _git(*args):
    try:
        completed = subprocess.run(
            ["git", *args], capture_output=True, text=True, cwd=REPO, check=True
        )
        return completed.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
