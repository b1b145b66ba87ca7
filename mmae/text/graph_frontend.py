"""The text frontend: raw text to token ids, in TensorFlow ops, defined once.

`GraphFrontend` is a `tf.Module` whose `__call__(texts)` maps a batch of
`tf.string` to padded token ids and lengths with the run's symbol set: no
Python, no `num2words`, no espeak-ng when it runs. Everything it needs
(the reading rules of `mmae.text.rules`, number words, a pronunciation
lexicon and a grapheme-to-phoneme model) is made in Python when it is built
and stored in the module as constants, `tf.lookup.StaticHashTable`s and
weights.

It is the only implementation of the frontend. An exported SavedModel
embeds it; `mmae prepare` (training data), the `Synthesizer`,
`mmae.text.normalize_text` and the tokenizers of `mmae.text` call the same
ops, traced once per process (`compiled`). `mmae.text.rules.FRONTEND_VERSION`
names its behaviour, and every `TextConfig` records it.

    frontend = GraphFrontend.from_config(config.text)
    tokens, num_tokens = frontend(tf.constant(["Dr. Smith paid $3.50.", ""]))
    # int32 [2, T] padded with 0 and ending in EOS (1); num_tokens [2], 0 for
    # a text with nothing to say (empty, emoji only, punctuation only).

The normalizer (`normalize`) uses RE2 patterns, which have no look-behind or
look-ahead; where a rule needs context, it matches the neighbouring character
instead. What it covers:

- Unicode to ASCII: the typographic translation table and NFKD accent
  stripping, as one table over every code point below U+20000 whose folded
  form is ASCII ("é" -> "e", "ﬁ" -> "fi", "…" -> "...", full-width forms);
  vulgar fractions ("2½" -> "two and a half"); number ranges ("1990–95");
  dashes and "--" as " - ".
- Abbreviations: the same tables ("Dr." -> "doctor", "St." as saint or
  street, "etc." keeping its period at a sentence end, "No. 5", "#5").
- Lowercasing (Unicode).
- Numbers: cardinals up to 15 digits (thousands separators, "007" and
  longer numbers digit by digit), negative numbers, currency ($ £ € ¥ with
  cents and "million"-style scales), percentages, ordinals ("21st"),
  plurals and decades ("1990s", "'80s"), times ("10:05"), decimals ("3.14",
  ".5"), years (a lone 1100-2099).
- Symbols ("&" -> "and", "%", "@", "+", "=", "°"), other brackets as
  parentheses, every other character not in `chars-v1` as a space, and the
  space clean-up.

Where RE2 differs from Python's `re` (this normalizer was first written with
`re`, and tests/test_text.py keeps that version's cases): Python's Unicode
`\\w` and `\\b` are ASCII in RE2, which only matters next to letters of other
scripts, and letters of other scripts keep their accents ("ά"), which changes
nothing once the tokenizer drops them.

Phonemes: espeak-ng cannot run in a graph, so the frontend reads a text frontend pack
(`mmae.runs.load_frontend`; the one for en-us is bundled, made by
scripts/make_bundled_frontend.sh): a pronunciation lexicon that
`mmae.text.lexicon.PhonemeLexicon.build` phonemized with the project's own
`PhonemeTokenizer` (WordNet's words and inflections and a spelling
dictionary's words, about 380k entries with the context forms of function
words and the word pairs espeak-ng joins), and a learned grapheme-to-phoneme
model (`mmae.text.g2p.G2P`) trained on the lexicon's words. The graph splits the
normalized text at phonemizer's
punctuation marks (which it keeps as they are), looks every word up in its
context, and joins the forms with spaces. A word not in the lexicon is read
as a known stem plus "s" ("licensor's"), by the G2P, or, with no vowel
letter (an acronym: "gpl"), with letter names, as espeak-ng spells it
("dʒˌiːpˌiːˈɛl"); a hyphenated word not in the lexicon is read as the phrase
of its parts, said as one word ("peer-to-peer": "pˈɪɹɾəpˈɪɹ").
The pack's lexicon and G2P go into a SavedModel (the bundled model's is
52.8 MB with version 9's lexicon, 46.1 MB with version 8's).

Agreement with `PhonemeTokenizer` (exact equality of all ids of a text) and
the G2P's error rates on held-out words are measured by
bench/frontend_bench.py. What still differs from espeak-ng: phrase-level
stress beyond a word pair and the phrase-end cases the lexicon records,
homographs ("use", "permit": noun or verb), a linking "ɹ" that espeak-ng
drops in some phrases, rarer joined word pairs, multiword entries ("summa
cum laude") and the G2P's errors on words outside the lexicon.
"""

import functools
import logging
import re
import threading
import unicodedata
import warnings

import tensorflow as tf

from mmae.text import rules
from mmae.text.lexicon import PREVIOUS_WORD_MODES, PhonemeLexicon, english_words
from mmae.text.symbols import _PUNCTUATION, EOS, PAD

__all__ = ["GraphFrontend", "PhonemeLexicon", "english_words"]

logger = logging.getLogger(__name__)


# The digits are matched by ASCII classes in RE2.
_INTEGER = r"\d{1,3}(?:,\d{3})+|\d+"
_NUMBER = rf"(?:{_INTEGER})(?:\.\d+)?|\.\d+"
_CURRENCY_SYMBOLS = rules.CURRENCY_SYMBOLS
_SCALES = "|".join(rules.SCALES)
_CURRENCY_RE = (
    rf"([{re.escape(_CURRENCY_SYMBOLS)}])\s?({_INTEGER})(?:\.(\d+))?(?:\s?({_SCALES})\b)?"
)
_PERCENT_RE = rf"({_NUMBER})\s?%"
_ORDINAL_RE = rf"\b({_INTEGER})(st|nd|rd|th)\b"
_PLURAL_RE = rf"'?\b({_INTEGER})('?)s\b"
_TIME_RE = r"\b([01]?\d|2[0-3]):([0-5]\d)\b"
_DECIMAL_RE = rf"\b({_INTEGER})\.(\d+)\b"
_BARE_DECIMAL_RE = r"(^|[^\w.])\.(\d+)\b"
# A lone year: the context characters stand in for Python's look-arounds, and
# "\x02" marks a number after "minus ", which is never a year.
_YEAR_RE = r"(^|^,|\D,|[^\w.,\x02\x03])(1[1-9]\d\d|20\d\d)($|[^\w.,\x03]|[.,]$|[.,]\D)"
# phonemizer's punctuation marks that survive normalization; it phonemizes
# the text between them piece by piece and puts them back as they were.
_MARKS_RE = r"(?:\s*[;:,.!?()]+\s*)+"
# First symbols of the IPA vowels of phonemes-v1: "before a vowel" forms.
_VOWELS = "aæɐɑɒeəɚɛɜɝiɪɨoɔuʊʌᵻ"
_MAX_CARDINAL_DIGITS = rules.MAX_CARDINAL_DIGITS
_ORDINAL_ENDINGS = rules.ORDINAL_ENDINGS
_MARK = "\x01"
# Marks a part of a hyphenated word that is read glued to the part before.
_GLUE = "\x05"


class GraphFrontend(tf.Module):
    """Raw text to token ids of a symbol set, in TensorFlow ops (see the module docstring).

    Args:
        symbols: the symbol string of the run's `TextConfig` (id = position).
        tokenizer: "characters" or "phonemes".
        normalize: run the in-graph normalizer first (`TextConfig.normalize`).
        lexicon: a `PhonemeLexicon`, required for "phonemes".
        g2p: a trained `mmae.text.g2p.G2P` for the words the lexicon lacks
            (phonemes only); without one they are spelled with letter names.
        name: the module name.
    """

    def __init__(
        self, symbols, tokenizer="characters", normalize=True, lexicon=None, g2p=None, name=None
    ):
        super().__init__(name=name)
        if tokenizer not in ("characters", "phonemes"):
            raise ValueError(f"tokenizer must be 'characters' or 'phonemes', got {tokenizer!r}.")
        if tokenizer == "phonemes" and lexicon is None:
            raise ValueError("A phoneme frontend needs a PhonemeLexicon.")
        if symbols[:2] != PAD + EOS:
            raise ValueError(f"A symbol set starts with {PAD!r} and {EOS!r}, got {symbols[:2]!r}.")
        self.symbols = symbols
        self.tokenizer = tokenizer
        self.normalize_text = normalize
        self.lexicon_size = 0 if lexicon is None else len(lexicon.entries)
        self.eos_id = 1
        # Padding and end markers are never read from text, as in TextTokenizer.
        self._symbol_ids = _table(list(symbols[2:]), list(range(2, len(symbols))), -1, tf.int32)
        self._space_id = symbols.index(" ") if " " in symbols else -2
        self._spoken = tf.constant([s not in _PUNCTUATION for s in symbols])
        folding = _folding_table()
        # "=" in front, so that an empty replacement (a combining accent) and
        # a missing key (the default "") differ.
        self._folding = _table(list(folding), ["=" + v for v in folding.values()], "", tf.string)
        if lexicon is not None:
            self._lexicon = _table(list(lexicon.entries), list(lexicon.entries.values()), "")
            self._letter_names = tf.constant([lexicon.letters[c] for c in _LETTERS])
        self.g2p = g2p

    @classmethod
    def from_config(cls, text_config, lexicon=None, g2p=None, pack=None):
        """The frontend of a `TextConfig`; phonemes read the bundled lexicon and G2P.

        Args:
            text_config: the run's `mmae.config.TextConfig`.
            lexicon: a `PhonemeLexicon` to use instead of the pack's (phonemes only).
            g2p: a `G2P` to use with `lexicon` (None: spell unknown words).
            pack: a text frontend pack directory (default: the one bundled
                for `text_config.language`, `mmae.pretrained.frontend_path`).
        """
        symbols = text_config.symbols
        if text_config.tokenizer == "phonemes" and lexicon is None:
            from mmae import pretrained, runs

            pack = pack or pretrained.frontend_path(text_config.language)
            pack_config, lexicon, g2p = runs.load_frontend(pack)
            if pack_config.text.symbols != symbols:
                raise ValueError(
                    f"The text frontend pack writes the symbols {pack_config.text.symbols!r}; "
                    f"the run reads {symbols!r}."
                )
            if pack_config.text.frontend != rules.FRONTEND_VERSION:
                raise ValueError(
                    f"The text frontend pack {pack} belongs to frontend version "
                    f"{pack_config.text.frontend}; this mmae runs version "
                    f"{rules.FRONTEND_VERSION}. Make the pack again "
                    "(scripts/make_bundled_frontend.sh)."
                )
        return cls(symbols, text_config.tokenizer, text_config.normalize, lexicon, g2p)

    def __call__(self, texts):
        """Texts [B] -> (token ids int32 [B, T] padded with 0, num_tokens int32 [B]).

        A text with nothing to say (no symbol but punctuation and spaces) gets
        num_tokens 0 and a row of padding. Eager calls run op by op; wrap the
        frontend in `tf.function(frontend, autograph=False)` for speed.
        """
        return self.tokenize(texts)

    def tokenize(self, texts):
        """Same as `__call__`."""
        return self.ids_from_symbols(self.to_symbols(texts))

    def encode(self, texts):
        """Texts [B] -> everything the Python tokenizers need, in one call.

        Returns:
            A dict: "normalized" texts [B] (the texts themselves without
            normalization), "symbols" [B] (normalized text or phonemes, with
            characters the symbol set lacks still in), "tokens" [B, T] and
            "num_tokens" [B], as `tokenize`.
        """
        normalized = self.normalize(texts) if self.normalize_text else texts
        symbols = self._symbols_of(normalized)
        tokens, num_tokens = self.ids_from_symbols(symbols)
        return {
            "normalized": normalized,
            "symbols": symbols,
            "tokens": tokens,
            "num_tokens": num_tokens,
        }

    def _drop_unknown(self, ids):
        """Drops unknown symbols (-1) from ragged ids; a dropped word leaves one space."""
        lengths = ids.row_lengths()
        dense = ids.to_tensor(-2)  # -2: past the end of a row
        dropped = tf.equal(dense, -1)
        # Whether the symbol just before each one was dropped.
        after_drop = tf.pad(dropped[:, :-1], [[0, 0], [1, 0]])
        kept = tf.ragged.boolean_mask(dense, dense >= 0)
        after_drop = tf.ragged.boolean_mask(after_drop, dense >= 0).to_tensor(False)
        dense = kept.to_tensor(-2)
        is_space = tf.equal(dense, self._space_id)
        # A space right after a drop goes when nothing, or a space, is before it.
        space_before = tf.pad(is_space[:, :-1], [[0, 0], [1, 0]], constant_values=True)
        keep = (dense >= 0) & ~(after_drop & is_space & space_before)
        kept = tf.ragged.boolean_mask(dense, keep)
        # A space left at the end by a dropped tail goes too.
        # (One column of padding, so that a batch of empty rows has a column to read.)
        padded = tf.pad(dropped, [[0, 0], [0, 1]])
        last = tf.gather(padded, tf.maximum(lengths - 1, 0), axis=1, batch_dims=1)
        ends_dropped = last & (lengths > 0)
        dense = kept.to_tensor(-2)
        count = kept.row_lengths()
        position = tf.range(tf.shape(dense, out_type=tf.int64)[1])[None, :]
        trailing = (position == count[:, None] - 1) & tf.equal(dense, self._space_id)
        return tf.ragged.boolean_mask(dense, (dense >= 0) & ~(trailing & ends_dropped[:, None]))

    def to_symbols(self, texts):
        """Texts [B] -> symbol strings [B]: normalized text, or phonemes."""
        return self._symbols_of(self.normalize(texts) if self.normalize_text else texts)

    def _symbols_of(self, text):
        if self.tokenizer == "phonemes":
            # (Normalized text has no control characters; raw text may, and
            # "\x01" marks matches in `_substitute`.)
            text = tf.strings.regex_replace(text, r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", " ")
            text = self._phonemes(tf.strings.strip(tf.strings.regex_replace(text, r"\s+", " ")))
        return text

    def ids_from_symbols(self, symbol_strings):
        """Symbol strings [B] -> (ids [B, T], num_tokens [B]), as `TextTokenizer._to_ids`."""
        chars = tf.strings.unicode_split(symbol_strings, "UTF-8", errors="replace")
        ids = tf.ragged.map_flat_values(self._symbol_ids.lookup, chars)
        ids = self._drop_unknown(ids)
        spoken = tf.reduce_any(
            tf.ragged.map_flat_values(lambda i: tf.gather(self._spoken, i), ids), axis=1
        )
        eos = tf.fill([tf.shape(symbol_strings)[0], 1], tf.constant(self.eos_id, tf.int32))
        tokens = tf.concat([ids, eos], axis=1).to_tensor(0)
        tokens *= tf.cast(spoken, tf.int32)[:, None]
        num_tokens = tf.where(spoken, tf.cast(ids.row_lengths(), tf.int32) + 1, 0)
        return tokens, num_tokens

    # -- normalization ---------------------------------------------------------

    def normalize(self, texts):
        """Texts [B] -> normalized texts [B], as `normalize_text` (see the module docstring)."""
        text = tf.strings.regex_replace(texts, r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", " ")
        text = _substitute(text, _FRACTION_RE, _fraction_match)
        text = self._fold(text)
        # Twice: a match consumes the digit a following range would start with.
        for _ in range(2):
            text = tf.strings.regex_replace(text, rf"(\d)\s*[{_DASHES}]\s*(\d)", r"\1 to \2")
        text = tf.strings.regex_replace(text, rf"\s*(?:[{_DASHES}]+|--+)\s*", " - ")
        text = _abbreviations(text)
        text = tf.strings.lower(text, encoding="utf-8")
        text = _numbers(text)
        text = _symbols(text)
        text = tf.strings.regex_replace(text, r"\s+([!),.:;?])", r"\1")
        text = tf.strings.regex_replace(text, r"\(\s+", "(")
        return tf.strings.strip(tf.strings.regex_replace(text, r"\s+", " "))

    def _fold(self, texts):
        chars = tf.strings.unicode_split(texts, "UTF-8", errors="replace")

        def fold(flat):
            found = self._folding.lookup(flat)
            return tf.where(found == "", flat, tf.strings.regex_replace(found, "^=", ""))

        return tf.strings.reduce_join(tf.ragged.map_flat_values(fold, chars), axis=1)

    # -- phonemes --------------------------------------------------------------

    def _phonemes(self, texts):
        """Normalized texts [B] -> phoneme strings as phonemizer writes them."""
        return _substitute(texts, _MARKS_RE, self._chunk_phonemes, keep_matches=True)

    def _chunk_phonemes(self, chunks):
        """Text between punctuation marks [C] -> phonemes, word by word in context."""
        words = tf.strings.split(chunks)
        # espeak-ng drops quotes and lone dashes, and reads no other script
        # here (only ASCII is left but for letters the lexicon cannot have).
        flat = tf.strings.regex_replace(words.flat_values, r"^['-]+|['-]+$|[^\x00-\x7f]", "")
        words = words.with_flat_values(flat)
        words = tf.ragged.boolean_mask(words, words.with_flat_values(flat != ""))
        words, glued = self._split_compounds(words)
        flat = words.flat_values
        count = tf.size(flat, out_type=tf.int64)
        index = tf.range(count)
        position = index - tf.gather(words.row_starts(), words.value_rowids())
        row_length = tf.gather(words.row_lengths(), words.value_rowids())
        has_next = position + 1 < row_length
        has_next_2 = position + 2 < row_length

        def following(values, steps):
            return tf.gather(values, tf.minimum(index + steps, tf.maximum(count - 1, 0)))

        base = self._in_mode(flat, position)
        vowel = tf.strings.regex_full_match(base, f"[ˈˌ]?[{_VOWELS}].*")
        # espeak-ng pauses before "and", "or", "which", ... when it is not
        # the last word and at least two words since the phrase began or the
        # last such word came before it: that word starts afresh, and the
        # word before it is read before a pause ("p").
        candidate = (self._lexicon.lookup(flat + "|pause") != "") & has_next
        candidate &= tf.logical_not(glued)
        candidates = tf.concat([[-1], tf.boolean_mask(index, candidate)], axis=0)
        last = tf.gather(candidates, tf.cumsum(tf.cast(candidate, tf.int64), exclusive=True))
        last = tf.maximum(last, index - position - 1)
        paused = candidate & (index - last - 1 >= 2)

        def before(steps, exists):  # what follows: "c" consonant, "v" vowel, "p" pause, "" nothing
            kind = tf.where(following(vowel, steps), "v", "c")
            return tf.where(exists, tf.where(following(paused, steps), "p", kind), "")

        after_word, after_pair = before(1, has_next), before(2, has_next_2)
        medial = tf.where((position > 0) & tf.logical_not(paused), "m", "")
        single = self._in_context(flat, medial, after_word, base)
        pair = tf.where(has_next, flat + " " + following(flat, 1), "")
        # A pair espeak-ng reads as one word in this context has an entry.
        pair_form = tf.where(has_next, self._lexicon.lookup(pair + "|" + medial + after_pair), "")
        merged = pair_form != ""
        # Greedy left to right, as espeak-ng: in a run of mergeable pairs
        # take the first, third, ... (runs never cross texts: the last word
        # of a chunk has no pair).
        group = tf.cumsum(tf.cast(tf.logical_not(merged), tf.int64))
        run_start = tf.math.unsorted_segment_min(
            tf.where(merged, index, count), group, num_segments=count + 1
        )
        taken = merged & ((index - tf.gather(run_start, group)) % 2 == 0)
        covered = tf.concat([[False], taken[:-1]], axis=0)[:count] & (position > 0)
        # A pair whose second word is glued to its first keeps the glue.
        pair_form = tf.where(
            following(glued, 1), tf.strings.regex_replace(pair_form, " ", " " + _GLUE), pair_form
        )
        forms = tf.where(taken, pair_form, tf.where(covered, "", single))
        last = tf.gather(words.row_limits() - 1, words.value_rowids())
        forms = self._phrase_stress(flat, forms, has_next, after_word, last, taken | covered)
        forms = tf.where(glued & (forms != ""), _GLUE + forms, forms)
        forms = words.with_flat_values(forms)
        forms = tf.ragged.boolean_mask(forms, forms != "")
        return _join_compounds(tf.strings.reduce_join(forms, axis=1, separator=" "))

    def _split_compounds(self, words):
        """Hyphenated words the lexicon lacks -> their parts as words glued to the one before.

        espeak-ng reads "peer-to-peer" as the phrase "peer to peer" said as
        one word ("pˈɪɹɾəpˈɪɹ"): each part in its context ("to" before a
        consonant is "tə"), then a flap or an "ŋ" where the parts meet
        (`_join_compounds`). On the 13,055 hyphenated words of the lexicon
        this reads 96.1% as espeak-ng does, against 91.0% for the parts each
        alone (bench/frontend_bench.py, "hyphenated_words", version 6).

        Returns:
            (words with the parts split out, flat bool: glued to the word before).
        """
        flat = words.flat_values
        compound = tf.strings.regex_full_match(flat, "[^-]+(?:-[^-]+)+") & (
            self._lexicon.lookup(flat) == ""
        )
        flat = tf.where(compound, tf.strings.regex_replace(flat, "-", " " + _GLUE), flat)
        words = tf.strings.split(
            tf.strings.reduce_join(words.with_flat_values(flat), axis=1, separator=" ")
        )
        glued = tf.strings.regex_full_match(words.flat_values, _GLUE + ".*")
        return words.with_flat_values(tf.strings.regex_replace(words.flat_values, _GLUE, "")), glued

    def _phrase_stress(self, words, forms, has_next, after, last, paired):
        """Stresses the last word of a phrase that espeak-ng stresses before an unstressed tail.

        "go before them" is "bᵻfˈoːɹ ðˌɛm", "go before the cat" is
        "bᵻfˌoːɹ ðə kˈæt": a word with "|qc" and "|qv" forms (its form before
        an unstressed word that starts with a consonant or a vowel) takes
        them when every word after it to the end of the phrase is quiet
        ("|quiet": "end" for the phrase's last word, "mid" for the others).
        Then it is stressed, so only the last such word of a phrase is.
        Words of a joined pair keep their pair's form, and a pair stressed
        in its context is not quiet.

        Args:
            words, forms, has_next, after: the flat words of the phrases,
                their forms so far, whether another word follows in the
                phrase and what follows ("v": a vowel).
            last: the flat index of each word's phrase's last word.
            paired: the words read as part of a pair.
        """
        quiet = self._lexicon.lookup(words + "|quiet")
        quiet = tf.where(
            has_next,
            tf.strings.regex_full_match(quiet, "(.* )?mid( .*)?"),
            tf.strings.regex_full_match(quiet, "(.* )?end( .*)?"),
        )
        # A joined pair stressed in its context ("so it was": "ɪt wˈʌz") is not quiet.
        quiet &= tf.logical_not(paired & tf.strings.regex_full_match(forms, ".*ˈ.*"))

        def count_after(flags):  # in each word's phrase, after it
            total = tf.cumsum(tf.cast(flags, tf.int64))
            return tf.gather(total, last) - total

        stressed = self._lexicon.lookup(words + "|q" + tf.where(after == "v", "v", "c"))
        takes = (stressed != "") & has_next & tf.logical_not(paired)
        takes &= count_after(tf.logical_not(quiet)) == 0
        takes &= count_after(takes) == 0
        return tf.where(takes, stressed, forms)

    def _in_mode(self, words, position):
        """Words [W] alone, or in the mode the word before sets ("to use": the verb)."""
        base = self._word_phonemes(words)
        before = tf.concat([[""], words[:-1]], axis=0)[: tf.size(words)]
        before_2 = tf.concat([["", ""], words[:-2]], axis=0)[: tf.size(words)]
        # A pair espeak-ng reads as one word ("did not") sets its own modes.
        pair_modes = tf.where(
            position > 1, self._lexicon.lookup(before_2 + " " + before + "|modes"), ""
        )
        modes = tf.where(position > 0, self._lexicon.lookup(before + "|modes"), "")
        modes = tf.where(pair_modes != "", pair_modes, modes)
        # ... or the word before a word the mode passes through ("may not use").
        through = tf.where(position > 1, self._lexicon.lookup(before + "|through"), "")
        modes_2 = tf.where(position > 1, self._lexicon.lookup(before_2 + "|modes"), "")

        def has(values, mode):
            return tf.strings.regex_full_match(values, f"(.* )?{mode}( .*)?")

        for mode, _ in PREVIOUS_WORD_MODES:
            in_mode = has(modes, mode) | (has(through, mode) & has(modes_2, mode))
            form = tf.where(in_mode, self._lexicon.lookup(words + "|after:" + mode), "")
            base = tf.where(form != "", form, base)
        return base

    def _in_context(self, words, medial, after, base):
        """A word's form after a word or not ("m"), before a consonant, a vowel or nothing."""
        medial_form = self._lexicon.lookup(words + "|" + medial + after)
        initial_form = self._lexicon.lookup(words + "|" + after)
        return tf.where(
            (medial != "") & (medial_form != ""),
            medial_form,
            tf.where((after != "") & (initial_form != ""), initial_form, base),
        )

    def _word_phonemes(self, words):
        """Words [W] -> lexicon phonemes alone; then a known stem + "s"; the G2P; spelling."""
        found = self._lexicon.lookup(words)
        # "program's", "licensors", "boxes": a known stem and the suffix
        # espeak-ng would give it after the stem's last sound.
        stem_form = tf.fill(tf.shape(words), "")
        for ending, stem_pattern in (("es$", ".*(?:s|x|z|ch|sh)es"), ("'?s$", ".*'?s")):
            stem = tf.strings.regex_replace(words, ending, "")
            form = self._lexicon.lookup(stem)
            usable = tf.strings.regex_full_match(words, stem_pattern) & (form != "")
            stem_form = tf.where((stem_form == "") & usable, form, stem_form)
        suffix = tf.where(
            tf.strings.regex_full_match(stem_form, ".*[szʃʒ]"),
            "ᵻz",
            tf.where(tf.strings.regex_full_match(stem_form, ".*[ptkfθ]"), "s", "z"),
        )
        # (Hyphenated words the lexicon lacks were split by `_split_compounds`.)
        unknown = (found == "") & (stem_form == "")
        spelled = self._spell(words)
        if self.g2p is not None:
            # Only acronyms are spelled: a word with no vowel letter ("gpl").
            readable = unknown & tf.strings.regex_full_match(words, ".*[aeiouy].*")
            spelled = tf.where(readable, self._transcribe(words, readable), spelled)
        return tf.where(found != "", found, tf.where(stem_form != "", stem_form + suffix, spelled))

    def _transcribe(self, words, selected):
        """The G2P's phonemes of the `selected` words [W] (bool), "" for the others."""
        indices = tf.range(tf.size(words))
        parts = tf.dynamic_partition(words, tf.cast(selected, tf.int32), 2)
        positions = tf.dynamic_partition(indices, tf.cast(selected, tf.int32), 2)
        others = tf.fill(tf.shape(parts[0]), "")
        return tf.dynamic_stitch(positions, [others, self.g2p.transcribe(parts[1])])

    def _spell(self, words):
        """Letter names, as espeak-ng spells: secondary stress on all but the last ("ˌeɪbˌiːsˈiː")."""
        codes = tf.strings.unicode_decode(words, "UTF-8")
        codes = tf.ragged.boolean_mask(codes, (codes >= 97) & (codes <= 122))
        names = tf.ragged.map_flat_values(lambda c: tf.gather(self._letter_names, c - 97), codes)
        rows = names.value_rowids()
        last = tf.range(tf.size(rows, out_type=tf.int64)) == tf.gather(names.row_limits() - 1, rows)
        secondary = tf.strings.regex_replace(names.flat_values, "ˈ", "ˌ")
        names = names.with_flat_values(tf.where(last, names.flat_values, secondary))
        return tf.strings.reduce_join(names, axis=1)


def _join_compounds(phonemes):
    """Joins the glued parts of compounds, with a flap or an "ŋ" where they meet.

    A "t" between a vowel (or "ɹ") and an unstressed vowel is a flap
    ("peer-to-peer": "pˈɪɹɾəpˈɪɹ", "state-of-the-art": "stˈeɪɾʌvðɪˈɑːɹt"),
    and "n" before "k" or "ɡ" is "ŋ" ("non-consumer": "nˈɑːŋkənsˈuːmɚ").
    """
    glue = " " + _GLUE
    phonemes = tf.strings.regex_replace(
        phonemes, f"([{_VOWELS}]ː?|ɹ)t{glue}([{_VOWELS}])", "\\1ɾ\\2"
    )
    phonemes = tf.strings.regex_replace(
        phonemes, f"([{_VOWELS}]ː?|ɹ){glue}t([{_VOWELS}])", "\\1ɾ\\2"
    )
    phonemes = tf.strings.regex_replace(phonemes, f"n{glue}([kɡ])", "ŋ\\1")
    return tf.strings.regex_replace(phonemes, glue, "")


def _table(keys, values, default, value_dtype=tf.string):
    initializer = tf.lookup.KeyValueTensorInitializer(
        tf.constant(keys, tf.string), tf.constant(values, value_dtype)
    )
    return tf.lookup.StaticHashTable(initializer, default_value=tf.constant(default, value_dtype))


def _substitute(texts, pattern, transform, keep_matches=False):
    """Replaces the matches of the RE2 `pattern` in `texts` [N] by `transform(matches)`.

    `transform` maps a 1-D string tensor to one of the same size, so a rule
    can compute its replacement from the matched text: the regular
    expression callback of `re.sub`, in TensorFlow ops. With
    `keep_matches=True` it is the text between matches that is transformed.
    """
    marked = tf.strings.regex_replace(texts, pattern, rf"{_MARK}\0{_MARK}")
    pieces = tf.strings.split(marked, sep=_MARK)
    flat = pieces.flat_values
    position = tf.range(tf.size(flat, out_type=tf.int64)) - tf.gather(
        pieces.row_starts(), pieces.value_rowids()
    )
    # Every match adds two marks, so matches sit at the odd positions.
    is_match = position % 2 == 1
    selected = tf.cast(tf.math.logical_xor(is_match, keep_matches), tf.int32)
    indices = tf.dynamic_partition(tf.range(tf.size(flat)), selected, 2)
    values = tf.dynamic_partition(flat, selected, 2)
    flat = tf.dynamic_stitch(indices, [values[0], transform(values[1])])
    return tf.strings.reduce_join(pieces.with_flat_values(flat), axis=1)


def _groups(matches, pattern, *groups):
    """The numbered groups of `matches`, each of which matches `pattern` entirely."""
    return [tf.strings.regex_replace(matches, f"^(?:{pattern})$", f"\\{g}") for g in groups]


# -- numbers, as num2words writes them ------------------------------------------


@functools.lru_cache(maxsize=1)
def _constants():
    """Word tables as eager tensors, so every traced function captures each only once."""
    from num2words import num2words

    tables = {
        "below_thousand": [num2words(i, lang="en") for i in range(1000)],
        "years": [num2words(i, lang="en", to="year") for i in range(1100, 2100)],
        "digits": list(rules.DIGIT_NAMES),
        "fractions_with_whole": _fraction_words("a"),
        "fractions_alone": _fraction_words("one"),
    }
    with tf.init_scope():
        return {name: tf.constant(values) for name, values in tables.items()}


def _digit_words(digits):
    """ "007" -> "zero zero seven"."""
    names = _constants()["digits"]
    codes = tf.strings.unicode_decode(digits, "UTF-8")
    words = tf.ragged.map_flat_values(lambda c: tf.gather(names, c - 48), codes)
    return tf.strings.reduce_join(words, axis=1, separator=" ")


def _number_words(digits):
    """Digit strings of at most 15 digits -> num2words' cardinal without commas."""
    below_thousand = _constants()["below_thousand"]
    value = tf.strings.to_number(digits, tf.int64)
    words = []
    for power, scale in reversed(
        list(enumerate(["", "thousand", "million", "billion", "trillion"]))
    ):
        group = (value // 10 ** (3 * power)) % 1000
        group_words = tf.gather(below_thousand, group)
        if power:
            words.append(tf.where(group > 0, group_words + " " + scale, ""))
        else:
            # "one thousand and five", "one million, one hundred" (commas dropped).
            joiner = tf.where((value >= 1000) & (group < 100), "and ", "")
            words.append(tf.where(group > 0, joiner + group_words, ""))
    joined = tf.strings.reduce_join(tf.stack(words, axis=1), axis=1, separator=" ")
    joined = tf.strings.strip(tf.strings.regex_replace(joined, " +", " "))
    return tf.where(value == 0, "zero", joined)


def _cardinal(integers):
    """ "1,200" -> "one thousand two hundred"; "007" and numbers over 15 digits digit by digit."""
    digits = tf.strings.regex_replace(integers, ",", "")
    length = tf.strings.length(digits)
    by_digit = (length > _MAX_CARDINAL_DIGITS) | (
        (length > 1) & tf.strings.regex_full_match(digits, "0.*")
    )
    numeric = tf.where(by_digit | (digits == ""), "0", digits)
    return tf.where(by_digit, _digit_words(digits), _number_words(numeric))


def _ordinal(integers):
    digits = tf.strings.regex_replace(integers, ",", "")
    too_long = tf.strings.length(digits) > _MAX_CARDINAL_DIGITS
    words = _number_words(tf.where(too_long, "0", digits))
    words = tf.where(too_long, _digit_words(digits), words) + "#"
    for ending, replacement in _ORDINAL_ENDINGS:
        words = tf.strings.regex_replace(words, ending, replacement)
    return words


def _year(digits):
    years = _constants()["years"]
    value = tf.strings.to_number(tf.where(digits == "", "0", digits), tf.int64)
    return tf.gather(years, tf.clip_by_value(value - 1100, 0, 999))


def _decimal(integers, fractions):
    """ "3", "14" -> "three point one four"; an empty integer part: "point one four"."""
    point = "point " + _digit_words(fractions)
    return tf.where(integers == "", point, _cardinal(integers) + " " + point)


def _number(numbers):
    """ "12", "1,200", "3.5" or ".5" in words."""
    integers, fractions = _groups(numbers, r"([\d,]*)(?:\.(\d+))?", 1, 2)
    return tf.where(fractions == "", _cardinal(integers), _decimal(integers, fractions))


def _currency(matches):
    symbol, integer, fraction, scale = _groups(matches, _CURRENCY_RE, 1, 2, 3, 4)
    units = {symbol: rules.CURRENCY_UNITS[symbol] for symbol in _CURRENCY_SYMBOLS}

    def unit(index):
        value = tf.fill(tf.shape(symbol), "")
        for char, names in units.items():
            value = tf.where(symbol == char, names[index] or "", value)
        return value

    major, majors, minor, minors = (unit(i) for i in range(4))
    digits = tf.strings.regex_replace(integer, ",", "")
    whole_is_one = tf.strings.regex_full_match(digits, "0*1")
    whole_is_zero = tf.strings.regex_full_match(digits, "0+")
    no_fraction = tf.strings.regex_full_match(fraction, "0*")
    cardinal = _cardinal(integer)
    decimal = _decimal(integer, fraction)
    major_words = cardinal + " " + tf.where(whole_is_one, major, majors)
    length = tf.strings.length(fraction)
    cents = tf.strings.to_number(
        tf.where(length == 1, fraction + "0", tf.where(length == 2, fraction, "0")), tf.int32
    )
    minor_words = _cardinal(tf.strings.as_string(cents)) + " " + tf.where(cents == 1, minor, minors)
    words = tf.where(whole_is_zero, minor_words, major_words + " and " + minor_words)
    words = tf.where(
        (minor == "") | (tf.strings.length(fraction) > 2), decimal + " " + majors, words
    )
    words = tf.where(no_fraction, major_words, words)
    scaled = tf.where(fraction == "", cardinal, decimal) + " " + scale + " " + majors
    words = tf.where(scale != "", scaled, words)
    return " " + words + " "


def _percent(matches):
    (number,) = _groups(matches, _PERCENT_RE, 1)
    return " " + _number(number) + " percent"


def _ordinal_match(matches):
    (integer,) = _groups(matches, _ORDINAL_RE, 1)
    return _ordinal(integer)


def _plural(matches):
    integer, apostrophe = _groups(matches, _PLURAL_RE, 1, 2)
    digits = tf.strings.regex_replace(integer, ",", "")
    is_year = tf.strings.regex_full_match(digits, r"1[1-9]\d\d|20\d\d")
    words = tf.where(is_year, _year(tf.where(is_year, digits, "")), _cardinal(integer))
    possessive = (apostrophe != "") & tf.logical_not(tf.strings.regex_full_match(digits, ".*0"))
    plural = tf.where(
        tf.strings.regex_full_match(words, ".*y"),
        tf.strings.regex_replace(words, "y$", "ies"),
        tf.where(tf.strings.regex_full_match(words, ".*x"), words + "es", words + "s"),
    )
    return tf.where(possessive, words + "'s", plural)


def _time(matches):
    hours, minutes = _groups(matches, _TIME_RE, 1, 2)
    hours = tf.strings.as_string(tf.strings.to_number(hours, tf.int32))
    hour_words = _cardinal(hours)
    hour_value = tf.strings.to_number(hours, tf.int32)
    on_the_hour = hour_words + tf.where(hour_value <= 12, " o'clock", " hundred")
    oh = hour_words + " oh " + _cardinal(tf.strings.substr(minutes, 1, 1))
    other = hour_words + " " + _cardinal(minutes)
    return tf.where(
        minutes == "00",
        on_the_hour,
        tf.where(tf.strings.regex_full_match(minutes, "0.*"), oh, other),
    )


def _decimal_match(matches):
    integer, fraction = _groups(matches, _DECIMAL_RE, 1, 2)
    return _decimal(integer, fraction)


def _bare_decimal(matches):
    before, fraction = _groups(matches, _BARE_DECIMAL_RE, 1, 2)
    return before + _decimal(tf.fill(tf.shape(fraction), ""), fraction)


def _year_match(matches):
    before, digits, after = _groups(matches, _YEAR_RE, 1, 2, 3)
    return before + _year(digits) + after


def _numbers(text):
    """Every number rule, in order: minus, currency, percent, ordinals, plurals, times, decimals,
    years, then the other integers."""
    # Python's integers end where no digit follows ("1,0001" is "1" and
    # "0001"): a comma group followed by a digit loses its comma ("\x03") to
    # the number rules until the end.
    text = tf.strings.regex_replace(text, r",(\d{3}\d)", "\x03\\1")
    symbols = re.escape(_CURRENCY_SYMBOLS)
    text = tf.strings.regex_replace(text, rf"(^|[^\w.,)-])-([{symbols}]?\.?\d)", r"\1minus \2")
    text = _substitute(text, _CURRENCY_RE, _currency)
    text = _substitute(text, _PERCENT_RE, _percent)
    text = _substitute(text, _ORDINAL_RE, _ordinal_match)
    text = _substitute(text, _PLURAL_RE, _plural)
    # "mp3", "3d": a number glued to a word is a word of its own.
    text = tf.strings.regex_replace(text, r"(\pL)(\d)", r"\1 \2")
    text = tf.strings.regex_replace(text, r"(\d)(\pL)", r"\1 \2")
    text = _substitute(text, _TIME_RE, _time)
    text = _substitute(text, _DECIMAL_RE, _decimal_match)
    text = _substitute(text, _BARE_DECIMAL_RE, _bare_decimal)
    text = tf.strings.regex_replace(text, r"minus (\d)", "minus \x02\\1")
    for _ in range(2):  # a match uses up the character before the next year
        text = _substitute(text, _YEAR_RE, _year_match)
    text = tf.strings.regex_replace(text, "\x02", "")
    text = _substitute(text, _INTEGER, _cardinal)
    return tf.strings.regex_replace(text, "\x03", ",")


# -- characters, abbreviations and symbols ----------------------------------------

_DASHES = rules.DASHES
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


@functools.lru_cache(maxsize=1)
def _folding_table():
    """Character -> its ASCII form, for every code point that folds to ASCII.

    The typographic table, then NFKD without combining marks, one character
    at a time (the dashes are left to the dash rules). Characters that fold
    to something non-ASCII are left alone: the
    graph drops non-ASCII letters at tokenization and reads other symbols
    as spaces.
    """
    folding = {"`": "'"}
    for code in range(0x80, 0x20000):
        if 0xD800 <= code < 0xE000:
            continue
        char = chr(code)
        if char in _DASHES:
            continue
        folded = unicodedata.normalize("NFKD", char.translate(rules.TYPOGRAPHY))
        folded = "".join(c for c in folded if not unicodedata.combining(c))
        if folded != char and folded.isascii():
            folding[char] = folded
        elif unicodedata.category(char) == "Nd":
            # Python's \d and int() read every script's digits; RE2's \d is ASCII.
            folding[char] = str(unicodedata.digit(char))
    return folding


_FRACTIONS = rules.VULGAR_FRACTIONS
_FRACTION_RE = rf"(\d+)?\s?([{_FRACTIONS}])"


@functools.lru_cache(maxsize=2)
def _fraction_words(article):
    words = []
    for fraction in _FRACTIONS:
        numerator, _, denominator = unicodedata.normalize("NFKD", fraction).partition("\u2044")
        words.append(rules.fraction_words(int(numerator), int(denominator), article))
    return words


def _fraction_match(matches):
    whole, fraction = _groups(matches, _FRACTION_RE, 1, 2)
    with_whole, alone = _constants()["fractions_with_whole"], _constants()["fractions_alone"]
    index = tf.zeros_like(whole, tf.int32)
    for i, char in enumerate(_FRACTIONS):
        index = tf.where(fraction == char, i, index)
    return tf.where(
        whole == "",
        " " + tf.gather(alone, index) + " ",
        " " + _cardinal(whole) + " and " + tf.gather(with_whole, index) + " ",
    )


def _any_case(word):
    return "".join(f"[{c}{c.upper()}]" for c in word)


def _abbreviations(text):
    """Number signs, titles, sentence-ending abbreviations, saints and streets (before
    lowercasing)."""
    text = tf.strings.regex_replace(text, rf"\b{_any_case('no')}\.\s*(\d)", r"number \1")
    text = tf.strings.regex_replace(text, r"#\s?(\d)", r"number \1")
    for word, spoken in rules.TITLES.items():
        text = tf.strings.regex_replace(text, rf"\b{_any_case(word)}\b\.?", f" {spoken} ")
    for word, spoken in rules.TITLES_WITH_PERIOD.items():
        text = tf.strings.regex_replace(text, rf"\b{_any_case(word)}\.", f" {spoken} ")
    # Endings keep their period ("\x04") at the end of the text or before a
    # capitalized word that is not another ending ("\x06": period dropped).
    endings = {**rules.ENDINGS, **rules.ENDINGS_WITH_PERIOD}
    any_ending = "|".join(_any_case(w) for w in sorted(endings, key=len, reverse=True))
    for _ in range(2):
        text = tf.strings.regex_replace(
            text, rf"\b({any_ending})\.(\s+(?:{any_ending})\b)", "\\1\x06\\2"
        )
    text = tf.strings.regex_replace(text, rf"\b({any_ending})\.(\s*)$", "\\1\x04\\2")
    text = tf.strings.regex_replace(text, rf"\b({any_ending})\.(\s+[A-Z])", "\\1\x04\\2")
    for word, spoken in rules.ENDINGS.items():
        text = tf.strings.regex_replace(text, rf"\b{_any_case(word)}\b[.\x06]?", spoken)
    for word, spoken in rules.ENDINGS_WITH_PERIOD.items():
        text = tf.strings.regex_replace(text, rf"\b{_any_case(word)}[.\x06]", spoken)
        text = tf.strings.regex_replace(text, rf"\b{_any_case(word)}\x04", spoken + "\x04")
    text = tf.strings.regex_replace(text, "\x04", ".")
    text = tf.strings.regex_replace(text, "\x06", ".")
    # "St Paul" is a saint; "Baker St" and "Baker St." a street; other "st" saints.
    st = _any_case("st")
    text = tf.strings.regex_replace(text, rf"(^|[^\w']){st}(\s+[A-Z])", r"\1saint\2")
    text = tf.strings.regex_replace(text, r"\b([A-Z0-9][\w']*\s+)St\b(\.?)", r"\1street\2")
    return tf.strings.regex_replace(text, rf"(^|[^\w']){st}\b\.?", r"\1saint")


def _symbols(text):
    """Spoken symbols, brackets, and spaces for every other character the symbol set lacks."""
    for char, spoken in rules.SPOKEN_SYMBOLS.items():
        text = tf.strings.regex_replace(text, re.escape(char), spoken)
    for char, bracket in rules.BRACKETS.items():
        text = tf.strings.regex_replace(text, re.escape(char), bracket)
    # Other scripts' letters stay, for the tokenizer to drop; other non-ASCII
    # characters and the ASCII the symbol set lacks are read as spaces.
    text = tf.strings.regex_replace(text, r"[^\x00-\x7f\pL]", " ")
    return tf.strings.regex_replace(text, r"[^a-z!'(),\-.:;? \x{80}-\x{10ffff}]", " ")


_COMPILED = {}
_COMPILED_LOCK = threading.Lock()


def compiled(text_config):
    """This process's `GraphFrontend` of a `TextConfig`, and its traced `encode`.

    Built once per text setting and shared by every tokenizer and thread of
    the process: building reads the lexicon pack and tracing the ops takes
    seconds, calling the traced function milliseconds.

    Returns:
        (frontend, encode): `encode` maps a 1-D string tensor as
        `GraphFrontend.encode`.
    """
    key = (
        text_config.tokenizer,
        text_config.symbols,
        text_config.language,
        bool(text_config.normalize),
    )
    with _COMPILED_LOCK:
        if key not in _COMPILED:
            frontend = GraphFrontend.from_config(text_config)
            encode = tf.function(
                frontend.encode,
                input_signature=[tf.TensorSpec([None], tf.string)],
                autograph=False,
            )
            _COMPILED[key] = (frontend, encode)
        return _COMPILED[key]


def string_tensor(texts):
    """A 1-D `tf.string` tensor of Python strings, as UTF-8.

    Raises:
        TypeError: an item is not a `str` (None, bytes and numbers are not text).
    """
    encoded = []
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"Text {i} is a {type(text).__name__}, not a str: {text!r:.80}.")
        try:
            encoded.append(text.encode("utf-8"))
        except UnicodeEncodeError:
            # Lone surrogates (undecodable bytes of a command line): U+FFFD,
            # which the normalizer reads as a space.
            fixed = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
            encoded.append(fixed.encode("utf-8"))
    return tf.constant(encoded, tf.string, shape=[len(encoded)])


def normalize_batch(texts):
    """`mmae.text.normalize_texts`: the frontend's normalizer on Python strings."""
    from mmae.config import TextConfig

    texts = list(texts)
    if not texts:
        return []
    _, encode = compiled(TextConfig())
    normalized = encode(string_tensor(texts))["normalized"].numpy()
    return [text.decode("utf-8") for text in normalized]


def agreement(frontend, tokenizer, texts):
    """Fraction of `texts` whose graph ids equal `tokenizer.encode_batch`'s, and the mismatches.

    Args:
        frontend: a `GraphFrontend`, or any function from a string tensor to
            (tokens, num_tokens), such as a traced `frontend.tokenize`.
        tokenizer: the Python tokenizer of the same text config.
        texts: the texts.

    Returns:
        (rate, [(text, expected symbols, graph symbols)] for every mismatch).
        Texts with nothing to say agree when the graph gives them no tokens.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = tokenizer.encode_batch(texts, errors="return")
    if isinstance(frontend, GraphFrontend):
        frontend = tf.function(frontend.tokenize, autograph=False)
    tokens, num_tokens = frontend(tf.constant(list(texts)))
    tokens, num_tokens = tokens.numpy(), num_tokens.numpy()
    mismatches = []
    for i, (text, ids) in enumerate(zip(texts, expected, strict=True)):
        got = tokens[i, : num_tokens[i]].tolist()
        want = [] if isinstance(ids, Exception) else list(ids)
        if got != want:
            mismatches.append((text, tokenizer.decode(want), tokenizer.decode(got)))
    return 1.0 - len(mismatches) / max(len(texts), 1), mismatches
