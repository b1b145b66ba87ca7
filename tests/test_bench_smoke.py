"""Each benchmark runs end to end in its --quick mode and writes what it promises."""

import json
import os
import statistics
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
    # --quick prepares the first 8 sample clips once per jobs setting, and keeps them all.
    assert prepare["num_clips"] == prepare["num_kept"] == 8
    for jobs in ("jobs1", "jobs2"):
        entry = prepare[jobs]
        assert len(entry["seconds"]) == 1 and entry["median_s"] == entry["seconds"][0]
        # 5%: the median is stored rounded to the millisecond, and a quick call
        # takes tens of milliseconds.
        assert entry["clips_per_s"] == pytest.approx(8 / entry["median_s"], rel=0.05)
        assert entry["audio_s_per_s"] == pytest.approx(
            prepare["source_audio_s"] / entry["median_s"], rel=0.05
        )
    assert prepare["speedup_jobs2_over_jobs1"] == pytest.approx(
        prepare["jobs1"]["median_s"] / prepare["jobs2"]["median_s"], rel=0.01
    )

    mel = results["mel"]
    methods = mel["methods"]
    assert mel["num_clips"] == 6
    assert set(methods) >= {"librosa", "eager", "tf_function", "xla_batched", "tf_data_map"}
    for entry in methods.values():
        assert len(entry["pass_seconds"]) == mel["repeats"]
        # The same median pass seen three ways; 1%: audio_s is stored to 0.1 s
        # (of about 15 s), the speed-up to two decimals.
        seconds = entry["ms_per_clip"] * mel["num_clips"] / 1000
        assert entry["x_real_time"] == pytest.approx(mel["audio_s"] / seconds, rel=0.01)
        assert entry["speedup_vs_librosa"] == pytest.approx(
            methods["librosa"]["ms_per_clip"] / entry["ms_per_clip"], rel=0.01, abs=0.005
        )
        # Every method computes the same features (float32 FFT rounding aside).
        assert entry["max_abs_diff_vs_librosa_mel_above_1e-3"] < 1e-3

    pipeline = results["pipeline"]
    sample = pipeline["sample"]
    assert pipeline["bigger_corpus"] == {"skipped": "--quick"}
    # It reads the corpus part 1 prepared (some clips are held out of the train split).
    assert 0 < sample["train_clips"] <= prepare["num_kept"]
    assert sample["timed_batches"] == 5 and len(sample["repeat_seconds"]) == 1
    # 1%: both factors are stored to 0.1, of values near 50 and 100.
    assert sample["clips_per_s"] == pytest.approx(
        sample["batches_per_s"] * sample["mean_batch_clips"], rel=0.01
    )
    # Real frames are counted inside the padded ones.
    assert 0 < sample["padding_efficiency"] <= 1
    assert sample["mel_frames_per_s"] == pytest.approx(
        sample["padded_frames_per_s"] * sample["padding_efficiency"], rel=0.01
    )

    step = results["training_step"]
    assert step["steps"] == 4
    assert step["pipeline_over_step_frames_ratio"] == pytest.approx(
        sample["mel_frames_per_s"] / step["mel_frames_per_s"], rel=0.01
    )
    # The trainer reads the same bucketed train split, and the buckets are
    # scaled so that every batch holds about as many frames (0.8 to 1.25x of
    # one another): a step consumes about what a pipeline batch delivers.
    frames_per_step = step["mel_frames_per_s"] / step["steps_per_s"]
    frames_per_batch = sample["mel_frames_per_s"] / sample["batches_per_s"]
    assert 0.67 < frames_per_step / frames_per_batch < 1.5


def test_train_bench_quick_writes_json_and_plot(tmp_path):
    from mmae.config import Config
    from mmae.datasets.prepare import prepare

    data = str(tmp_path / "prepared")
    prepare(os.path.join(REPO, "data", "sample"), data, Config.load("flite16k"), progress=False)
    results = run_bench("train_bench", tmp_path, "--data", data)
    (bucket,) = results["buckets"]
    # The peaks are timed in the steps' rotation: 2 passes (--quick) per bucket.
    for matmul in (results["matmul"], bucket["matmul"], bucket["matmul_bfloat16"]):
        assert matmul["timed"] == 2
        # 1%: the matmul's seconds are stored to 0.1 ms, of about 0.1 s on a CPU.
        assert matmul["gflops_per_s"] == pytest.approx(
            2 * matmul["size"] ** 3 / matmul["seconds"] / 1e9, rel=0.01
        )
    flops = bucket["graph"]["flops_per_step"]
    assert flops > 0
    assert bucket["real_frames"] <= bucket["batch_shape"][0] * bucket["batch_shape"][1]
    assert results["matmul_bfloat16"]["dtype"] == "bfloat16"
    assert "xla" not in bucket  # the smoke mode leaves XLA's compile out
    for mode in ("graph", "relaxed", "bfloat16", "keras_dropout"):
        timing = bucket[mode]
        assert len(timing["step_seconds"]) == 2  # --quick times 2 steps
        # abs: every number here is stored rounded (to 0.1 ms, and 0.01 GFLOP/s).
        assert timing["seconds_per_step"] == pytest.approx(
            statistics.median(timing["step_seconds"]), abs=1e-4
        )
        assert timing["gflops_per_s"] == pytest.approx(
            flops / timing["seconds_per_step"] / 1e9, abs=0.01
        )
        assert 0 < timing["utilization_percent"] < 100
    for mode in ("relaxed", "bfloat16"):
        assert bucket[f"{mode}_speedup"] == pytest.approx(
            bucket["graph"]["seconds_per_step"] / bucket[mode]["seconds_per_step"], abs=1e-3
        )


def test_synthesis_bench_quick_times_every_method(tmp_path):
    results = run_bench("synthesis_bench", tmp_path, "--no-saved-model")
    assert results["sentences"] == 4 and results["audio_seconds"] > 1
    parts = {name.split("/")[1] for name in results["rows"]}
    assert parts == {"acoustic", "vocoder", "end_to_end"}
    rows = results["rows"]
    for row in rows.values():
        assert len(row["seconds"]) == 1 and row["median_seconds"] == row["seconds"][0]
        # 1%: the median is stored to 0.1 ms, of tens of milliseconds or more.
        assert row["x_real_time"] == pytest.approx(
            results["audio_seconds"] / row["median_seconds"], rel=0.01
        )
        assert row["real_time_factor"] == pytest.approx(
            row["median_seconds"] / results["audio_seconds"], rel=0.01, abs=1e-5
        )
    # No comparison of the timings themselves: one timing of each on a busy
    # machine can put end to end below the acoustic model alone (it did, in CI).
    for batch in ("batch1", "batch16"):
        for part in ("acoustic", "vocoder", "end_to_end"):
            assert f"python/{part}/{batch}" in rows


def test_vocoder_bench_quick_writes_json_and_plot(tmp_path):
    results = run_bench("vocoder_bench", tmp_path)

    for key in ("command", "date", "machine", "git_commit", "clips", "methods", "notes"):
        assert key in results
    assert results["quick"] is True
    assert "--quick" in results["command"] and "bench.vocoder_bench" in results["command"]
    for key in ("cpu_count", "platform", "tensorflow", "librosa", "load_average_1_5_15_min_at_end"):
        assert results["machine"][key]
    clips = results["clips"]
    assert clips["num_clips"] == 2 and results["num_iterations"] == 4
    recognition = results["speech_recognition"]
    assert set(recognition) == {"recognizer", "original", "librosa", "tf_graph_batch1"}
    # PocketSphinx gets most words of the two recordings (WER 0.38: 5 of 13
    # wrong); audio that is silent, or of other clips than the texts, scores 1.
    assert recognition["original"]["wer"] < 0.6
    # Our Griffin-Lim is speech too, even after 4 iterations (0.46: one word
    # more than the recordings). librosa's starts from a random phase, so its
    # WER varies from run to run, but silence would score exactly 1.
    assert recognition["tf_graph_batch1"]["wer"] < recognition["original"]["wer"] + 0.25
    assert recognition["librosa"]["wer"] < 1.0
    for row in ("original", "tf_graph_batch1"):
        # A misheard word still shares letters with the right one (CER 0.13 and
        # 0.15 here): one rate stored for the other would fail.
        assert recognition[row]["cer"] < recognition[row]["wer"]

    methods = results["methods"]
    assert set(methods) >= {
        "librosa",
        "tf_graph_batch1",
        "tf_xla_batch1",
        "tf_graph_batched",
        "tf_xla_batched",
    }
    for entry in methods.values():
        assert len(entry["pass_seconds"]) == results["repeats"]
        # The same median pass seen three ways; 1%: the seconds are stored to
        # 10 microseconds (of several ms) and audio_s to 10 ms (of about 4.5 s).
        seconds = entry["seconds_per_utterance"] * clips["num_clips"]
        assert entry["real_time_factor"] == pytest.approx(seconds / clips["audio_s"], rel=0.01)
        assert entry["x_real_time"] == pytest.approx(clips["audio_s"] / seconds, rel=0.01)
        assert entry["speedup_vs_librosa"] == pytest.approx(
            methods["librosa"]["seconds_per_utterance"] / entry["seconds_per_utterance"],
            rel=0.01,
            abs=0.005,
        )
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
    assert "vocoder_quality_bench.json` is missing" in text
    assert "Missing results: vocoder_architecture_bench." in text
    assert "vocoder_finetune_bench.json` is missing" in text
    assert "frontend_bench.json` is missing" in text


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


def test_quality_bench_sums_wall_time_over_a_runs_calls():
    from bench.quality_bench import wall_time

    # A run that resumed: two calls, each with its own "timing" record.
    records = [
        {"phase_seconds": {"step": 80.0, "validation": 10.0, "tracing": 10.0}},
        {"phase_seconds": {"step": 90.0, "validation": 10.0}},
    ]
    wall = wall_time(records)
    assert wall["calls"] == 2 and wall["seconds"] == 200.0
    assert wall["phase_seconds"] == {"step": 170.0, "validation": 20.0, "tracing": 10.0}
    assert wall["step_share"] == 0.85
    assert wall_time([]) is None


def test_convergence_study_plans_runs_and_judges_points(tmp_path):
    from bench import convergence_bench as study

    # A run keeps its points at every budget, so a larger budget extends it.
    assert study.marks_of([30.0, 10.0]) == [10.0, 30.0]
    points = [
        {"machine_minutes": 5.0, "wer": 0.6, "wer_ratio_to_ceiling": 2.0},
        {"machine_minutes": 10.02, "wer": 0.33, "wer_ratio_to_ceiling": 1.1},
        {"machine_minutes": 30.01, "wer": 0.33, "wer_ratio_to_ceiling": 1.1},
    ]
    ceiling = {"original": {"wer": 0.27}, "vocoder_ceiling": {"wer": 0.3}}
    results = {
        "voices": {
            voice: {
                "references": ceiling,
                "variants": {
                    "baseline": {
                        "points": points,
                        "validation": [{"machine_minutes": 1.0, "mel_text": 0.7}],
                        "wall_time": {"step_share": 0.93 if voice == "slt" else 0.85},
                    }
                },
            }
            for voice in ("slt", "rms")
        }
    }
    verdicts = study.verdicts(results["voices"])
    assert verdicts["rms/baseline/10_min"]["pass"] and not verdicts["slt/baseline/30_min"]["pass"]
    assert verdicts["slt/baseline/step_share"]["pass"]
    assert not verdicts["rms/baseline/step_share"]["pass"]
    assert study.point_at(points, 20.0) is None
    study.plot(results, str(tmp_path / "convergence.png"))
    assert os.path.getsize(tmp_path / "convergence.png") > 10_000
