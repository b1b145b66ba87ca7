import json

import numpy as np
import pytest
import tensorflow as tf

from mmae.config import IncompatibleConfigError
from mmae.datasets.pipeline import Bucket, bucket_plan, make_dataset
from mmae.datasets.prepare import prepare


def _info(data_dir):
    with open(data_dir + "/dataset.json") as f:
        return json.load(f)


def test_bucket_plan_pads_tokens_per_bucket_and_scales_batches():
    lengths = [("a", 50, 9), ("b", 90, 20), ("c", 150, 33), ("d", 210, 40), ("e", 400, 99)]
    buckets = bucket_plan(lengths, [100, 200, 300], batch_size=4)
    assert buckets == [Bucket(100, 24, 12), Bucket(200, 40, 6), Bucket(300, 40, 4)]
    fixed = bucket_plan(lengths, [100, 200, 300], batch_size=4, bucket_by_frames=False)
    assert [b.batch_size for b in fixed] == [4, 4, 4]
    replicas = bucket_plan(lengths, [100, 200, 300], batch_size=5, batch_multiple=2)
    assert [b.batch_size for b in replicas] == [14, 6, 4]
    # An empty bucket still gets a valid (minimal) shape.
    assert bucket_plan([], [100], 2) == [Bucket(100, 8, 2)]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    from conftest import make_ljspeech, sample_rows
    from mmae.config import Config

    root = tmp_path_factory.mktemp("pipeline")
    corpus = make_ljspeech(root / "corpus", sample_rows(24))
    config = Config.load(
        "tiny", overrides=["train.bucket_boundaries=[120, 180, 400]", "train.batch_size=2"]
    )
    prepare(corpus, str(root / "prepared"), config, jobs=1, progress=False)
    return str(root / "prepared"), config


def test_batches_have_bucket_shapes_and_masks(prepared):
    data_dir, config = prepared
    dataset = make_dataset(data_dir, config, "train", deterministic=True)
    lengths = [row for s in _info(data_dir)["splits"].values() for row in s["lengths"]]
    plan = bucket_plan(lengths, config.train.bucket_boundaries, config.train.batch_size)
    buckets = {b.max_frames: b for b in plan}
    shapes = set()
    for batch in dataset.take(12):
        batch = {k: v.numpy() for k, v in batch.items()}
        size, frames, mels = batch["mel"].shape
        bucket = buckets[frames]
        assert (size, batch["tokens"].shape[1], mels) == (
            bucket.batch_size,
            bucket.max_tokens,
            config.audio.num_mels,
        )
        shapes.add(batch["mel"].shape)
        for i in range(size):
            n_frames, n_tokens = batch["num_frames"][i], batch["num_tokens"][i]
            assert n_frames <= frames
            np.testing.assert_array_equal(batch["frame_mask"][i], np.arange(frames) < n_frames)
            np.testing.assert_array_equal(
                batch["token_mask"][i], np.arange(bucket.max_tokens) < n_tokens
            )
            assert not batch["mel"][i, n_frames:].any() and not batch["tokens"][i, n_tokens:].any()
            assert batch["tokens"][i, n_tokens - 1] == 1  # EOS is the last real token
    assert len(shapes) <= len(config.train.bucket_boundaries)
    assert set(batch) == {
        "tokens",
        "num_tokens",
        "mel",
        "num_frames",
        "speaker_id",
        "token_mask",
        "frame_mask",
    }


def test_validation_is_finite_and_complete(prepared):
    data_dir, config = prepared
    info = _info(data_dir)
    expected = {row[0] for row in info["splits"]["validation"]["lengths"]}
    seen = []
    for batch in make_dataset(data_dir, config, "validation", with_text=True):
        seen += [c.decode() for c in batch["clip_id"].numpy()]
        assert batch["text"].dtype == tf.string
    assert sorted(seen) == sorted(expected)


def test_input_pipelines_read_disjoint_shards(prepared):
    data_dir, config = prepared
    seen = []
    for pipeline_id in range(2):
        context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=pipeline_id)
        dataset = make_dataset(
            data_dir, config, "train", training=False, input_context=context, with_text=True
        )
        seen.append({c.decode() for batch in dataset for c in batch["clip_id"].numpy()})
    assert seen[0] and seen[1] and not seen[0] & seen[1]


def test_drop_remainder_gives_only_full_batches(prepared):
    data_dir, config = prepared
    for batch in make_dataset(data_dir, config, "train", training=False, drop_remainder=True):
        frames = batch["mel"].shape[1]
        expected = {
            b.max_frames: b.batch_size for b in bucket_plan([], config.train.bucket_boundaries, 2)
        }
        assert batch["mel"].shape[0] == expected[frames]


def test_mismatched_features_are_refused(prepared):
    data_dir, config = prepared
    with pytest.raises(IncompatibleConfigError, match="audio.num_mels: expected 80"):
        make_dataset(data_dir, config.with_overrides(["audio.num_mels=80"]), "train")


def test_step_traces_once_per_bucket(prepared):
    data_dir, config = prepared
    traces = []

    @tf.function(reduce_retracing=False)
    def step(batch):
        traces.append(1)
        return tf.reduce_sum(batch["mel"] * batch["frame_mask"][..., None])

    for batch in make_dataset(data_dir, config, "train").take(20):
        step(batch)
    assert len(traces) <= len(config.train.bucket_boundaries)
