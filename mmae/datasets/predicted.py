"""Prepared data whose log-mels are an acoustic model's predictions, for fine-tuning a vocoder.

A vocoder trained on true log-mels has never heard the acoustic model's
smoothed ones. `predict_mels` rewrites a prepared directory (with stored
audio) so that each clip's `mel` is the model's text-path prediction,
teacher-forced: spoken with the durations the model's aligner finds in the
recording, so frame `t` of the prediction still lines up with sample
`t * frame_step` of the recording. Text, tokens, speakers and audio stay as
they were; `mmae train-vocoder --data OUT --init-from VOCODER` then teaches
the vocoder to turn the model's mels into the recording.

Needs a training run (a bundled pretrained model keeps no aligner).

Example:

>>> predict_mels("runs/slt", "prepared/slt1600", "prepared/slt1600_predicted")
"""

import json
import os

import numpy as np
import tensorflow as tf

from mmae.config import check_compatible
from mmae.datasets import records
from mmae.datasets.prepare import load_dataset_info
from mmae.progress import progress_bar

__all__ = ["predict_mels"]


def predict_mels(run_dir, data_dir, out_dir, batch_size=16, progress=True):
    """Writes `out_dir`: `data_dir` with every clip's log-mel predicted by the run's model.

    Args:
        run_dir: an acoustic training run (`mmae train`) with an aligner.
        data_dir: its prepared data, with stored audio (`data.store_audio=true`).
        out_dir: the new prepared directory (same shards, same `dataset.json`
            apart from `source` and `predicted_by`).
        batch_size: clips per model call.
        progress: show a progress bar.

    Returns:
        The number of clips written.
    """
    from mmae import runs

    if runs.is_pretrained(run_dir):
        raise ValueError(
            f"{run_dir} is a packed pretrained model: it keeps no aligner, so its mels "
            "cannot be lined up with the recordings. Use a training run (`mmae train`)."
        )
    config, model = runs.load_run(run_dir)
    if not hasattr(model, "teacher_forced_mel"):
        raise ValueError(f"{run_dir} holds a {type(model).__name__}, which has no aligner.")
    info = load_dataset_info(data_dir)
    from mmae.config import Config

    data_config = Config.from_dict(info["config"])
    check_compatible(config, data_config, what=str(data_dir))
    if not data_config.data.store_audio:
        raise ValueError(f"{data_dir} has no stored audio; prepare with data.store_audio=true.")
    predict = tf.function(model.teacher_forced_mel, reduce_retracing=True)
    num_mels = config.audio.num_mels
    tf.io.gfile.makedirs(out_dir)
    total = sum(split["num_clips"] for split in info["splits"].values())
    bar = progress_bar(total=total, desc="predict mels", unit="clip", disable=not progress)
    written = 0
    for split in info["splits"].values():
        for name in split["shards"]:
            clips = [
                records.parse(serialized, num_mels)
                for serialized in tf.data.TFRecordDataset(os.path.join(data_dir, name))
            ]
            with tf.io.TFRecordWriter(os.path.join(out_dir, name)) as writer:
                for start in range(0, len(clips), batch_size):
                    chunk = clips[start : start + batch_size]
                    mels = predict(_batch(chunk, num_mels)).numpy()
                    for clip, mel in zip(chunk, mels, strict=True):
                        frames = int(clip["num_frames"])
                        writer.write(
                            records.serialize(
                                clip["clip_id"].numpy().decode("utf-8"),
                                int(clip["speaker_id"]),
                                clip["text"].numpy().decode("utf-8"),
                                clip["tokens"].numpy().tolist(),
                                mel[:frames],
                                clip["audio"].numpy(),
                            )
                        )
                    written += len(chunk)
                    bar.update(len(chunk))
    bar.close()
    info = {**info, "source": str(data_dir), "predicted_by": os.path.abspath(str(run_dir))}
    with tf.io.gfile.GFile(os.path.join(out_dir, "dataset.json"), "w") as f:
        json.dump(info, f, indent=1)
    return written


def _batch(clips, num_mels):
    """A padded model batch (as `make_dataset` gives) of parsed clips."""
    frames = max(int(c["num_frames"]) for c in clips)
    tokens = max(int(c["num_tokens"]) for c in clips)
    mel = np.zeros([len(clips), frames, num_mels], np.float32)
    token_ids = np.zeros([len(clips), tokens], np.int32)
    for i, clip in enumerate(clips):
        mel[i, : int(clip["num_frames"])] = clip["mel"].numpy()
        token_ids[i, : int(clip["num_tokens"])] = clip["tokens"].numpy()
    num_frames = np.array([int(c["num_frames"]) for c in clips], np.int32)
    num_tokens = np.array([int(c["num_tokens"]) for c in clips], np.int32)
    return {
        "mel": tf.constant(mel),
        "num_frames": tf.constant(num_frames),
        "tokens": tf.constant(token_ids),
        "num_tokens": tf.constant(num_tokens),
        "speaker_id": tf.constant([int(c["speaker_id"]) for c in clips], tf.int32),
        "frame_mask": tf.sequence_mask(num_frames, frames, tf.float32),
        "token_mask": tf.sequence_mask(num_tokens, tokens, tf.float32),
    }
