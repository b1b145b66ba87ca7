"""`mmae prepare-lexicon`: the pronunciation lexicon, and the words a G2P model learns from.

    mmae prepare-lexicon prepared/lexicon          # about four minutes, needs espeak-ng

writes, for the config's phoneme symbol set and espeak-ng voice:

- `lexicon.tsv.gz`: the `mmae.text.lexicon.PhonemeLexicon` (words, their
  forms in context, joined word pairs, letter names);
- `train.tsv` and `validation.tsv`: `word<TAB>phonemes` for the lexicon's
  single words, split by a hash of the word (`data.validation_fraction`), so
  the held-out words are the same on every machine;
- `dataset.json`: the config, the split sizes and how the lexicon was built,
  as `mmae train-g2p` (the project's trainer) reads a prepared directory.

`make_word_dataset` gives the trainer its batches: letter ids, phoneme ids
and their lengths, bucketed by word length.
"""

import json
import os

import tensorflow as tf

from mmae.config import with_current_frontend
from mmae.datasets.prepare import split_of
from mmae.text.g2p import GRAPHEMES, output_symbols

__all__ = ["LEXICON_FILE", "fits", "make_word_dataset", "prepare_lexicon", "read_words"]

LEXICON_FILE = "lexicon.tsv.gz"
# Word-length buckets (letters): a batch is padded to its bucket's boundary;
# longer words share a last bucket padded to the longest word.
_BUCKETS = [6, 9, 12, 16, 24]


def prepare_lexicon(out_dir, config, *, word_lists=(), lexicon=None):
    """Builds the lexicon with espeak-ng and writes it with the G2P's training words.

    Args:
        out_dir: the directory to write (created; existing files are replaced).
        config: a `mmae.config.Config` whose text section is a phoneme one.
        word_lists: one-word-a-line files (`mmae.text.lexicon.read_word_list`)
            whose words join the lexicon, recorded in `dataset.json`.
        lexicon: a ready `PhonemeLexicon` (skips espeak-ng; for tests).

    Returns:
        The `dataset.json` contents.

    Raises:
        ValueError: the config's tokenizer is not "phonemes".
    """
    from mmae.text.lexicon import PhonemeLexicon, read_word_list

    if config.text.tokenizer != "phonemes":
        raise ValueError(
            "A pronunciation lexicon is for phoneme models; set text.tokenizer=phonemes and "
            f"a phonemes-* text.symbol_set (got {config.text.tokenizer!r})."
        )
    config = with_current_frontend(config)
    if lexicon is None:
        words = sorted({w for path in word_lists for w in read_word_list(path)})
        lexicon = PhonemeLexicon.build(config.text.symbols, config.text.language, words=words)
    os.makedirs(out_dir, exist_ok=True)
    lexicon.save(os.path.join(out_dir, LEXICON_FILE))
    allowed = set(GRAPHEMES)
    outputs = set(output_symbols(config.text.symbols))
    splits = {"train": [], "validation": []}
    for word, phonemes in sorted(lexicon.words().items()):
        # A word the model cannot spell or espeak-ng did not read as one word.
        if not set(word) <= allowed or not phonemes or not set(phonemes) <= outputs:
            continue
        splits[split_of(word, config.data.validation_fraction)].append((word, phonemes))
    for split, rows in splits.items():
        with open(os.path.join(out_dir, f"{split}.tsv"), "w", encoding="utf-8") as f:
            f.writelines(f"{word}\t{phonemes}\n" for word, phonemes in rows)
    info = {
        "config": config.to_dict(),
        "splits": {split: {"num_clips": len(rows)} for split, rows in splits.items()},
        "lexicon": lexicon.stats,
        "word_lists": list(word_lists),
    }
    with open(os.path.join(out_dir, "dataset.json"), "w", encoding="utf-8") as f:
        json.dump(info, f, indent=1)
    return info


def read_words(data_dir, split):
    """[(word, phonemes)] of a split of a prepared lexicon directory."""
    with tf.io.gfile.GFile(os.path.join(data_dir, f"{split}.tsv")) as f:
        return [tuple(line.rstrip("\n").split("\t")) for line in f if line.strip()]


def make_word_dataset(
    data_dir, config, split, *, training, batch_size, batch_multiple=1, deterministic=None
):
    """Batches of {letters, num_letters, phonemes, num_phonemes} (int32, 0-padded).

    The trainer's `dataset_fn` protocol: training batches repeat forever in
    a fresh shuffle; others are one pass in file order. Words are bucketed by
    length (`_BUCKETS`) so that little of a batch is padding.
    """
    letter_ids = {c: i + 1 for i, c in enumerate(GRAPHEMES)}
    phoneme_ids = {c: i + 1 for i, c in enumerate(output_symbols(config.text.symbols))}
    upsample = config.g2p.upsample
    rows = [row for row in read_words(data_dir, split) if fits(*row, upsample)]
    if not rows:
        raise ValueError(f"{data_dir} has no {split} words.")
    letters = [[letter_ids[c] for c in word] for word, _ in rows]
    phonemes = [[phoneme_ids[c] for c in form] for _, form in rows]
    dataset = tf.data.Dataset.from_tensor_slices(
        {
            "letters": tf.ragged.constant(letters, dtype=tf.int32),
            "phonemes": tf.ragged.constant(phonemes, dtype=tf.int32),
        }
    )
    if training:
        dataset = dataset.shuffle(len(rows), seed=config.train.seed, reshuffle_each_iteration=True)
        dataset = dataset.repeat()

    def dense(example):
        return {
            "letters": example["letters"],
            "num_letters": tf.size(example["letters"], out_type=tf.int32),
            "phonemes": example["phonemes"],
            "num_phonemes": tf.size(example["phonemes"], out_type=tf.int32),
        }

    dataset = dataset.map(dense, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    # Each bucket pads to its boundary (and phonemes to `upsample` times it),
    # so a step function sees one shape per bucket and traces only that often.
    longest = max(len(word) for word, _ in rows)
    boundaries = tf.constant(_BUCKETS + [max(longest, _BUCKETS[-1] + 1)], tf.int64)
    size = max(batch_multiple, batch_size // batch_multiple * batch_multiple)

    def bucket(example):
        fits_in = tf.cast(example["num_letters"], tf.int64) <= boundaries
        return tf.argmax(tf.cast(fits_in, tf.int32), output_type=tf.int64)

    def batch(key, window):
        length = boundaries[key]
        shapes = {
            "letters": tf.stack([length]),
            "num_letters": tf.constant([], tf.int64),
            "phonemes": tf.stack([upsample * length]),
            "num_phonemes": tf.constant([], tf.int64),
        }
        return window.padded_batch(size, padded_shapes=shapes, drop_remainder=training)

    dataset = dataset.group_by_window(bucket, batch, window_size=size)
    return dataset.prefetch(tf.data.AUTOTUNE)


def fits(word, phonemes, upsample):
    """Whether CTC can align `phonemes` to `word`'s positions (a blank between repeats).

    "x" -> "ˈɛks" needs 4 positions, more than 1 letter x 3 gives: such words
    (a few dozen, most of them single letters, which the frontend reads by
    their letter names) would make the loss infinite.
    """
    repeats = sum(a == b for a, b in zip(phonemes, phonemes[1:], strict=False))
    return len(phonemes) + repeats <= upsample * len(word)
