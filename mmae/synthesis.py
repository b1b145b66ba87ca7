"""Text in, waveform out: the synthesizer around a trained model and a vocoder.

    synthesizer = Synthesizer.from_run("runs/sample")
    audio = synthesizer.synthesize("Hello world.")            # float32 [samples]
    clips = synthesizer.synthesize(["One.", "Two."])          # list of arrays
    soundfile.write("hello.wav", audio, synthesizer.sample_rate)

Each text is normalized, split into sentences (long sentences further at
commas and then between words), tokenized in one call for the whole request,
and the sentences of all texts are synthesized together in batches of
similar length, padded to a multiple of `token_multiple` tokens so the
compiled acoustic model and vocoder see few shapes. Every item is cut to its
own length, and a text's sentences are joined with `pause_seconds` of
silence. Only one batch is in flight at a time, so memory does not grow with
the length of the text beyond the output audio itself.

Bad input never takes the whole request down. A text with nothing to say
(empty, whitespace, only punctuation, or only characters the symbol set
lacks such as emoji or non-Latin scripts) gives zero-length audio and a
`SynthesisWarning` that names it, or, with `strict=True`, a `SynthesisError`
that names it before anything is synthesized. Unknown characters inside an
otherwise speakable text are dropped with a warning (`UnknownCharacterWarning`).
"""

import re
import warnings

import numpy as np
import tensorflow as tf

from mmae.config import frontend_mismatch
from mmae.text import EmptyTextError, tokenizer_from_config
from mmae.vocoders import resolve_vocoder

__all__ = ["SynthesisError", "SynthesisWarning", "Synthesizer", "limit_peak", "split_sentences"]


class SynthesisError(ValueError):
    """A text (named by its index in the request) cannot be spoken."""


class SynthesisWarning(UserWarning):
    """A text gave zero-length audio because there is nothing in it to say."""


_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+|\n\s*\n")
_CLAUSE_END = re.compile(r"(?<=[,:])\s+")
# Periods that never end a sentence: titles before a name ("Dr. Smith"),
# "e.g.", "i.e." and initials ("J. R. R. Tolkien", "U.S. Army"). They are
# hidden behind a mark while splitting. The SavedModel splits the same way.
NON_FINAL_PERIOD = r"\b(mr|mrs|dr|capt|lt|vs|gen|col|e\.g|i\.e|[a-z])\.(\s)"
_NON_FINAL_PERIOD_RE = re.compile(NON_FINAL_PERIOD, re.IGNORECASE)
_KEPT_PERIOD = "\x02"


def split_sentences(text, max_characters=300):
    """Splits `text` into pieces of at most `max_characters`, at natural breaks.

    Sentence ends (. ! ? ; and blank lines; not the period of a title before
    a name, "e.g.", "i.e." or an initial) first, then commas and colons,
    then spaces; a single word longer than `max_characters` is cut.
    """
    pieces = []
    text = _NON_FINAL_PERIOD_RE.sub(rf"\1{_KEPT_PERIOD}\2", text.strip())
    for sentence in _SENTENCE_END.split(text):
        sentence = sentence.strip().replace(_KEPT_PERIOD, ".")
        pieces.extend(_split_long(sentence, max_characters))
    return [piece for piece in pieces if piece]


def _split_long(text, max_characters):
    if len(text) <= max_characters:
        return [text]
    for pattern in (_CLAUSE_END, re.compile(r"\s+")):
        parts = pattern.split(text)
        if len(parts) > 1:
            pieces, current = [], ""
            for part in parts:
                joined = f"{current} {part}" if current else part
                if len(joined) <= max_characters:
                    current = joined
                else:
                    if current:
                        pieces.append(current)
                    current = part
            pieces.append(current)
            return [p for piece in pieces for p in _split_long(piece, max_characters)]
    return [text[i : i + max_characters] for i in range(0, len(text), max_characters)]


class Synthesizer:
    """Turns text into waveforms with a trained `CrossModalAutoencoder` and a vocoder.

    Args:
        model: a built `CrossModalAutoencoder` with trained weights.
        config: the run's `mmae.config.Config` (text frontend and audio
            features).
        vocoder: a `mmae.vocoders.Vocoder`, "griffin_lim", the path of a
            vocoder run or pack, or "auto" (default): the bundled neural
            vocoder when it was trained on `config.audio`'s features, else
            Griffin-Lim with a warning (`mmae.vocoders.resolve_vocoder`).
        batch_size: sentences per acoustic-model and vocoder call.
        max_characters: longest piece of text synthesized in one go.
        pause_seconds: silence between the sentences of one text.
        token_multiple: token batches are padded to a multiple of this, so
            the compiled functions trace for few shapes.
        jit_compile: compile the acoustic model and vocoder with XLA.
    """

    def __init__(
        self,
        model,
        config,
        vocoder="auto",
        batch_size=16,
        max_characters=300,
        pause_seconds=0.25,
        token_multiple=32,
        jit_compile=False,
    ):
        self.model = model
        self.config = config
        self.vocoder = resolve_vocoder(vocoder, config.audio)
        self.tokenizer = tokenizer_from_config(config.text)
        mismatch = frontend_mismatch(config.text)
        if mismatch:
            warnings.warn(mismatch, stacklevel=2)
        self.batch_size = batch_size
        self.max_characters = max_characters
        self.pause_seconds = pause_seconds
        self.token_multiple = token_multiple
        # Graph mode traces once for any batch and length; XLA compiles per
        # shape, which token_multiple keeps few for the acoustic model.
        signature = (
            None
            if jit_compile
            else [
                tf.TensorSpec([None, None], tf.int32),
                tf.TensorSpec([None], tf.int32),
                tf.TensorSpec([None], tf.int32),
                tf.TensorSpec([], tf.float32),
            ]
        )
        self._acoustic = tf.function(
            self._acoustic_model, jit_compile=jit_compile, input_signature=signature
        )
        self._vocode = tf.function(
            self.vocoder,
            jit_compile=jit_compile,
            input_signature=None
            if jit_compile
            else [
                tf.TensorSpec([None, None, config.audio.num_mels], tf.float32),
                tf.TensorSpec([None], tf.int32),
            ],
        )

    @classmethod
    def from_run(cls, run_dir, checkpoint=None, **kwargs):
        """Loads the latest (or the given) checkpoint of a training run, or a packed model."""
        from mmae.runs import load

        config, model = load(run_dir, checkpoint)
        if not hasattr(model, "synthesize_mel"):
            raise ValueError(
                f"{run_dir} holds a {type(model).__name__}, which cannot synthesize from text."
            )
        return cls(model, config, **kwargs)

    @classmethod
    def from_pretrained(cls, name=None, **kwargs):
        """Loads a pretrained model bundled with the package (see `mmae.pretrained`)."""
        from mmae import pretrained

        config, model = pretrained.load(name or pretrained.DEFAULT)
        return cls(model, config, **kwargs)

    @property
    def sample_rate(self):
        return self.config.audio.sample_rate

    @property
    def num_speakers(self):
        return self.model.num_speakers

    def synthesize(self, text, speaking_rate=1.0, speaker_id=0, strict=False):
        """Waveform(s) for `text`: a string gives one array, a list gives a list.

        Args:
            text: a string or a sequence of strings.
            speaking_rate: > 1 speaks faster, < 1 slower (scales durations).
            speaker_id: the speaker of a multi-speaker run.
            strict: raise `SynthesisError` for a text with nothing to say
                instead of returning zero-length audio for it.

        Returns:
            float32 arrays at `sample_rate`, peak at most 1.
        """
        return self._synthesize(text, speaking_rate, speaker_id, strict, ("audio",))

    def synthesize_mel(self, text, speaking_rate=1.0, speaker_id=0, strict=False):
        """Log-mel frames `[frames, num_mels]` for `text` (string or list), as `synthesize`.

        A text's sentences are concatenated without pauses.
        """
        return self._synthesize(text, speaking_rate, speaker_id, strict, ("mel",))

    def synthesize_with_mel(self, text, speaking_rate=1.0, speaker_id=0, strict=False):
        """`(waveform, log-mel)` for `text` (a pair per text for a list), from one model run.

        The same as `synthesize` and `synthesize_mel` together, at the cost of one.
        """
        return self._synthesize(text, speaking_rate, speaker_id, strict, ("audio", "mel"))

    # -- internals -------------------------------------------------------

    def _synthesize(self, text, speaking_rate, speaker_id, strict, kinds):
        single = isinstance(text, str)
        texts = [text] if single else list(text)
        for i, item in enumerate(texts):
            if not isinstance(item, str):
                raise SynthesisError(f"Text {i} is a {type(item).__name__}, not a string.")
        if speaking_rate <= 0:
            raise ValueError(f"speaking_rate must be positive, got {speaking_rate}.")
        if not 0 <= speaker_id < self.num_speakers:
            raise ValueError(
                f"speaker_id {speaker_id} is out of range: this model has "
                f"{self.num_speakers} speaker(s)."
            )
        pieces = self._tokenize(texts, strict)
        outputs = [[] for _ in texts]
        order = sorted(range(len(pieces)), key=lambda i: len(pieces[i][1]))
        for start in range(0, len(order), self.batch_size):
            chunk = [pieces[i] for i in order[start : start + self.batch_size]]
            for (item, _, piece_index), result in zip(
                chunk,
                self._run_batch([c[1] for c in chunk], speaking_rate, speaker_id, kinds),
                strict=True,
            ):
                outputs[item].append((piece_index, result))
        results = []
        for parts in outputs:
            parts = [result for _, result in sorted(parts, key=lambda part: part[0])]
            joined = tuple(self._join([part[kind] for part in parts], kind) for kind in kinds)
            results.append(joined if len(kinds) > 1 else joined[0])
        return results[0] if single else results

    def _tokenize(self, texts, strict):
        """[(text index, token ids, piece index)] for every speakable piece."""
        flat = [
            (i, j, piece)
            for i, text in enumerate(texts)
            for j, piece in enumerate(split_sentences(text, self.max_characters))
        ]
        # One tokenizer call for the whole request; its warnings about
        # dropped characters name the text and sentence.
        encoded = self.tokenizer.encode_batch(
            [piece for _, _, piece in flat],
            clip_ids=[f"text {i}, sentence {j + 1}" for i, j, _ in flat],
            errors="return",
        )
        speakable = {
            i
            for (i, _, _), ids in zip(flat, encoded, strict=True)
            if not isinstance(ids, Exception)
        }
        for i, text in enumerate(texts):
            if i in speakable:
                continue
            message = (
                f"Text {i} has nothing to say once normalized (no known symbol but "
                f"punctuation and spaces): {_preview(text)}."
            )
            if strict:
                raise SynthesisError(message)
            warnings.warn(message + " Its audio is empty.", SynthesisWarning, stacklevel=4)
        pieces = []
        for (i, j, piece), ids in zip(flat, encoded, strict=True):
            if not isinstance(ids, EmptyTextError):
                pieces.append((i, ids, j))
            elif i in speakable:
                warnings.warn(
                    f"Text {i}, sentence {j + 1} has nothing to say and is skipped: "
                    f"{_preview(piece)}.",
                    SynthesisWarning,
                    stacklevel=4,
                )
        return pieces

    def synthesize_tokens(self, token_lists, speaking_rate=1.0, speaker_ids=0):
        """Waveforms of token-id sequences, in one acoustic-model and one vocoder call.

        The batched core of `synthesize`, for callers that tokenize and
        split text themselves and group other callers' sentences into one
        batch (`mmae serve`). No pauses are added and the peak is not limited.

        Args:
            token_lists: non-empty sequences of token ids (`self.tokenizer`).
            speaking_rate: one rate for the batch.
            speaker_ids: one speaker for all, or one per sequence.
        """
        return [
            item["audio"]
            for item in self._run_batch(token_lists, speaking_rate, speaker_ids, ("audio",))
        ]

    def _run_batch(self, token_lists, speaking_rate, speaker_id, kinds):
        """[{kind: array}] of each item: its log-mel and/or waveform, cut to its length."""
        batch = len(token_lists)
        longest = max(len(ids) for ids in token_lists)
        width = -(-longest // self.token_multiple) * self.token_multiple
        tokens = np.zeros([batch, width], np.int32)
        for row, ids in enumerate(token_lists):
            tokens[row, : len(ids)] = ids
        num_tokens = np.array([len(ids) for ids in token_lists], np.int32)
        mel, num_frames = self._acoustic(
            tf.constant(tokens),
            tf.constant(num_tokens),
            tf.constant(np.broadcast_to(np.asarray(speaker_id, np.int32), [batch])),
            tf.constant(float(speaking_rate)),
        )
        num_frames = num_frames.numpy()
        items = [{} for _ in range(batch)]
        if "mel" in kinds:
            mel_rows = mel.numpy()
            for row in range(batch):
                items[row]["mel"] = mel_rows[row, : num_frames[row]]
        if "audio" in kinds:
            audio = self._vocode(mel, tf.constant(num_frames)).numpy()
            for row in range(batch):
                items[row]["audio"] = audio[
                    row, : self.vocoder.samples_for_frames(int(num_frames[row]))
                ]
        return items

    def _acoustic_model(self, tokens, num_tokens, speaker_id, speaking_rate):
        return self.model.synthesize_mel(tokens, num_tokens, speaker_id, speaking_rate)

    def _join(self, arrays, kind):
        """One text's pieces as one array: mels back to back, audio with pauses between."""
        if kind == "mel":
            if not arrays:
                return np.zeros([0, self.config.audio.num_mels], np.float32)
            return np.concatenate(arrays).astype(np.float32)
        if not arrays:
            return np.zeros([0], np.float32)
        pause = np.zeros([int(round(self.pause_seconds * self.sample_rate))], np.float32)
        joined = [arrays[0]]
        for array in arrays[1:]:
            joined.extend([pause, array])
        return limit_peak(np.concatenate(joined).astype(np.float32), self.config.audio)


def limit_peak(audio, audio_config):
    """`audio` scaled down to `audio_config.output_peak_level` if louder, so WAVs never clip."""
    level = audio_config.output_peak_level
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    return audio / peak * level if peak > level else audio


def _preview(text, limit=60):
    shown = text if len(text) <= limit else text[:limit] + "..."
    return repr(shown)
