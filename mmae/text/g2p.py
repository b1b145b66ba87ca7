"""A learned grapheme-to-phoneme model, for the words the pronunciation lexicon lacks.

`G2P` reads a word's letters and writes its phoneme symbols (the IPA
characters, stress and length marks of a `phonemes-*` symbol set) as
espeak-ng would. It is non-autoregressive, in the manner of DeepPhonemizer's
"forward" model: Transformer blocks read the letters, every letter's state
is repeated `upsample` times, more blocks read that longer sequence, and a
CTC head gives each position a phoneme or a blank. Most blocks run at the
letter rate, where a word is a third as long, so training fits a CPU. Greedy decoding (best class per position, repeats merged, blanks
dropped) is a few tensor ops, so a word is transcribed in one pass with no
decoding loop, inside `tf.data`, a `tf.function` or a SavedModel.

It is trained by the project's trainer (`mmae train-g2p`) on the espeak-ng
pronunciations that `mmae prepare-lexicon` writes, and follows the trainer's
model protocol (`parts`, `compute_losses`, `display`).

Example:

>>> g2p = G2P(get_symbols("phonemes-v1"))
>>> g2p.transcribe(tf.constant(["kolarians"]))  # once trained: [b"kˈoʊlɛɹiənz"]
"""

import keras
import numpy as np
import tensorflow as tf

from mmae.layers import TransformerBlock, serializable, sinusoidal_positions
from mmae.text.symbols import _PUNCTUATION, EOS, PAD

__all__ = ["G2P", "GRAPHEMES", "output_symbols"]

# The letters a word may hold (the frontend splits hyphenated words); id =
# position + 1, 0 pads. Anything else in a word is skipped.
GRAPHEMES = "'abcdefghijklmnopqrstuvwxyz"


def output_symbols(symbols):
    """The symbols a G2P writes: those of `symbols` that are neither markers nor punctuation."""
    return "".join(s for s in symbols if s not in PAD + EOS + _PUNCTUATION)


@serializable
class G2P(keras.Model):
    """Letters -> phoneme symbols; see the module docstring.

    Args:
        symbols: the run's phoneme symbol set; the model writes its
            `output_symbols` (CTC class 0 is the blank, class i the i-th of them).
        dim, num_heads, kernel_size, ffn_multiplier, dropout: the Transformer
            blocks (`mmae.layers.TransformerBlock`).
        num_layers: blocks at the letter rate.
        upsampled_layers: blocks after the upsampling.
        upsample: positions per letter; a word can have at most this many
            phoneme symbols per letter.
    """

    def __init__(
        self,
        symbols,
        dim=192,
        num_layers=4,
        upsampled_layers=1,
        num_heads=4,
        kernel_size=3,
        ffn_multiplier=2,
        upsample=3,
        dropout=0.1,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.symbols = symbols
        self.phonemes = output_symbols(symbols)
        self.dim, self.num_layers, self.num_heads = dim, num_layers, num_heads
        self.upsampled_layers = upsampled_layers
        self.kernel_size, self.ffn_multiplier = kernel_size, ffn_multiplier
        self.upsample, self.dropout = upsample, dropout
        self.embedding = keras.layers.Embedding(len(GRAPHEMES) + 1, dim, name="letters")
        self.blocks = [
            TransformerBlock(
                dim, num_heads, kernel_size, dropout, ffn_multiplier, name=f"block_{i}"
            )
            for i in range(num_layers + upsampled_layers)
        ]
        self.head = keras.layers.Dense(len(self.phonemes) + 1, dtype="float32", name="head")
        self.sparse_ctc = not any(
            device.device_type in ("GPU", "TPU") for device in tf.config.list_logical_devices()
        )
        # Letters to ids and class ids to symbols, for `transcribe` in any graph.
        with tf.init_scope():
            self._letter_ids = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(
                    tf.constant([ord(c) for c in GRAPHEMES], tf.int32),
                    tf.range(1, len(GRAPHEMES) + 1, dtype=tf.int32),
                ),
                default_value=0,
            )
            self._phoneme_strings = tf.constant(["", *self.phonemes])

    @classmethod
    def from_run_config(cls, config):
        """The built (untrained) model of a run's `mmae.config.Config`: its symbols and `g2p`."""
        import dataclasses

        model = cls(config.text.symbols, **dataclasses.asdict(config.g2p), name="g2p")
        model.build()
        return model

    def build(self, input_shape=None):
        if self.built:
            return
        self.embedding.build((None, None))
        for block in self.blocks:
            block.build((None, None, self.dim))
        self.head.build((None, None, self.dim))
        self.built = True

    @property
    def parts(self):
        return {"g2p": self}

    def call(self, letters, training=False):
        """Letter ids [B, L] (0 pads) -> (CTC logits [B, L * upsample, classes], mask [B, L * upsample])."""
        mask = letters > 0
        hidden = self._positioned(self.embedding(letters) * np.sqrt(self.dim), mask)
        for block in self.blocks[: self.num_layers]:
            hidden = block(hidden, mask, training=training)
        mask = tf.repeat(mask, self.upsample, axis=1)
        hidden = self._positioned(tf.repeat(hidden, self.upsample, axis=1), mask)
        for block in self.blocks[self.num_layers :]:
            hidden = block(hidden, mask, training=training)
        return self.head(hidden), mask

    def _positioned(self, hidden, mask):
        positions = sinusoidal_positions(tf.shape(hidden)[1], self.dim)[None]
        return (hidden + tf.cast(positions, hidden.dtype)) * tf.cast(mask, hidden.dtype)[..., None]

    # -- words in, phonemes out, as tensors --------------------------------------

    def letters_of(self, words):
        """Words [N] (tf.string) -> letter ids int32 [N, L], 0-padded."""
        codes = tf.strings.unicode_decode(tf.strings.lower(words, encoding="utf-8"), "UTF-8")
        ids = tf.ragged.map_flat_values(self._letter_ids.lookup, codes)
        ids = tf.ragged.boolean_mask(ids, ids > 0)
        dense = ids.to_tensor(0)
        # At least one column, so that a batch of words without letters still runs.
        return tf.pad(dense, [[0, 0], [0, tf.maximum(1 - tf.shape(dense)[1], 0)]])

    def decode(self, logits, mask):
        """Greedy CTC decoding: logits [B, T, C], mask [B, T] -> class ids, ragged [B, None]."""
        best = tf.argmax(logits, axis=-1, output_type=tf.int32)
        previous = tf.pad(best[:, :-1], [[0, 0], [1, 0]], constant_values=-1)
        keep = mask & (best != previous) & (best != 0)
        return tf.ragged.boolean_mask(best, keep)

    def transcribe(self, words):
        """Words [N] -> their phoneme strings [N] (tf.string); "" for a word with no letters."""
        words = tf.convert_to_tensor(words, tf.string)

        def run():
            letters = self.letters_of(words)
            classes = self.decode(*self(letters, training=False))
            symbols = tf.ragged.map_flat_values(
                lambda c: tf.gather(self._phoneme_strings, c), classes
            )
            return tf.strings.reduce_join(symbols, axis=1)

        # An empty batch has no letters to run the model on.
        return tf.cond(tf.size(words) > 0, run, lambda: tf.zeros([0], tf.string))

    # -- the trainer's model protocol -----------------------------------------------

    def compute_losses(self, batch, *, objective="ctc", step=None, training=False):
        """CTC loss per phoneme symbol; out of training, also the greedy decoding's
        phoneme and word error rates (their sparse edit distance has no XLA kernel)."""
        del objective, step
        logits, mask = self(batch["letters"], training=training)
        frames = tf.reduce_sum(tf.cast(mask, tf.int32), axis=1)
        lengths = batch["num_phonemes"]
        labels = batch["phonemes"]
        if self.sparse_ctc:
            # TensorFlow's CTC kernel for sparse labels is several times faster
            # on a CPU than its dense implementation; accelerators need dense.
            labels = tf.RaggedTensor.from_tensor(labels, lengths).to_sparse()
        losses = tf.nn.ctc_loss(
            labels=labels,
            logits=tf.cast(logits, tf.float32),
            label_length=None if self.sparse_ctc else lengths,
            logit_length=frames,
            logits_time_major=False,
            blank_index=0,
        )
        total = tf.cast(tf.reduce_sum(lengths), tf.float32)
        loss = tf.reduce_sum(losses) / tf.maximum(total, 1.0)
        if training:
            return {"loss": loss}
        errors = tf.edit_distance(
            tf.cast(self.decode(logits, mask), tf.int64).to_sparse(),
            tf.cast(tf.RaggedTensor.from_tensor(batch["phonemes"], lengths), tf.int64).to_sparse(),
            normalize=False,
        )
        return {
            "loss": loss,
            "phoneme_error_rate": tf.reduce_sum(errors) / tf.maximum(total, 1.0),
            "word_error_rate": tf.reduce_mean(tf.cast(errors > 0, tf.float32)),
        }

    def display(self, batch):
        """The first word's CTC posteriors [positions, classes], for TensorBoard."""
        logits, mask = self(batch["letters"][:1], training=False)
        frames = int(tf.reduce_sum(tf.cast(mask, tf.int32)))
        return {"posteriors": tf.nn.softmax(logits[0, :frames]).numpy().T}

    def get_config(self):
        config = super().get_config()
        config.update(
            symbols=self.symbols,
            dim=self.dim,
            num_layers=self.num_layers,
            upsampled_layers=self.upsampled_layers,
            num_heads=self.num_heads,
            kernel_size=self.kernel_size,
            ffn_multiplier=self.ffn_multiplier,
            upsample=self.upsample,
            dropout=self.dropout,
        )
        return config
