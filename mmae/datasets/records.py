"""The TFRecord layout of a prepared clip: one `tf.train.Example` per clip.

Mel frames are stored as raw float32 bytes (exact, and parsed with one
`tf.io.decode_raw`); PCM, when kept, as int16 bytes.
"""

import numpy as np
import tensorflow as tf


def serialize(clip_id, speaker_id, text, tokens, mel, pcm=None):
    """Encodes one clip as a serialized `tf.train.Example`.

    Args:
        clip_id: str.
        speaker_id: int index into the dataset's speaker list.
        text: the normalized text, kept for evaluation and display.
        tokens: list of int token ids (EOS included).
        mel: float32 array [num_frames, num_mels].
        pcm: optional float32 waveform in [-1, 1].
    """
    mel = np.ascontiguousarray(mel, dtype=np.float32)
    feature = {
        "clip_id": _bytes(clip_id.encode("utf-8")),
        "text": _bytes(text.encode("utf-8")),
        "speaker_id": _int64([speaker_id]),
        "tokens": _int64(tokens),
        "num_frames": _int64([mel.shape[0]]),
        "num_mels": _int64([mel.shape[1]]),
        "mel": _bytes(mel.tobytes()),
    }
    if pcm is not None:
        samples = np.clip(np.round(np.asarray(pcm) * 32767.0), -32768, 32767).astype("<i2")
        feature["audio"] = _bytes(samples.tobytes())
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


_FEATURES = {
    "clip_id": tf.io.FixedLenFeature([], tf.string),
    "text": tf.io.FixedLenFeature([], tf.string),
    "speaker_id": tf.io.FixedLenFeature([], tf.int64),
    "tokens": tf.io.VarLenFeature(tf.int64),
    "num_frames": tf.io.FixedLenFeature([], tf.int64),
    "num_mels": tf.io.FixedLenFeature([], tf.int64),
    "mel": tf.io.FixedLenFeature([], tf.string),
    "audio": tf.io.FixedLenFeature([], tf.string, default_value=b""),
}


def parse(serialized, num_mels):
    """Parses one serialized clip into a dict of tensors (graph-safe, for `tf.data`)."""
    example = tf.io.parse_single_example(serialized, _FEATURES)
    tokens = tf.cast(tf.sparse.to_dense(example["tokens"]), tf.int32)
    mel = tf.reshape(tf.io.decode_raw(example["mel"], tf.float32), [-1, num_mels])
    audio = tf.cast(tf.io.decode_raw(example["audio"], tf.int16), tf.float32) / 32767.0
    return {
        "clip_id": example["clip_id"],
        "text": example["text"],
        "speaker_id": tf.cast(example["speaker_id"], tf.int32),
        "tokens": tokens,
        "num_tokens": tf.shape(tokens)[0],
        "mel": mel,
        "num_frames": tf.shape(mel)[0],
        "audio": audio,
    }


def _bytes(value):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _int64(values):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))
