"""The model parts, the cross-modal autoencoder's losses per stage, inference, and saving."""

import numpy as np
import pytest
import tensorflow as tf

from mmae.config import Config
from mmae.layers import alignment_from_durations, frame_mask_from_durations
from mmae.models import CrossModalAutoencoder, SeedBaseline, build_model
from mmae.training.regimes import stages_for, trainable_variables

NUM_MELS = 12
VOCAB = 20


def _batch(batch_size=2, max_tokens=8, max_frames=30, seed=0):
    rng = np.random.default_rng(seed)
    num_tokens = np.array([max_tokens, max_tokens - 3][:batch_size], np.int32)
    num_frames = np.array([max_frames, max_frames - 9][:batch_size], np.int32)
    tokens = rng.integers(2, VOCAB, (batch_size, max_tokens)).astype(np.int32)
    mel = rng.normal(-4, 1, (batch_size, max_frames, NUM_MELS)).astype(np.float32)
    token_mask = (np.arange(max_tokens)[None] < num_tokens[:, None]).astype(np.float32)
    frame_mask = (np.arange(max_frames)[None] < num_frames[:, None]).astype(np.float32)
    tokens *= token_mask.astype(np.int32)
    mel *= frame_mask[..., None]
    return {
        "tokens": tf.constant(tokens),
        "num_tokens": tf.constant(num_tokens),
        "mel": tf.constant(mel),
        "num_frames": tf.constant(num_frames),
        "speaker_id": tf.zeros([batch_size], tf.int32),
        "token_mask": tf.constant(token_mask),
        "frame_mask": tf.constant(frame_mask),
    }


def _model(**overrides):
    kwargs = dict(
        vocab_size=VOCAB,
        num_mels=NUM_MELS,
        mel_mean=[-4.0] * NUM_MELS,
        mel_std=[1.0] * NUM_MELS,
        latent_dim=8,
        hidden_dim=16,
        num_heads=2,
        text_encoder_layers=1,
        audio_encoder_layers=1,
        decoder_layers=2,
        aligner_dim=8,
        dropout=0.0,
    )
    kwargs.update(overrides)
    return CrossModalAutoencoder(**kwargs)


def test_alignment_from_durations_matches_numpy():
    durations = np.array([[2, 0, 3, 1], [1, 4, 0, 0]], np.int32)
    got = alignment_from_durations(tf.constant(durations), 8).numpy()
    for b in range(2):
        expected = np.zeros((8, 4), np.float32)
        frame = 0
        for token, d in enumerate(durations[b]):
            expected[frame : frame + d, token] = 1
            frame += d
        np.testing.assert_array_equal(got[b], expected)
    np.testing.assert_array_equal(
        frame_mask_from_durations(tf.constant(durations), 8).numpy(),
        [[1] * 6 + [0] * 2, [1] * 5 + [0] * 3],
    )


def _stages():
    """Every stage of every regime, by name."""
    stages = {}
    for regime in ("joint", "separate", "self_supervised"):
        config = Config.load("tiny", overrides=[f"train.regime={regime}"])
        stages.update({stage.name: stage for stage in stages_for(config.train)})
    return stages


@pytest.mark.parametrize(
    "stage_name", ["joint", "audio_autoencoder", "masked_pretrain", "text_to_latent"]
)
def test_each_stage_trains_only_its_parts(stage_name):
    model = _model()
    batch = _batch()
    model.build()
    (update,) = _stages()[stage_name].updates
    variables = trainable_variables(model, update)
    with tf.GradientTape() as tape:
        results = model.compute_losses(
            batch,
            objective=update.objective,
            step=tf.constant(10, tf.int64),
            **dict(update.options),
        )
    for name, value in results.items():
        assert np.isfinite(value.numpy()), name
    gradients = tape.gradient(results["loss"], variables)
    assert all(g is not None for g in gradients)
    parts = {v.path.split("/")[1] for v in variables}
    if stage_name in ("audio_autoencoder", "masked_pretrain"):
        assert set(results) == {"loss", "mel_audio"}
        assert parts == {"audio_encoder", "decoder"}
    if stage_name == "text_to_latent":
        # The decoder and audio encoder are frozen: not in the stage's list,
        # and the audio latent is only a target.
        assert parts == {"text_encoder", "length_regulator", "aligner", "duration_predictor"}
        assert {"mel_text", "consistency", "forward_sum", "binarization", "duration"} <= set(
            results
        )
    if stage_name == "joint":
        assert len(variables) == len(model.trainable_variables)


def test_masked_audio_hides_frames_only_in_training():
    model = _model()
    model.build()
    batch = _batch()
    kept = model.compute_losses(batch, objective="masked_audio", training=True, mask_ratio=0.0)
    hidden = model.compute_losses(batch, objective="masked_audio", training=True, mask_ratio=1.0)
    # Everything hidden: the encoder sees the data mean, a worse reconstruction.
    assert float(hidden["mel_audio"]) != float(kept["mel_audio"])
    evaluated = model.compute_losses(
        batch, objective="masked_audio", training=False, mask_ratio=1.0
    )
    np.testing.assert_allclose(float(evaluated["mel_audio"]), float(kept["mel_audio"]), rtol=1e-6)


def test_audio_fraction_autoencodes_only_the_first_clips_in_training():
    from mmae.config import LossConfig

    batch = _batch(batch_size=2)
    full = _model()
    full.build()
    half = _model(loss=LossConfig(audio_fraction=0.5))
    half.build()
    half.set_weights(full.get_weights())
    first = {key: value[:1] for key, value in batch.items()}
    trained = half.compute_losses(batch, objective="joint", training=True)
    # The audio path of the half model saw clip 0 alone; its text path, both clips.
    np.testing.assert_allclose(
        float(trained["mel_audio"]),
        float(full.compute_losses(first, objective="joint", training=True)["mel_audio"]),
        rtol=1e-5,
    )
    np.testing.assert_allclose(
        float(trained["mel_text"]),
        float(full.compute_losses(batch, objective="joint", training=True)["mel_text"]),
        rtol=1e-5,
    )
    # Validation measures the whole batch.
    evaluated = half.compute_losses(batch, objective="joint", training=False)
    np.testing.assert_allclose(
        float(evaluated["mel_audio"]),
        float(full.compute_losses(batch, objective="joint", training=False)["mel_audio"]),
        rtol=1e-5,
    )
    with pytest.raises(ValueError, match="audio_fraction"):
        LossConfig(audio_fraction=0.0)


def test_a_regime_naming_a_missing_part_or_objective_is_refused():
    baseline = SeedBaseline(VOCAB, NUM_MELS, [0.0] * NUM_MELS, [1.0] * NUM_MELS)
    baseline.build()
    (update,) = _stages()["audio_autoencoder"].updates
    with pytest.raises(ValueError, match="audio_encoder.*SeedBaseline does not have"):
        trainable_variables(baseline, update)
    with pytest.raises(ValueError, match="one objective"):
        baseline.compute_losses(_batch(), objective="audio")
    with pytest.raises(ValueError, match="Unknown objective 'audio_autoencoder'"):
        _model().compute_losses(_batch(), objective="audio_autoencoder")


def test_frozen_audio_latent_is_only_a_target():
    model = _model()
    model.build()
    with tf.GradientTape() as tape:
        results = model.compute_losses(_batch(), objective="text", step=0)
    gradients = tape.gradient(results["consistency"], model.audio_encoder.trainable_variables)
    assert all(g is None for g in gradients)


# Reduction 2 groups frames in pairs: padding must not leak into a pair either.
@pytest.mark.parametrize("decoder_reduction", [1, 2])
def test_padding_does_not_change_an_example(decoder_reduction):
    model = _model(decoder_reduction=decoder_reduction)
    batch = _batch(batch_size=2)
    single = {k: v[1:] for k, v in batch.items()}
    frames = int(single["num_frames"][0])
    tokens = int(single["num_tokens"][0])
    trimmed = dict(single)
    trimmed.update(
        tokens=single["tokens"][:, :tokens],
        token_mask=single["token_mask"][:, :tokens],
        mel=single["mel"][:, :frames],
        frame_mask=single["frame_mask"][:, :frames],
    )
    trimmed_mel, num_frames = model.synthesize_mel(trimmed["tokens"], trimmed["num_tokens"])
    n = int(num_frames[0])
    # An untrained duration predictor may ask for any length: pad past it.
    padded_mel, _ = model.synthesize_mel(
        single["tokens"], single["num_tokens"], max_frames=2 * (n // 2) + 40
    )
    # Padding must not leak into real frames; what is left is float32 round-off.
    np.testing.assert_allclose(padded_mel[0, :n], trimmed_mel[0, :n], atol=1e-4)
    assert not padded_mel[0, n:].numpy().any()


def test_synthesize_mel_and_speaking_rate():
    model = _model()
    batch = _batch()
    mel, num_frames = model.synthesize_mel(batch["tokens"], batch["num_tokens"])
    assert mel.shape[0] == 2 and mel.shape[2] == NUM_MELS
    assert mel.shape[1] == int(tf.reduce_max(num_frames))
    # Every real token lasts at least one frame.
    assert all(num_frames.numpy() >= batch["num_tokens"].numpy())
    _, slow = model.synthesize_mel(batch["tokens"], batch["num_tokens"], speaking_rate=0.5)
    assert all(slow.numpy() >= num_frames.numpy())


@pytest.mark.parametrize("decoder_reduction", [1, 2])
def test_synthesize_compiles_with_static_length(decoder_reduction):
    model = _model(decoder_reduction=decoder_reduction)
    batch = _batch()
    fn = tf.function(lambda t, n: model.synthesize_mel(t, n, max_frames=64), jit_compile=True)
    mel, _ = fn(batch["tokens"], batch["num_tokens"])
    assert mel.shape == (2, 64, NUM_MELS)


def test_keras_save_and_load_round_trip(tmp_path):
    model = _model(num_speakers=3, decoder_reduction=2)
    model.build()
    batch = _batch()
    expected, _ = model.synthesize_mel(
        batch["tokens"], batch["num_tokens"], speaker_id=tf.constant([0, 2])
    )
    path = str(tmp_path / "model.keras")
    model.save(path)
    import keras

    loaded = keras.models.load_model(path)
    got, _ = loaded.synthesize_mel(
        batch["tokens"], batch["num_tokens"], speaker_id=tf.constant([0, 2])
    )
    np.testing.assert_array_equal(got.numpy(), expected.numpy())


def test_seed_baseline_stretches_text_uniformly():
    model = SeedBaseline(VOCAB, NUM_MELS, [0.0] * NUM_MELS, [1.0] * NUM_MELS, frames_per_token=3.0)
    tokens = tf.constant([[5, 6, 7, 0], [9, 8, 0, 0]])
    one_hot = model.stretched_text(tokens, tf.constant([3, 2]), tf.constant([6, 5]), 6).numpy()
    assert list(one_hot[0].argmax(-1)) == [5, 5, 6, 6, 7, 7]
    assert list(one_hot[1, :5].argmax(-1)) == [9, 9, 9, 8, 8]
    batch = _batch()
    results = model.compute_losses(batch)
    assert set(results) == {"loss", "mel_text_mse", "mel_text"} and np.isfinite(
        results["loss"].numpy()
    )
    mel, frames = model.synthesize_mel(batch["tokens"], batch["num_tokens"])
    np.testing.assert_array_equal(frames.numpy(), np.round(batch["num_tokens"].numpy() * 3.0))


def test_build_model_from_config():
    info = {
        "speakers": ["a", "b"],
        "mel_mean": [0.0] * 40,
        "mel_std": [1.0] * 40,
        "splits": {"train": {"lengths": [["x", 50, 10], ["y", 30, 10]]}},
    }
    config = Config.load("tiny")
    model = build_model(config, info)
    assert isinstance(model, CrossModalAutoencoder) and model.num_speakers == 2
    assert model.loss == config.loss  # the same typed settings, not a copy with defaults
    assert model.duration_predictor.kernel_size == config.model.duration_predictor_kernel_size
    baseline = build_model(config.with_overrides(["model.architecture=seed_baseline"]), info)
    assert isinstance(baseline, SeedBaseline) and baseline.frames_per_token == 4.0
