"""The vocoder benchmark runs end to end in its --quick mode and writes what it promises."""

import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_vocoder_bench_quick_writes_json_and_plot(tmp_path):
    completed = subprocess.run(
        [sys.executable, "-m", "bench.vocoder_bench", "--quick", "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = json.loads((tmp_path / "vocoder_bench.json").read_text(encoding="utf-8"))
    assert (tmp_path / "vocoder_bench.png").stat().st_size > 10_000

    for key in ("command", "date", "machine", "git_commit", "clips", "methods", "notes"):
        assert key in results
    assert results["quick"] is True
    assert "--quick" in results["command"] and "bench.vocoder_bench" in results["command"]
    for key in ("cpu_count", "platform", "tensorflow", "librosa", "load_average_1_5_15_min_at_end"):
        assert results["machine"][key]
    assert results["clips"]["num_clips"] == 2 and results["num_iterations"] == 4

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
