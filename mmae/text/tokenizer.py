"""Tokenizers: text to the integer ids a model embeds, and back.

All tokenizers share one contract (`TextTokenizer`). The ones models train
and speak with run the project's text frontend
(`mmae.text.graph_frontend.GraphFrontend`, TensorFlow ops), the same ops an
exported SavedModel embeds: `CharacterTokenizer` reads normalized letters,
`FrontendTokenizer` with tokenizer="phonemes" reads IPA phonemes from the
bundled lexicon and grapheme-to-phoneme model (no espeak-ng).
`PhonemeTokenizer` asks espeak-ng itself (through `phonemizer`); it is the
reference the frontend's lexicon is built from and measured against. All map
onto a frozen, versioned symbol set from `mmae.text.symbols`, where id 0 is
padding and id 1 ends every utterance.

Importing this module does not import TensorFlow; the first encode does.

Example:

>>> tokenizer = CharacterTokenizer("chars-v1")
>>> ids = tokenizer.encode("Hi, Dr. Who!")
>>> tokenizer.decode(ids)
'hi, doctor who!'
"""

import collections
import logging
import warnings

from mmae.text.normalize import normalize_texts
from mmae.text.symbols import _PUNCTUATION, EOS, PAD, SYMBOL_SETS

__all__ = [
    "CharacterTokenizer",
    "EmptyTextError",
    "FrontendTokenizer",
    "PhonemeTokenizer",
    "TextTokenizer",
    "UnknownCharacterWarning",
    "tokenizer_from_config",
]

# phonemizer logs warnings (e.g. on words whose count changed after
# phonemization) that are expected and would flood a dataset build.
_PHONEMIZER_LOGGER = logging.getLogger("mmae.text.phonemizer")
_PHONEMIZER_LOGGER.setLevel(logging.ERROR)


class EmptyTextError(ValueError):
    """A transcript has nothing left to say once normalized."""


class UnknownCharacterWarning(UserWarning):
    """Characters outside the symbol set were dropped from a transcript."""


class TextTokenizer:
    """Maps text to symbol ids of a fixed symbol set, and ids back to text.

    Subclasses decide how text becomes symbols: `PhonemeTokenizer` through
    `_to_symbols` (its ids are looked up here, in `_to_ids`),
    `FrontendTokenizer` in the frontend's ops. Counting and reporting unknown
    symbols, refusing a text with nothing to say and appending the
    end-of-sequence id (`_finish`) are shared.

    Args:
        symbols: the symbol string (id = position), or the name of a symbol
            set in `mmae.text.symbols.SYMBOL_SETS`. It must start with the
            padding and end-of-sequence symbols.
        normalize: run `normalize_text` before tokenizing.

    Attributes:
        unknown_counts: a `collections.Counter` of every character dropped so
            far because the symbol set lacks it.
    """

    pad_id = 0
    eos_id = 1

    def __init__(self, symbols, normalize=True):
        symbols = SYMBOL_SETS.get(symbols, symbols)
        if symbols[:2] != PAD + EOS:
            raise ValueError(
                f"A symbol set must start with the padding {PAD!r} and end-of-sequence {EOS!r} "
                f"symbols, got {symbols[:2]!r}."
            )
        duplicates = sorted(c for c, n in collections.Counter(symbols).items() if n > 1)
        if duplicates:
            raise ValueError(f"Symbols appear more than once in the symbol set: {duplicates}.")
        self.symbols = symbols
        self.normalize = normalize
        # Padding and end-of-sequence are markers, never read from text: a
        # "_" or "~" in a transcript is an unknown character.
        self._symbol_to_id = {symbol: i for i, symbol in enumerate(symbols) if i >= 2}
        # Punctuation and space alone are nothing to say.
        self._spoken_ids = {
            i for symbol, i in self._symbol_to_id.items() if symbol not in _PUNCTUATION
        }
        self.unknown_counts = collections.Counter()

    @property
    def vocab_size(self):
        return len(self.symbols)

    def encode(self, text, clip_id=None):
        """Returns the ids of `text`, ending with `eos_id`.

        Args:
            text: a transcript.
            clip_id: names the clip in warnings and errors.

        Raises:
            EmptyTextError: nothing but punctuation and spaces is left.
        """
        return self.encode_batch([text], None if clip_id is None else [clip_id])[0]

    def encode_batch(self, texts, clip_ids=None, errors="raise"):
        """Encodes several transcripts; see `encode`.

        Args:
            texts: a sequence of transcripts.
            clip_ids: None, or one clip id per transcript.
            errors: "raise" stops at the first transcript with nothing to
                say; "return" puts its `EmptyTextError` in the result list in
                place of its ids and goes on with the rest (one call of the
                frontend, or of phonemizer, for the whole batch either way).

        Returns:
            A list of id lists (or, with errors="return", errors), one per
            transcript.

        Raises:
            EmptyTextError: with errors="raise", for the first transcript with
                nothing to say.
        """
        if errors not in ("raise", "return"):
            raise ValueError(f"errors must be 'raise' or 'return', got {errors!r}.")
        texts = list(texts)
        clip_ids = _check_clip_ids(texts, clip_ids)
        symbol_strings = self._to_symbols(self._prepare(texts)) if texts else []
        encoded = []
        for symbols, text, clip_id in zip(symbol_strings, texts, clip_ids, strict=True):
            try:
                encoded.append(self._to_ids(symbols, text, clip_id))
            except EmptyTextError as error:
                if errors == "raise":
                    raise
                encoded.append(error)
        return encoded

    def decode(self, ids):
        """Returns the symbols of `ids`, stopping at the first `eos_id`.

        Padding ids are skipped, so a padded row of a batch decodes to its
        utterance.
        """
        symbols = []
        for i in ids:
            i = int(i)
            if i == self.eos_id:
                break
            if not 0 <= i < self.vocab_size:
                raise ValueError(f"Id {i} is outside the vocabulary (size {self.vocab_size}).")
            if i != self.pad_id:
                symbols.append(self.symbols[i])
        return "".join(symbols)

    def get_config(self):
        return {"symbols": self.symbols, "normalize": self.normalize}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def _prepare(self, texts):
        # The texts as `_to_symbols` reads them.
        return normalize_texts(texts) if self.normalize else list(texts)

    def _to_symbols(self, texts):
        # One symbol string per (normalized) text.
        raise NotImplementedError

    def _to_ids(self, symbols, text, clip_id):
        # The reference tokenizer's symbol lookup; the frontend's ops do the
        # same (GraphFrontend.ids_from_symbols).
        ids = []
        unknown = collections.Counter()
        space = self._symbol_to_id.get(" ")
        dropped = False
        for symbol in symbols:
            i = self._symbol_to_id.get(symbol)
            if i is None:
                unknown[symbol] += 1
                dropped = True
                continue
            # A dropped word between two spaces leaves one space, as the
            # SavedModel's frontend does, not two space tokens.
            if not (dropped and i == space and (not ids or ids[-1] == space)):
                ids.append(i)
            dropped = False
        if dropped and ids and ids[-1] == space:
            ids.pop()
        return self._finish(ids, unknown, text, clip_id)

    def _finish(self, ids, unknown, text, clip_id):
        # Counts and reports unknown symbols, refuses a text with nothing to
        # say, and ends the ids.
        self.unknown_counts.update(unknown)
        if not self._spoken_ids.intersection(ids):
            dropped = f" (dropped unknown characters: {_describe(unknown)})" if unknown else ""
            raise EmptyTextError(
                f"{_describe_clip(clip_id)} is empty after normalization (no known symbol "
                f"but punctuation and spaces){dropped}; original text: {text!r}."
            )
        if unknown:
            # One warning per clip, listing every character, rather than one
            # per character.
            warnings.warn(
                f"{_describe_clip(clip_id)}: dropped characters not in the symbol set: "
                f"{_describe(unknown)}; original text: {text!r}.",
                UnknownCharacterWarning,
                stacklevel=3,
            )
        ids.append(self.eos_id)
        return ids


class FrontendTokenizer(TextTokenizer):
    """The project's text frontend, `mmae.text.graph_frontend.GraphFrontend`, as a tokenizer.

    Text is normalized, read (letters, or phonemes from the bundled lexicon
    and grapheme-to-phoneme model) and looked up by the frontend's TensorFlow
    ops, traced once per process and text setting
    (`mmae.text.graph_frontend.compiled`): the ids are the ones an exported
    SavedModel computes for the same text. Python only reports what was
    dropped and what had nothing to say. Encode many texts with
    `encode_batch`: one call of the ops for the whole batch.

    Args:
        symbols: the symbol string, or a symbol set name ("chars-v1",
            "phonemes-v1").
        tokenizer: "characters" or "phonemes".
        normalize: normalize the text first (numbers, abbreviations, case).
        language: the frontend pack's language (phonemes only).
    """

    def __init__(self, symbols, tokenizer="characters", normalize=True, language="en-us"):
        super().__init__(symbols, normalize=normalize)
        if tokenizer not in ("characters", "phonemes"):
            raise ValueError(f"tokenizer must be 'characters' or 'phonemes', got {tokenizer!r}.")
        self.tokenizer = tokenizer
        self.language = language
        if tokenizer == "phonemes":
            from mmae import pretrained

            # Fails now, not at the first encode, when no pack reads `language`.
            pretrained.frontend_path(language)

    def get_config(self):
        return {**super().get_config(), "tokenizer": self.tokenizer, "language": self.language}

    def encode_batch(self, texts, clip_ids=None, errors="raise", return_normalized=False):
        """Encodes several transcripts; see `TextTokenizer.encode_batch`.

        Args:
            return_normalized: also return the normalized texts (what a
                dataset stores as the clip's text), from the same call.

        Returns:
            The list of ids (or errors), and with `return_normalized` a
            second list: the normalized texts.
        """
        if errors not in ("raise", "return"):
            raise ValueError(f"errors must be 'raise' or 'return', got {errors!r}.")
        texts = list(texts)
        clip_ids = _check_clip_ids(texts, clip_ids)
        for text, clip_id in zip(texts, clip_ids, strict=True):
            if not isinstance(text, str):
                raise TypeError(
                    f"{_describe_clip(clip_id)} is a {type(text).__name__}, not text: {text!r:.80}."
                )
        encoded, normalized = [], []
        if texts:
            from mmae.config import TextConfig
            from mmae.text.graph_frontend import compiled, string_tensor

            config = TextConfig(
                tokenizer=self.tokenizer,
                symbols=self.symbols,
                language=self.language,
                normalize=self.normalize,
            )
            _, encode = compiled(config)
            outputs = {key: value.numpy() for key, value in encode(string_tensor(texts)).items()}
            normalized = [text.decode("utf-8") for text in outputs["normalized"]]
        for i, (text, clip_id) in enumerate(zip(texts, clip_ids, strict=True)):
            symbols = outputs["symbols"][i].decode("utf-8")
            unknown = collections.Counter(c for c in symbols if c not in self._symbol_to_id)
            if self.tokenizer == "phonemes":
                # Letters of other scripts, which the phoneme reader drops.
                unknown.update(c for c in normalized[i] if not c.isascii())
            # The frontend's ids end with EOS, which _finish adds back.
            ids = outputs["tokens"][i, : max(int(outputs["num_tokens"][i]) - 1, 0)].tolist()
            try:
                encoded.append(self._finish(ids, unknown, text, clip_id))
            except EmptyTextError as error:
                if errors == "raise":
                    raise
                encoded.append(error)
        return (encoded, normalized) if return_normalized else encoded


class CharacterTokenizer(FrontendTokenizer):
    """One id per character of the normalized text (the frontend with tokenizer="characters").

    Args:
        symbols: the symbol string, or a symbol set name such as "chars-v1".
        normalize: normalize the text first (numbers, abbreviations, case).

    Example:

    >>> tokenizer = CharacterTokenizer("chars-v1")
    >>> tokenizer.encode("Go!")
    [19, 27, 2, 1]
    """

    def __init__(self, symbols, normalize=True):
        super().__init__(symbols, tokenizer="characters", normalize=normalize)

    def get_config(self):
        return {"symbols": self.symbols, "normalize": self.normalize}


class PhonemeTokenizer(TextTokenizer):
    """One id per IPA character of espeak-ng's phonemes for the text.

    Stress marks ("ˈ", "ˌ") and length marks ("ː") are tokens of their own,
    punctuation is kept, and words are separated by a space.

    Phonemizing starts an espeak-ng voice, which is slow to do per call; use
    `encode_batch` for many transcripts.

    Args:
        symbols: the symbol string, or a symbol set name such as "phonemes-v1".
        language: an espeak-ng voice, e.g. "en-us" or "en-gb".
        normalize: run `normalize_text` first, so numbers and abbreviations
            are read the same way as by `CharacterTokenizer`.

    Raises:
        ImportError: `phonemizer` is not installed.
        RuntimeError: espeak-ng is not installed on the system.

    Example:

    >>> tokenizer = PhonemeTokenizer("phonemes-v1")
    >>> tokenizer.decode(tokenizer.encode("Hello, world!"))
    'həlˈoʊ, wˈɜːld!'
    """

    def __init__(self, symbols, language="en-us", normalize=True):
        super().__init__(symbols, normalize=normalize)
        self.language = language
        _require_espeak()
        # Built on first use and not pickled, so a tokenizer can be sent to
        # worker processes.
        self._backend = None

    def get_config(self):
        return {**super().get_config(), "language": self.language}

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_backend"] = None
        return state

    def _prepare(self, texts):
        # phonemizer reads each line as an utterance, so a newline would
        # split one transcript into two.
        return [" ".join(text.split()) for text in super()._prepare(texts)]

    def _to_symbols(self, texts):
        from phonemizer.separator import Separator

        if self._backend is None:
            from phonemizer.backend import EspeakBackend

            self._backend = EspeakBackend(
                self.language,
                preserve_punctuation=True,
                with_stress=True,
                # Drop the "(fr)...(en)" flags espeak-ng writes around words it
                # reads in another language; they are not phonemes.
                language_switch="remove-flags",
                logger=_PHONEMIZER_LOGGER,
            )
        # phonemizer skips empty lines, which would shift every later output
        # onto the wrong input; empty texts stay empty and raise later.
        spoken = [i for i, text in enumerate(texts) if text.strip()]
        phonemes = self._backend.phonemize(
            [texts[i] for i in spoken],
            separator=Separator(phone="", syllable="", word=" "),
            strip=True,
        )
        symbols = [""] * len(texts)
        for i, phones in zip(spoken, phonemes, strict=True):
            symbols[i] = phones
        return symbols


def tokenizer_from_config(text_config):
    """Builds the tokenizer a `mmae.config.TextConfig` describes.

    Args:
        text_config: a `TextConfig` (fields `tokenizer`, `symbol_set`,
            `symbols`, `language`, `normalize`).

    Example:

    >>> from mmae.config import TextConfig
    >>> tokenizer_from_config(TextConfig()).vocab_size
    39
    """
    kind = text_config.tokenizer
    symbol_set = text_config.symbol_set
    # A character tokenizer on phoneme symbols (or the reverse) silently drops
    # most of every transcript; catch the forgotten override early.
    expected_prefix = {"characters": "chars-", "phonemes": "phonemes-"}.get(kind)
    if expected_prefix is None:
        raise ValueError(f"text.tokenizer must be 'characters' or 'phonemes', got {kind!r}.")
    if symbol_set in SYMBOL_SETS and not symbol_set.startswith(expected_prefix):
        raise ValueError(
            f"text.tokenizer={kind!r} does not read symbol set {symbol_set!r}; "
            f"use a '{expected_prefix}*' symbol set."
        )
    symbols = text_config.symbols or symbol_set
    if kind == "characters":
        return CharacterTokenizer(symbols, normalize=text_config.normalize)
    return FrontendTokenizer(
        symbols, "phonemes", normalize=text_config.normalize, language=text_config.language
    )


def _require_espeak():
    try:
        from phonemizer.backend import EspeakBackend
    except ImportError as error:
        raise ImportError(
            "PhonemeTokenizer needs the phonemizer package: pip install mmae[phonemes]"
        ) from error
    if not EspeakBackend.is_available():
        raise RuntimeError(
            "PhonemeTokenizer needs the espeak-ng speech synthesizer, which was not found: "
            "sudo apt-get install espeak-ng (or set PHONEMIZER_ESPEAK_LIBRARY to its library)."
        )


def _check_clip_ids(texts, clip_ids):
    if clip_ids is None:
        return [None] * len(texts)
    clip_ids = list(clip_ids)
    if len(clip_ids) != len(texts):
        raise ValueError(f"Got {len(texts)} texts but {len(clip_ids)} clip ids.")
    return clip_ids


def _describe_clip(clip_id):
    return "Text (no clip id)" if clip_id is None else f"Clip {clip_id!r}"


def _describe(counts):
    return ", ".join(f"{char!r} (U+{ord(char):04X}) x{n}" for char, n in counts.most_common())
