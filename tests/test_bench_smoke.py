"""Each benchmark runs end to end in its --quick mode and writes what it promises."""

import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_bench(module, out_dir, *args, timeout=900):
    """Runs `python -m bench.MODULE --quick ... --out OUT_DIR`; returns its JSON results."""
    completed = subprocess.run(
        [sys.executable, "-m", f"bench.{module}", "--quick", *args, "--out", str(out_dir)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    with open(os.path.join(out_dir, f"{module}.json"), encoding="utf-8") as f:
        results = json.load(f)
    assert os.path.getsize(os.path.join(out_dir, f"{module}.png")) > 10_000
    return results


def test_data_bench_quick_writes_json_and_plot(tmp_path):
    results = run_bench("data_bench", tmp_path)

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
    results = run_bench("train_bench", tmp_path, "--data", data)
    (bucket,) = results["buckets"]
    assert bucket["graph"]["flops_per_step"] > 0 and results["matmul"]["gflops_per_s"] > 0
    for mode in ("graph", "xla"):
        assert bucket[mode]["seconds_per_step"] > 0
        assert 0 < bucket[mode]["utilization_percent"] < 100


def test_synthesis_bench_quick_times_every_method(tmp_path):
    results = run_bench("synthesis_bench", tmp_path, "--no-saved-model")
    assert results["sentences"] == 4 and results["audio_seconds"] > 1
    parts = {name.split("/")[1] for name in results["rows"]}
    assert parts == {"acoustic", "vocoder", "end_to_end"}
    for row in results["rows"].values():
        assert row["x_real_time"] > 0
        assert row["real_time_factor"] == pytest.approx(
            row["median_seconds"] / results["audio_seconds"], rel=0.01, abs=1e-5
        )


def test_vocoder_bench_quick_writes_json_and_plot(tmp_path):
    results = run_bench("vocoder_bench", tmp_path)

    for key in ("command", "date", "machine", "git_commit", "clips", "methods", "notes"):
        assert key in results
    assert results["quick"] is True
    assert "--quick" in results["command"] and "bench.vocoder_bench" in results["command"]
    for key in ("cpu_count", "platform", "tensorflow", "librosa", "load_average_1_5_15_min_at_end"):
        assert results["machine"][key]
    assert results["clips"]["num_clips"] == 2 and results["num_iterations"] == 4
    recognition = results["speech_recognition"]
    for row in ("original", "librosa", "tf_graph_batch1"):
        assert 0.0 <= recognition[row]["wer"] and 0.0 <= recognition[row]["cer"]

    methods = results["methods"]
    assert set(methods) >= {
        "librosa",
        "tf_graph_batch1",
        "tf_xla_batch1",
        "tf_graph_batched",
        "tf_xla_batched",
    }
    for entry in methods.values():
        assert entry["seconds_per_utterance"] > 0 and entry["real_time_factor"] > 0
        assert entry["speedup_vs_librosa"] > 0
    for name, entry in methods.items():
        if "spectral_convergence_mean" not in entry:
            continue
        assert entry["output_lengths_are_frames_minus_one_hops"], name
        # Even after 4 iterations every vocoder is far from a random phase
        # (about 0.65) and above the magnitude estimate's own error.
        floor = results["magnitude_estimate"]["griffin_lim_pseudo_inverse_mean"]
        assert floor < entry["spectral_convergence_mean"] < 0.55, name
        assert 0 < entry["mel_l1_mean"] < 0.35, name
    # Graph and XLA, one clip or a padded batch: the same audio.
    for name in ("tf_xla_batch1", "tf_graph_batched", "tf_xla_batched"):
        assert methods[name]["max_relative_l2_difference_vs_tf_graph_batch1"] < 1e-2


def test_bench_main_quick_runs_the_chosen_benchmarks(tmp_path):
    completed = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", "vocoder", "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert sorted(os.listdir(tmp_path)) == ["vocoder_bench.json", "vocoder_bench.png"]
    assert "[bench] vocoder:" in completed.stdout


def test_readme_summary_matches_the_committed_results():
    from bench import summary

    with open(summary.README, encoding="utf-8") as f:
        readme = f.read()
    # Out of date after a benchmark rerun: python -m bench.summary rewrites it.
    assert summary.render(summary.load_results()) in readme


def test_summary_names_missing_results(tmp_path):
    from bench import summary

    text = summary.render(summary.load_results(str(tmp_path)))
    assert "quality_bench.json` is missing" in text
    assert "Missing results: data_bench, train_bench, vocoder_bench, synthesis_bench." in text


def test_quality_study_evaluates_snapshots_and_the_last_checkpoint(tiny_run, tmp_path):
    from bench.quality_bench import checkpoints_to_evaluate
    from mmae.config import Config
    from mmae.training import train

    data_dir, _ = tiny_run
    run_dir = str(tmp_path / "run")
    config = Config.load("tiny", overrides=["train.steps=3", "train.log_every=1"])
    train(config, data_dir, run_dir, progress=False, snapshot_cpu_s=[1e-9])
    found = checkpoints_to_evaluate(run_dir)
    assert [(name, os.path.relpath(path, run_dir)) for name, path, _ in found] == [
        ("ckpt-1", os.path.join("snapshots", "ckpt-1")),
        ("ckpt-3", os.path.join("checkpoints", "ckpt-3")),
    ]
    assert all(record["cpu_seconds"] > 0 for *_, record in found)
