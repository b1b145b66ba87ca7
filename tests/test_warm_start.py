"""Starting an acoustic run from another model's weights (`mmae train --init-from`)."""

import json
import os
import shutil

import numpy as np
import pytest

from conftest import run_mmae
from mmae import pretrained, runs
from mmae.config import Config
from mmae.datasets.prepare import load_dataset_info
from mmae.training.warm_start import warm_start_model_fn
from mmae.weights import CheckpointError, weight_paths


def _weights(model, part):
    return {key: np.array(v) for key, v in weight_paths(model, [part]).items()}


def _same(a, b):
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def _build(tiny_run, source, overrides=(), **options):
    data_dir, _ = tiny_run
    config = Config.load(os.path.join(source, "config.yaml"), overrides=list(overrides))
    return warm_start_model_fn(source, **options)(config, load_dataset_info(data_dir))


def test_a_run_gives_every_part(tiny_run):
    _, run_dir = tiny_run
    _, trained = runs.load_run(run_dir)
    lines = []
    model = _build(tiny_run, run_dir, report=lines.append)
    for part, layer in model.parts.items():
        if layer is not None:
            assert _same(_weights(model, part), _weights(trained, part)), part
    assert lines and lines[0].startswith(f"Starting from {run_dir}: text_encoder")


def test_a_pack_gives_what_synthesis_needs_and_the_aligner_starts_fresh(tiny_run, tmp_path):
    _, run_dir = tiny_run
    pack = str(tmp_path / "pack")
    pretrained.pack(run_dir, pack)
    _, packed = runs.load_pretrained(pack)
    _, trained = runs.load_run(run_dir)
    lines = []
    model = _build(tiny_run, pack, report=lines.append)
    for part in ("text_encoder", "decoder", "duration_predictor"):
        assert _same(_weights(model, part), _weights(packed, part)), part
    assert not _same(_weights(model, "aligner"), _weights(trained, "aligner"))
    assert "aligner" in lines[0] and "start fresh" in lines[0]


def test_the_bundled_model_is_found_by_name():
    from mmae.training.warm_start import resolve

    assert resolve("flite_slt") == pretrained.path_of("flite_slt")
    with pytest.raises(FileNotFoundError, match="not an acoustic training run.*flite_slt"):
        resolve("no_such_model")


def test_another_size_names_the_setting(tiny_run, tmp_path):
    _, run_dir = tiny_run
    hidden = Config.load(os.path.join(run_dir, "config.yaml")).model.hidden_dim
    with pytest.raises(CheckpointError, match=f"model.hidden_dim: {hidden} vs {hidden * 2}"):
        _build(tiny_run, run_dir, [f"model.hidden_dim={hidden * 2}"])


def test_other_tokens_or_features_are_refused(tiny_run):
    _, run_dir = tiny_run
    with pytest.raises(ValueError, match="text.symbol_set: 'chars-v1' vs 'phonemes-v1'"):
        _build(tiny_run, run_dir, ["text.tokenizer=phonemes", "text.symbol_set=phonemes-v1"])
    data_dir, _ = tiny_run
    config = Config.load(os.path.join(run_dir, "config.yaml"), overrides=["audio.num_mels=24"])
    info = {**load_dataset_info(data_dir), "mel_mean": [-4.0] * 24, "mel_std": [1.0] * 24}
    with pytest.raises(ValueError, match="audio.num_mels: 40 vs 24"):
        warm_start_model_fn(run_dir)(config, info)


def test_a_resumed_run_does_not_need_its_source(tiny_run, tmp_path):
    _, run_dir = tiny_run
    own = tmp_path / "own"
    shutil.copytree(run_dir, own)
    gone = str(tmp_path / "gone")
    lines = []
    data_dir, _ = tiny_run
    config = Config.load(os.path.join(run_dir, "config.yaml"))
    build = warm_start_model_fn(gone, run_dir=str(own), report=lines.append)
    assert build(config, load_dataset_info(data_dir)) is not None and not lines
    # A source that does not exist is an error for a run that has to start from it.
    with pytest.raises(FileNotFoundError, match="gone"):
        warm_start_model_fn(gone, run_dir=str(tmp_path / "new"))


def test_mmae_train_init_from_trains_on(tiny_run, tmp_path):
    data_dir, run_dir = tiny_run
    out = tmp_path / "fine_tuned"
    result = run_mmae(
        "train", "--data", data_dir, "--run-dir", str(out), "--init-from", run_dir,
        "--steps", "1", "--quiet",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"Starting from {run_dir}" in result.stdout
    records = [json.loads(line) for line in open(out / "metrics.jsonl")]
    assert any(r.get("split") == "train" and r["step"] == 1 for r in records)
