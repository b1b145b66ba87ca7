"""What `mmae serve` speaks with: a run through the `Synthesizer`, or an exported SavedModel.

A backend turns a request's text into sentence items (`sentences`) and a
batch of items, from any requests, into waveforms (`speak`). The engine
batches items without looking into them.
"""

import json
import os
import warnings

import numpy as np

from mmae.synthesis import limit_peak, split_sentences

__all__ = ["SavedModelBackend", "SynthesizerBackend"]


class SynthesizerBackend:
    """A training run or the bundled model, through `mmae.synthesis.Synthesizer`.

    Items are the token ids of one sentence; every speed and speaker of the
    model is available.
    """

    supports_speed = True

    def __init__(self, synthesizer, speakers=("default",)):
        self.synthesizer = synthesizer
        self.sample_rate = synthesizer.sample_rate
        self.pause_seconds = synthesizer.pause_seconds
        self.speakers = list(speakers) or ["default"]

    def sentences(self, text):
        """Token ids of each sentence of `text` that has something to say."""
        from mmae.text import EmptyTextError

        pieces = split_sentences(text, self.synthesizer.max_characters)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            encoded = self.synthesizer.tokenizer.encode_batch(pieces, errors="return")
        return [ids for ids in encoded if not isinstance(ids, EmptyTextError)]

    def speak(self, items, speaking_rate, speaker_ids):
        audio = self.synthesizer.synthesize_tokens(items, speaking_rate, speaker_ids)
        return [limit_peak(a, self.synthesizer.config.audio) for a in audio]

    def warm_up(self):
        self.speak(self.sentences("Hello."), 1.0, [0])


class SavedModelBackend:
    """A directory written by `mmae export`: its `serving_default` signature, one sentence a row.

    Items are sentence strings. The signature takes text only, so this
    backend speaks at speed 1 with the export's one voice.
    """

    supports_speed = False

    def __init__(self, path):
        import tensorflow as tf

        self._tf = tf
        with open(os.path.join(path, "export.json"), encoding="utf-8") as f:
            summary = json.load(f)
        self.sample_rate = int(summary["sample_rate"])
        self.pause_seconds = float(summary.get("pause_seconds", 0.25))
        self.speakers = ["default"]
        self._model = tf.saved_model.load(path)
        self._speak = self._model.signatures["serving_default"]
        self._tokenize = self._model.signatures["tokenize"]

    def sentences(self, text):
        """The sentences of `text` (split as the export splits) that have something to say."""
        pieces = split_sentences(text, max_characters=300)
        if not pieces:
            return []
        counts = self._tokenize(text=self._tf.constant(pieces))["num_tokens"].numpy()
        return [piece for piece, count in zip(pieces, counts, strict=True) if count > 0]

    def speak(self, items, speaking_rate, speaker_ids):
        out = self._speak(text=self._tf.constant(items))
        audio, lengths = out["audio"].numpy(), out["lengths"].numpy()
        return [
            np.asarray(row[:length], np.float32) for row, length in zip(audio, lengths, strict=True)
        ]

    def warm_up(self):
        self.speak(["Hello."], 1.0, [0])
