"""Loading runs and bundled models: the one weight format, old formats, damaged checkpoints."""

import glob
import json
import logging
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from conftest import run_mmae
from mmae import runs, weights
from mmae.config import Config
from mmae.models import build_model

TESTS = os.path.dirname(os.path.abspath(__file__))


def _info(num_mels=40, speakers=("a",)):
    return {
        "speakers": list(speakers),
        "mel_mean": [-4.0] * num_mels,
        "mel_std": [1.0] * num_mels,
        "splits": {"train": {"lengths": [["x", 50, 10]]}},
    }


def _tiny_model(seed=0, **overrides):
    import keras

    keras.utils.set_random_seed(seed)
    config = Config.load("tiny", overrides=[f"{k}={v}" for k, v in overrides.items()])
    return build_model(config, _info(speakers=("a", "b")))


def _mel(model):
    tokens = tf.constant([[5, 6, 7, 8, 9, 1], [9, 8, 7, 1, 0, 0]])
    mel, _ = model.synthesize_mel(tokens, tf.constant([6, 4]), speaker_id=tf.constant([0, 1]))
    return mel.numpy()


def test_weights_are_keyed_by_layer_path_the_same_in_every_model():
    first, second = _tiny_model(), _tiny_model()  # Keras names the second's layers _1, _2 ...
    keys = list(weights.weight_paths(first))
    assert keys == list(weights.weight_paths(second))
    assert len(keys) == len(first.weights) == len(set(keys))
    assert "text_encoder/blocks/0/attention/_query_dense/kernel" in keys
    assert "speakers/embedding/embeddings" in keys
    for key in keys:
        assert weights._path_of_key(weights.checkpoint_key(key)) == key


def test_save_and_load_round_trip_and_float16_storage(tmp_path):
    model, other = _tiny_model(seed=1), _tiny_model(seed=2)
    assert not np.array_equal(_mel(model), _mel(other))
    weights.save_weights(model, str(tmp_path / "w"))
    weights.load_weights(other, str(tmp_path / "w"))
    np.testing.assert_array_equal(_mel(other), _mel(model))

    weights.save_weights(model, str(tmp_path / "half"), dtype="float16")
    stored = weights.read_weights(str(tmp_path / "half"))
    assert {a.dtype for a in stored.values()} == {np.dtype("float16")}
    weights.load_weights(other, str(tmp_path / "half"))
    # float16 keeps 11 significant bits.
    np.testing.assert_allclose(_mel(other), _mel(model), rtol=0.05, atol=0.05)


def test_a_changed_structure_names_the_first_mismatched_weight(tmp_path):
    weights.save_weights(_tiny_model(), str(tmp_path / "w"))
    wider = _tiny_model(**{"model.hidden_dim": 48})
    with pytest.raises(weights.CheckpointError, match=r"w does not match.*first: .* has shape"):
        weights.load_weights(wider, str(tmp_path / "w"))
    # Every weight but the new block's fits; none may be assigned all the same.
    deeper = _tiny_model(seed=1, **{"model.decoder_layers": 3})
    before = [w.numpy() for w in deeper.weights]
    with pytest.raises(
        weights.CheckpointError, match=r"decoder/blocks/2/.* is not in the checkpoint"
    ):
        weights.load_weights(deeper, str(tmp_path / "w"))
    for value, variable in zip(before, deeper.weights, strict=True):
        np.testing.assert_array_equal(variable.numpy(), value)
    # (and a partial load would have changed them: the saved values differ)
    saved = weights.read_weights(str(tmp_path / "w"))
    kernel = weights.weight_paths(deeper)["decoder/to_mel/kernel"].numpy()
    assert not np.array_equal(saved["decoder/to_mel/kernel"], kernel)


def test_old_positional_checkpoints_still_load(tmp_path):
    """Checkpoints written before the weight format held `model.weights` by position."""
    model, fresh = _tiny_model(seed=3), _tiny_model(seed=4)
    step = tf.Variable(7, dtype=tf.int64)
    tf.train.Checkpoint(model=list(model.weights), step=step).write(str(tmp_path / "ckpt-7"))
    runs.restore_weights(fresh, str(tmp_path / "ckpt-7"))
    np.testing.assert_array_equal(_mel(fresh), _mel(model))


def test_a_run_written_by_the_old_code_loads_and_speaks_the_same():
    """tests/data/legacy_run: a tiny two-speaker run written before the weight format.

    Made with the code of commit ca5c1a7: `model.weights` by position in
    `tf.train.Checkpoint(model=...)`, the loss weights under `train:`, and the
    speaker table a `keras.Sequential`. reference.npz is its mel for two texts.
    """
    run_dir = os.path.join(TESTS, "data", "legacy_run")
    reference = np.load(os.path.join(run_dir, "reference.npz"))
    config, model = runs.load_run(run_dir)
    assert config.loss.binarization_start == 1000  # read from the old train section
    mel, num_frames = model.synthesize_mel(
        tf.constant(reference["tokens"]),
        tf.constant(reference["num_tokens"]),
        speaker_id=tf.constant(reference["speaker_id"]),
    )
    np.testing.assert_array_equal(num_frames.numpy(), reference["num_frames"])
    np.testing.assert_allclose(mel.numpy(), reference["mel"], atol=1e-5)


def test_old_npz_pretrained_models_load_and_convert(tmp_path):
    """A model packed as weights.npz ("part/index" keys, float16) loads, then converts once."""
    from mmae import pretrained

    model = _tiny_model(seed=5)
    root = tmp_path / "old"
    root.mkdir()
    arrays = {
        f"{part}/{index:03d}": variable.numpy().astype(np.float16)
        for part in model.inference_parts
        if getattr(model, part) is not None
        for index, variable in enumerate(getattr(model, part).weights)
    }
    np.savez_compressed(root / "weights.npz", **arrays)
    Config.load("tiny").save(str(root / "config.yaml"))
    (root / "dataset.json").write_text(json.dumps(_info(speakers=("a", "b"))))
    _, old = runs.load(str(root))
    expected = _mel(old)
    pretrained.convert(str(root))
    assert sorted(p.name for p in root.iterdir()) == [
        "config.yaml",
        "dataset.json",
        "weights.data-00000-of-00001",
        "weights.index",
    ]
    _, converted = runs.load(str(root))
    np.testing.assert_array_equal(_mel(converted), expected)


def test_the_bundled_model_speaks_as_it_did_when_packed():
    """tests/data/pretrained_reference.npz (scripts/make_pretrained_reference.py)."""
    from mmae.synthesis import Synthesizer

    reference = np.load(os.path.join(TESTS, "data", "pretrained_reference.npz"))
    texts = [str(text) for text in reference["texts"]]
    # Griffin-Lim: the acoustic model's output, no trained vocoder in the way.
    synthesizer = Synthesizer.from_pretrained(vocoder="griffin_lim")
    for index, mel in enumerate(synthesizer.synthesize_mel(texts)):
        np.testing.assert_allclose(mel, reference[f"mel_{index}"], atol=1e-5)
    # The reference audio came from the same batch of texts (Griffin-Lim's
    # edges depend slightly on the padded batch length).
    audio = synthesizer.synthesize(texts)[0]
    np.testing.assert_allclose(audio, reference["audio_0"], atol=1e-5)


# Damaged checkpoints.


@pytest.fixture
def two_checkpoints(tiny_run, tmp_path):
    """A copy of the tiny run with ckpt-1 and ckpt-2 (same weights, both whole)."""
    data_dir, run_dir = tiny_run
    copy = str(tmp_path / "run")
    shutil.copytree(run_dir, copy)
    directory = os.path.join(copy, "checkpoints")
    for name in os.listdir(directory):
        if name.startswith("ckpt-2."):
            shutil.copy(os.path.join(directory, name), os.path.join(directory, "ckpt-1" + name[6:]))
    return data_dir, copy


def _damage(run_dir, how):
    prefix = os.path.join(run_dir, "checkpoints", "ckpt-2")
    if how == "truncated":
        data = prefix + ".data-00000-of-00001"
        with open(data, "r+b") as f:
            f.truncate(os.path.getsize(data) // 10)  # as an interrupted copy leaves it
    elif how == "no_index":
        os.remove(prefix + ".index")
    else:  # a weight of the wrong shape, in an otherwise whole checkpoint
        config, model = runs.load_run(run_dir, os.path.join(run_dir, "checkpoints", "ckpt-1"))
        named = weights.weight_paths(model)
        key = "decoder/to_mel/bias"
        named[key] = tf.Variable(tf.zeros([3]))
        tf.train.Checkpoint(weights=named, step=tf.Variable(2, dtype=tf.int64)).write(prefix)
    return prefix


DAMAGES = ["truncated", "no_index", "wrong_shape"]


@pytest.mark.parametrize("how", DAMAGES)
def test_a_damaged_checkpoint_asked_for_by_name_is_a_clear_error(two_checkpoints, how):
    _, run_dir = two_checkpoints
    prefix = _damage(run_dir, how)
    with pytest.raises(weights.CheckpointError, match=f"{prefix}[ .]"):
        runs.load_run(run_dir, prefix)  # no fallback from a checkpoint chosen by name


@pytest.mark.parametrize("how", DAMAGES)
def test_synthesize_and_train_fall_back_past_a_damaged_checkpoint(
    two_checkpoints, how, tmp_path, caplog, capsys
):
    data_dir, run_dir = two_checkpoints
    prefix = _damage(run_dir, how)
    damaged = {path: open(path, "rb").read() for path in glob.glob(prefix + ".*")}
    synthesize = ["synthesize", "--run", run_dir, "Hello.", "-o", str(tmp_path / "h.wav")]
    train = ["train", "--data", data_dir, "--run-dir", run_dir, "--steps", "2", "--quiet"]

    if how == "truncated":
        # Once in real processes, as a user runs the commands.
        spoken = run_mmae(*synthesize)
        assert spoken.returncode == 0, spoken.stderr[-2000:]
        spoken_log = spoken.stderr
        trained = run_mmae(*train)
        assert trained.returncode == 0, trained.stderr[-2000:]
        assert "Traceback" not in spoken.stderr + trained.stderr
        trained_out = trained.stdout
    else:
        from mmae import cli

        with caplog.at_level(logging.WARNING):
            assert cli.main(synthesize) == 0
        spoken_log = caplog.text
        capsys.readouterr()
        assert cli.main(train) == 0
        trained_out = capsys.readouterr().out
    assert f"Skipped a damaged checkpoint: {prefix}" in spoken_log
    assert "ckpt-1 instead" in spoken_log
    # Resumed at step 1 from ckpt-1 and saved a new, whole ckpt-2; the damaged
    # files were moved aside first, unchanged.
    assert "Trained to step 2" in trained_out
    aside = os.path.join(run_dir, "checkpoints", "damaged")
    for path, data in damaged.items():
        assert open(os.path.join(aside, os.path.basename(path)), "rb").read() == data
    runs.load_run(run_dir, prefix)


def test_no_readable_checkpoint_is_a_clear_error(two_checkpoints):
    _, run_dir = two_checkpoints
    for step in (1, 2):
        os.remove(os.path.join(run_dir, "checkpoints", f"ckpt-{step}.index"))
    with pytest.raises(weights.CheckpointError, match=r"No checkpoint in .* can be used"):
        runs.load_run(run_dir)
