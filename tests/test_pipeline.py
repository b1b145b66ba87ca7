import collections
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


def _plan(data_dir, config):
    """The pipeline's buckets, from every split's lengths."""
    lengths = [row for s in _info(data_dir)["splits"].values() for row in s["lengths"]]
    return bucket_plan(lengths, config.train.bucket_boundaries, config.train.batch_size)


def _clips_per_bucket(data_dir, config, split):
    """{bucket: clip ids of `split` in it}; clips past the last boundary are in none."""
    clips = collections.defaultdict(set)
    buckets = _plan(data_dir, config)
    for clip_id, frames, _ in _info(data_dir)["splits"][split]["lengths"]:
        bucket = next((b for b in buckets if frames <= b.max_frames), None)
        if bucket is not None:
            clips[bucket].add(clip_id)
    return clips


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
    buckets = {b.max_frames: b for b in _plan(data_dir, config)}
    shapes = set()
    num_batches = 0
    for batch in dataset.take(12):
        num_batches += 1
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
    assert num_batches == 12  # training repeats the split forever
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
    expected = set().union(*_clips_per_bucket(data_dir, config, "train").values())
    seen = []
    for pipeline_id in range(2):
        context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=pipeline_id)
        dataset = make_dataset(
            data_dir, config, "train", training=False, input_context=context, with_text=True
        )
        seen.append({c.decode() for batch in dataset for c in batch["clip_id"].numpy()})
    assert seen[0] and seen[1] and not seen[0] & seen[1]
    assert seen[0] | seen[1] == expected  # together, every train clip that fits a bucket


def test_drop_remainder_gives_only_full_batches(prepared):
    data_dir, config = prepared
    clips = _clips_per_bucket(data_dir, config, "train")
    # Each bucket gives one batch per full batch size of its clips, the rest is
    # dropped: 0, 3 and 2 batches of the 3, 15 and 4 clips of this data.
    expected = {b.max_frames: len(clips[b]) // b.batch_size for b in _plan(data_dir, config)}
    sizes = {b.max_frames: b.batch_size for b in _plan(data_dir, config)}
    batches = collections.Counter()
    for batch in make_dataset(data_dir, config, "train", training=False, drop_remainder=True):
        frames = batch["mel"].shape[1]
        assert batch["mel"].shape[0] == sizes[frames]
        batches[frames] += 1
    assert sum(expected.values()) > 0
    assert batches == collections.Counter(expected)


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

    shapes = []
    for batch in make_dataset(data_dir, config, "train").take(20):
        step(batch)
        shapes.append((batch["mel"].shape, batch["tokens"].shape))
    assert len(shapes) == 20  # training repeats the split forever
    # One trace per batch shape, and one shape per bucket at most.
    assert len(traces) == len(set(shapes)) <= len(config.train.bucket_boundaries)
