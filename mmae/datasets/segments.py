"""Aligned windows of log-mel and waveform, for vocoder training.

A vocoder sees `frames` log-mel frames and returns the samples from the
first frame's centre to the last one's (`mmae.vocoders.base`). A window
starting at frame `o` therefore pairs `mel[o : o + frames]` with
`audio[o * frame_step : (o + frames - 1) * frame_step]` of the same prepared
clip: the record's log-mel was computed from exactly that stored PCM, so the
pair lines up sample for sample. Training windows start at random frames;
validation windows are the middle of each clip, so every validation pass
scores the same audio. Clips shorter than a window are padded with silence
(the log-mel of silence and zero samples).

Needs data prepared with `data.store_audio=true`.

Example:

>>> config = Config.load("flite16k")
>>> batch = next(iter(make_segment_dataset("prepared/slt", config, "train")))
>>> batch["mel"].shape, batch["audio"].shape  # [16, 32, 80], [16, 7936]
"""

import math
import os

import tensorflow as tf

from mmae.config import Config, check_compatible
from mmae.datasets import records
from mmae.datasets.prepare import load_dataset_info


class NoAudioError(ValueError):
    """The prepared data holds no waveforms to train a vocoder on."""


def make_segment_dataset(
    data_dir,
    config,
    split="train",
    *,
    training=None,
    batch_size=None,
    batch_multiple=1,
    deterministic=None,
    segment_frames=None,
):
    """Batches of aligned (log-mel, waveform) windows of one split.

    Args:
        data_dir: a directory written by `mmae prepare` with `data.store_audio=true`.
        config: the run's `Config`: its features must match the data's; window
            lengths come from `config.vocoder`.
        split: "train" or "validation".
        training: random windows, shuffled and repeated forever (default:
            split == "train"); otherwise each clip's middle window, once.
        batch_size: default `config.train.batch_size`; rounded down to a
            multiple of `batch_multiple` (the replicas that split a batch).
        deterministic: fix element order (default: when not training).
        segment_frames: window length in frames (default:
            `vocoder.segment_frames` when training, else
            `vocoder.validation_segment_frames`).

    Returns:
        A `tf.data.Dataset` of dicts: `mel` `[B, frames, num_mels]`, `audio`
        `[B, (frames - 1) * frame_step]` float32 and `num_frames` `[B]` int32.
        Training batches all have `batch_size` items (static shapes).

    Raises:
        NoAudioError: the data was prepared without `data.store_audio`.
    """
    info = load_dataset_info(data_dir)
    found = Config.from_dict(info["config"])
    # A vocoder reads no tokens: only the audio features must match.
    check_compatible(config, found, what=str(data_dir), sections=("audio",))
    if not found.data.store_audio:
        raise NoAudioError(
            f"{data_dir} holds log-mels only; a vocoder trains on waveforms too. Prepare the "
            "corpus again with --set data.store_audio=true."
        )
    if split not in info["splits"] or not info["splits"][split]["shards"]:
        raise ValueError(f"{data_dir} has no clips in split {split!r}.")
    training = split == "train" if training is None else training
    vocoder = config.vocoder
    if segment_frames is None:
        segment_frames = vocoder.segment_frames if training else vocoder.validation_segment_frames
    batch_size = batch_size or config.train.batch_size
    batch_size = max(batch_multiple, batch_size // batch_multiple * batch_multiple)
    num_mels, frame_step = config.audio.num_mels, config.audio.frame_step
    silence = math.log(config.audio.log_floor)
    samples = (segment_frames - 1) * frame_step
    seed = config.train.seed

    files = [os.path.join(data_dir, name) for name in info["splits"][split]["shards"]]
    dataset = tf.data.Dataset.from_tensor_slices(files)
    if training:
        dataset = dataset.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.interleave(
        tf.data.TFRecordDataset,
        cycle_length=min(len(files), 8),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )

    def window(serialized):
        clip = records.parse(serialized, num_mels)
        mel, audio = clip["mel"], clip["audio"]
        frames = tf.shape(mel)[0]
        spare = tf.maximum(0, frames - segment_frames)
        if training:
            start = tf.random.uniform([], 0, spare + 1, tf.int32)
        else:
            start = spare // 2
        mel = mel[start : start + segment_frames]
        mel = tf.pad(mel, [[0, segment_frames - tf.shape(mel)[0]], [0, 0]], constant_values=silence)
        audio = audio[start * frame_step : start * frame_step + samples]
        audio = tf.pad(audio, [[0, samples - tf.shape(audio)[0]]])
        mel = tf.ensure_shape(mel, [segment_frames, num_mels])
        audio = tf.ensure_shape(audio, [samples])
        return {"mel": mel, "audio": audio, "num_frames": tf.constant(segment_frames, tf.int32)}

    if training:
        dataset = dataset.shuffle(config.train.shuffle_buffer, seed=seed).repeat()
    dataset = dataset.map(window, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.batch(batch_size, drop_remainder=training)
    options = tf.data.Options()
    options.deterministic = (not training) if deterministic is None else deterministic
    return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)
