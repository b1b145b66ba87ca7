"""The `tf.data` input pipeline over prepared shards.

Clips are grouped into frame-length buckets and each batch is padded to its
bucket's fixed shape (frames to the bucket boundary, tokens to the longest
text that falls in that bucket), so a `jit_compile`d training step compiles
once per bucket instead of once per batch. Bucket batch sizes scale inversely
with length so every batch carries about the same number of frames.

Example:

>>> config = Config.load("flite16k")
>>> dataset = make_dataset("prepared/sample", config, "train")
>>> batch = next(iter(dataset))
>>> batch["mel"].shape, batch["frame_mask"].shape
"""

import dataclasses
import logging
import os

import tensorflow as tf

from mmae.config import Config, check_compatible, check_frontend
from mmae.datasets import records
from mmae.datasets.prepare import load_dataset_info

logger = logging.getLogger(__name__)

# Keys that reach the model; strings stay out so batches can go to a TPU.
MODEL_KEYS = ("tokens", "num_tokens", "mel", "num_frames", "speaker_id")
TOKEN_MULTIPLE = 8


@dataclasses.dataclass(frozen=True)
class Bucket:
    max_frames: int
    max_tokens: int
    batch_size: int


def bucket_plan(lengths, bucket_boundaries, batch_size, bucket_by_frames=True, batch_multiple=1):
    """Fixed batch shapes for the clips described by `lengths`.

    Args:
        lengths: (num_frames, num_tokens) pairs (or rows ending with them).
        bucket_boundaries: increasing frame counts; the last one is the longest
            clip kept (longer clips are dropped by the pipeline).
        batch_size: the batch size of the longest bucket.
        bucket_by_frames: give shorter buckets proportionally larger batches.
        batch_multiple: round every batch size down to a multiple of this
            (the number of replicas that split each batch).

    Returns:
        One `Bucket` per boundary.
    """
    boundaries = sorted(int(b) for b in bucket_boundaries)
    longest_text = [0] * len(boundaries)
    for row in lengths:
        frames, tokens = int(row[-2]), int(row[-1])
        for index, boundary in enumerate(boundaries):
            if frames <= boundary:
                longest_text[index] = max(longest_text[index], tokens)
                break
    buckets = []
    for boundary, tokens in zip(boundaries, longest_text, strict=True):
        size = batch_size * boundaries[-1] // boundary if bucket_by_frames else batch_size
        size = max(batch_multiple, size // batch_multiple * batch_multiple)
        padded_tokens = max(TOKEN_MULTIPLE, -(-tokens // TOKEN_MULTIPLE) * TOKEN_MULTIPLE)
        buckets.append(Bucket(boundary, padded_tokens, size))
    return buckets


def make_dataset(
    data_dir,
    config,
    split="train",
    *,
    training=None,
    batch_size=None,
    input_context=None,
    batch_multiple=1,
    drop_remainder=False,
    with_text=False,
    deterministic=None,
):
    """Builds the batched, bucketed dataset of one split of a prepared directory.

    Args:
        data_dir: a directory written by `mmae prepare` (local or `gs://`).
        config: the `Config` of the model that will read the batches; its
            feature settings must match the data's.
        split: "train" or "validation".
        training: shuffle and repeat forever (default: split == "train").
        batch_size: batch size of the longest bucket for this input pipeline
            (default: config.train.batch_size).
        input_context: a `tf.distribute.InputContext`; shards are divided
            between input pipelines.
        batch_multiple: every batch size is a multiple of this, so that
            `strategy.experimental_distribute_dataset` can split each batch
            evenly between replicas (pass `strategy.num_replicas_in_sync`).
        drop_remainder: drop the partial last batch of each bucket (finite
            datasets only), for fully static shapes.
        with_text: also yield `clip_id` and `text` strings.
        deterministic: fix element order (default: when training, off).

    Returns:
        A `tf.data.Dataset` of dicts: `tokens` [B, T] int32, `num_tokens` [B],
        `mel` [B, F, num_mels] float32, `num_frames` [B], `speaker_id` [B],
        `token_mask` [B, T] and `frame_mask` [B, F] float32.
    """
    info = load_dataset_info(data_dir)
    found = Config.from_dict(info["config"])
    check_compatible(config, found, what=str(data_dir))
    # Tokens of another frontend version would train a model to read text
    # as no path reads it any more.
    check_frontend(found, str(data_dir))
    training = split == "train" if training is None else training
    train = config.train
    batch_size = batch_size or train.batch_size
    num_mels = config.audio.num_mels
    if split not in info["splits"] or not info["splits"][split]["shards"]:
        raise ValueError(f"{data_dir} has no clips in split {split!r}.")

    all_lengths = [row for s in info["splits"].values() for row in s["lengths"]]
    buckets = bucket_plan(
        all_lengths, train.bucket_boundaries, batch_size, train.bucket_by_frames, batch_multiple
    )
    max_frames = buckets[-1].max_frames
    too_long = sum(1 for row in info["splits"][split]["lengths"] if row[1] > max_frames)
    if too_long:
        logger.warning(
            "%d %s clips are longer than the last bucket boundary (%d frames) and are skipped; "
            "raise train.bucket_boundaries to keep them.",
            too_long,
            split,
            max_frames,
        )

    files = [os.path.join(data_dir, name) for name in info["splits"][split]["shards"]]
    dataset = tf.data.Dataset.from_tensor_slices(files)
    if input_context is not None and input_context.num_input_pipelines > 1:
        if len(files) < input_context.num_input_pipelines:
            raise ValueError(
                f"{split} has {len(files)} shards for {input_context.num_input_pipelines} input "
                "pipelines; prepare with a smaller data.clips_per_shard."
            )
        dataset = dataset.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
    if training:
        dataset = dataset.shuffle(len(files), seed=train.seed, reshuffle_each_iteration=True)
    dataset = dataset.interleave(
        tf.data.TFRecordDataset,
        cycle_length=min(len(files), 8),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    keep = MODEL_KEYS + (("clip_id", "text") if with_text else ())
    dataset = dataset.map(
        lambda serialized: _select(records.parse(serialized, num_mels), keep),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    dataset = dataset.filter(lambda x: x["num_frames"] <= max_frames)
    if train.cache:
        dataset = dataset.cache()
    if training:
        dataset = dataset.shuffle(train.shuffle_buffer, seed=train.seed).repeat()
    dataset = dataset.group_by_window(
        key_func=_bucket_key(buckets),
        reduce_func=_bucket_batcher(buckets, num_mels, keep, drop_remainder),
        window_size_func=lambda key: tf.gather(
            tf.constant([b.batch_size for b in buckets], tf.int64), key
        ),
    )
    dataset = dataset.map(_add_masks, num_parallel_calls=tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.deterministic = (not training) if deterministic is None else deterministic
    return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)


def _select(example, keys):
    return {key: example[key] for key in keys}


def _bucket_key(buckets):
    boundaries = tf.constant([b.max_frames for b in buckets], tf.int32)

    def key(example):
        index = tf.searchsorted(boundaries, tf.reshape(example["num_frames"], [1]), side="left")
        return tf.cast(index[0], tf.int64)

    return key


def _bucket_batcher(buckets, num_mels, keys, drop_remainder):
    frame_pads = tf.constant([b.max_frames for b in buckets], tf.int64)
    token_pads = tf.constant([b.max_tokens for b in buckets], tf.int64)
    sizes = tf.constant([b.batch_size for b in buckets], tf.int64)

    def batch(key, window):
        shapes = {name: tf.constant([], tf.int64) for name in keys}
        shapes["tokens"] = tf.reshape(token_pads[key], [1])
        shapes["mel"] = tf.stack([frame_pads[key], tf.constant(num_mels, tf.int64)])
        batched = window.padded_batch(sizes[key], padded_shapes=shapes)
        if drop_remainder:
            batched = batched.filter(
                lambda x: tf.cast(tf.shape(x["num_frames"])[0], tf.int64) == sizes[key]
            )
        return batched

    return batch


def _add_masks(batch):
    batch = dict(batch)
    batch["token_mask"] = tf.sequence_mask(
        batch["num_tokens"], tf.shape(batch["tokens"])[1], dtype=tf.float32
    )
    batch["frame_mask"] = tf.sequence_mask(
        batch["num_frames"], tf.shape(batch["mel"])[1], dtype=tf.float32
    )
    return batch
