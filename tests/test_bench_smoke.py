"""The data benchmark runs end to end in its --quick mode and writes what it promises."""

import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_data_bench_quick_writes_json_and_plot(tmp_path):
    completed = subprocess.run(
        [sys.executable, "-m", "bench.data_bench", "--quick", "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    with open(tmp_path / "data_bench.json", encoding="utf-8") as f:
        results = json.load(f)
    assert (tmp_path / "data_bench.png").stat().st_size > 10_000

    for key in ("command", "date", "machine", "prepare", "mel", "pipeline", "notes"):
        assert key in results
    assert results["quick"] is True
    assert "--quick" in results["command"] and "bench.data_bench" in results["command"]
    for key in ("cpu_count", "platform", "tensorflow"):
        assert results["machine"][key]

    prepare = results["prepare"]
    for jobs in ("jobs1", "jobs2"):
        assert prepare[jobs]["clips_per_s"] > 0
        assert prepare[jobs]["audio_s_per_s"] > 0
    assert prepare["speedup_jobs2_over_jobs1"] > 0

    methods = results["mel"]["methods"]
    assert set(methods) >= {"librosa", "eager", "tf_function", "xla_batched", "tf_data_map"}
    for entry in methods.values():
        assert entry["ms_per_clip"] > 0 and entry["x_real_time"] > 0
        assert entry["speedup_vs_librosa"] > 0
        # Every method computes the same features (float32 FFT rounding aside).
        assert entry["max_abs_diff_vs_librosa_mel_above_1e-3"] < 1e-3

    sample = results["pipeline"]["sample"]
    for key in ("batches_per_s", "clips_per_s", "mel_frames_per_s"):
        assert sample[key] > 0
    step = results["training_step"]
    assert step["mel_frames_per_s"] > 0 and step["steps_per_s"] > 0
    assert step["pipeline_over_step_frames_ratio"] == pytest.approx(
        sample["mel_frames_per_s"] / step["mel_frames_per_s"], rel=0.01
    )


def test_train_bench_quick_writes_json_and_plot(tmp_path):
    from mmae.config import Config
    from mmae.datasets.prepare import prepare

    data = str(tmp_path / "prepared")
    prepare(os.path.join(REPO, "data", "sample"), data, Config.load("flite16k"), progress=False)
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.train_bench",
            "--quick",
            "--data",
            data,
            "--out",
            str(tmp_path),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = json.loads((tmp_path / "train_bench.json").read_text())
    (bucket,) = results["buckets"]
    assert bucket["graph"]["flops_per_step"] > 0 and results["matmul"]["gflops_per_s"] > 0
    for mode in ("graph", "xla"):
        assert bucket[mode]["seconds_per_step"] > 0
        assert 0 < bucket[mode]["utilization_percent"] < 100
    assert (tmp_path / "train_bench.png").stat().st_size > 10_000


def test_synthesis_bench_quick_times_every_method(tmp_path):
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.synthesis_bench",
            "--quick",
            "--no-saved-model",
            "--out",
            str(tmp_path),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    with open(tmp_path / "synthesis_bench.json", encoding="utf-8") as f:
        results = json.load(f)
    assert (tmp_path / "synthesis_bench.png").stat().st_size > 10_000
    assert results["sentences"] == 4 and results["audio_seconds"] > 1
    parts = {name.split("/")[1] for name in results["rows"]}
    assert parts == {"acoustic", "vocoder", "end_to_end"}
    for row in results["rows"].values():
        assert row["x_real_time"] > 0
        assert row["real_time_factor"] == pytest.approx(
            row["median_seconds"] / results["audio_seconds"], rel=0.01, abs=1e-5
        )
