"""The pronunciation lexicon: espeak-ng's phonemes for a general English vocabulary.

`PhonemeLexicon.build` phonemizes, with the project's reference
`PhonemeTokenizer` (espeak-ng through phonemizer), a general English word
list (every single-word lemma, irregular form and gloss word of WordNet 3.0,
about 105k words, from the Debian package `wordnet-base`), about 80k regular
inflections of WordNet's lemmas (plurals, -ed, -ing, -ly), number words and
the words of the normalizer's tables. Word-by-word lookup loses espeak-ng's
cross-word context, so the lexicon also keeps the forms that change next to
another word (measured with carrier phrases, kept only where they differ):
before a consonant and before a vowel ("the" is "ðə" or "ðɪ"; "a" is "ɐ",
where alone it is the letter "ˈeɪ"; "ɚ" links with "ɹ"), after another word
(function words), and the pairs of function words that espeak-ng reads as
one word ("of the" -> "ʌvðə"; "to be" only before another word).

The lexicon is built once (`mmae prepare-lexicon`, about a minute), saved
as a gzipped TSV and shipped with the text frontend, so that speaking needs
no espeak-ng. Its single words are also the training data of the learned
grapheme-to-phoneme model (`mmae.text.g2p`) that reads every other word.
"""

import collections
import functools
import gzip
import logging
import os
import re
import time
import warnings

from mmae.text import rules

__all__ = ["FUNCTION_WORDS", "PhonemeLexicon", "english_words"]

logger = logging.getLogger(__name__)

WORDNET_DIR = "/usr/share/wordnet"
_WORDNET_PARTS = ("noun", "verb", "adj", "adv")
_WORD_RE = re.compile(r"[a-z]+(?:['-][a-z]+)*")
_LETTERS = "abcdefghijklmnopqrstuvwxyz"
# The key suffix of a letter's name in a saved lexicon.
_LETTER_KEY = "|letter"


class PhonemeLexicon:
    """Word (and word pair) -> phoneme symbols, from `PhonemeTokenizer`, for the graph.

    Keys of `entries`:

    - "word": the word alone (also its form at the start or end of a phrase);
    - "word|c", "word|v": at the start of a phrase, before a word that starts
      with a consonant or a vowel (only where it differs from "word");
    - "word|m", "word|mc", "word|mv": the same after another word (only for
      the function words and where it differs);
    - "word word|" + one of "", "c", "v", "m", "mc", "mv": a pair that
      espeak-ng reads as one word in that context ("of the" -> "ʌvðə").

    `letters` holds the letter names for spelling unknown words.

    Args:
        entries: the dict described above.
        letters: "a".."z" -> phoneme symbols.
        stats: how it was built (counts, seconds), for the export report.
    """

    def __init__(self, entries, letters, stats=None):
        self.entries = entries
        self.letters = letters
        self.stats = dict(stats or {})

    def words(self):
        """{word: phonemes} of the single words without hyphens: the G2P's training data."""
        return {
            key: form
            for key, form in self.entries.items()
            if "|" not in key and " " not in key and "-" not in key
        }

    def save(self, path):
        """Writes the lexicon as a gzipped TSV (`key<TAB>phonemes`, sorted by key)."""
        rows = sorted(self.entries.items())
        rows += [(letter + _LETTER_KEY, form) for letter, form in sorted(self.letters.items())]
        with gzip.open(path, "wt", encoding="utf-8", compresslevel=9) as f:
            f.writelines(f"{key}\t{form}\n" for key, form in rows)

    @classmethod
    def load(cls, path):
        """Reads a lexicon `save` wrote.

        Raises:
            ValueError: a line is not `key<TAB>phonemes`, or a letter name is missing.
        """
        entries, letters = {}, {}
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                key, tab, form = line.rstrip("\n").partition("\t")
                if not tab or not key:
                    raise ValueError(f"{path}, line {number}: expected 'key<TAB>phonemes'.")
                if key.endswith(_LETTER_KEY):
                    letters[key[: -len(_LETTER_KEY)]] = form
                else:
                    entries[key] = form
        missing = sorted(set(_LETTERS) - set(letters))
        if missing:
            raise ValueError(f"{path} lacks the names of the letters {', '.join(missing)}.")
        return cls(entries, letters, {"entries": len(entries)})

    @classmethod
    def build(
        cls,
        symbols,
        language="en-us",
        texts=(),
        words=(),
        wordnet_dir=WORDNET_DIR,
        num_frequent_words=150,
    ):
        """Phonemizes a general English vocabulary plus the words of `texts` and `words`.

        Args:
            symbols: the phoneme symbol set (symbols outside it are dropped,
                as `PhonemeTokenizer` drops them).
            language: the espeak-ng voice of the run.
            texts: texts whose words (once normalized) join the vocabulary.
            words: extra words.
            wordnet_dir: WordNet 3.0's database (Debian package `wordnet-base`).
            num_frequent_words: the most frequent WordNet gloss words that
                join `FUNCTION_WORDS` for the context forms and word pairs.

        Raises:
            FileNotFoundError: WordNet is not installed.
        """
        from mmae.text.normalize import normalize_texts
        from mmae.text.tokenizer import PhonemeTokenizer

        start = time.perf_counter()
        vocabulary, inflections, frequency = english_words(wordnet_dir)
        given = set(words)
        for text in normalize_texts(texts):
            given.update(_WORD_RE.findall(text))
        given = {w for w in given if _WORD_RE.fullmatch(w)}
        vocabulary = sorted(vocabulary | given)
        inflections = sorted(inflections - set(vocabulary))
        function_words = set(FUNCTION_WORDS) | {
            w for w, _ in frequency.most_common(num_frequent_words)
        }
        function_words = set(function_words) & set(vocabulary)
        tokenizer = PhonemeTokenizer(symbols, language=language, normalize=False)
        lines = 0

        def forms(items, before="", after=""):
            """Each item's form in a carrier phrase (None where espeak-ng splits or joins it)."""
            nonlocal lines
            carried = [f"{before}{item}{after}" for item in items]
            lines += len(carried)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                encoded = tokenizer.encode_batch(carried, errors="return")
            expected = len(before.split()) + len(after.split()) + 1
            results = []
            for ids in encoded:
                parts = [] if isinstance(ids, Exception) else tokenizer.decode(ids).split()
                results.append(parts[len(before.split())] if len(parts) == expected else None)
            return results

        entries = {}
        # The carriers: a following word that starts with a consonant ("cat")
        # or a vowel ("apple"), and a word before ("cat").
        for word, form in zip(inflections, forms(inflections), strict=True):
            if form:
                entries[word] = form
        alone = dict(zip(vocabulary, forms(vocabulary), strict=True))
        entries.update((word, form) for word, form in alone.items() if form)
        # Before another word, espeak-ng changes only some words: function
        # words and some frequent verbs ("get", "go": stress), compounds
        # (stress) and words ending in "ɚ" (a linking "ɹ" before a vowel).
        # Reading all 100k words in context too would double the time for
        # about 200 more entries.
        frequent = {w for w, _ in frequency.most_common(10_000)} | function_words
        in_context = sorted(
            w
            for w, form in alone.items()
            if form and (w in frequent or "-" in w or form.endswith("ɚ"))
        )
        for key, after in (("c", " cat"), ("v", " apple")):
            for word, form in zip(in_context, forms(in_context, after=after), strict=True):
                if form and form != alone[word]:
                    entries[f"{word}|{key}"] = form
        function_words = sorted(function_words)
        medial = {
            key: forms(function_words, before="cat ", after=after)
            for key, after in (("m", ""), ("mc", " cat"), ("mv", " apple"))
        }
        for i, word in enumerate(function_words):
            for key, found in medial.items():
                plain = entries.get(f"{word}|{key[1:]}", entries.get(word))
                if found[i] and found[i] != plain:
                    entries[f"{word}|{key}"] = found[i]
        # Pairs espeak-ng joins: probed inside phrases, then read in every context.
        pairs = [f"{a} {b}" for a in function_words for b in function_words]
        joined = set()
        for before, after in (("", " cat"), ("cat ", " cat")):
            found = forms(pairs, before=before, after=after)
            joined.update(p for p, form in zip(pairs, found, strict=True) if form)
        joined = sorted(joined)
        contexts = [("", "", ""), ("c", "", " cat"), ("v", "", " apple")]
        contexts += [("m", "cat ", ""), ("mc", "cat ", " cat"), ("mv", "cat ", " apple")]
        for key, before, after in contexts:
            for pair, form in zip(joined, forms(joined, before, after), strict=True):
                if form:
                    entries[f"{pair}|{key}"] = form
        letters = {c: form or "" for c, form in zip(_LETTERS, forms(list(_LETTERS)), strict=True)}
        stats = {
            "words": len(vocabulary),
            "inflections": len(inflections),
            "given_words": len(given),
            "function_words": len(function_words),
            "joined_pairs": len(joined),
            "entries": len(entries),
            "phonemized_lines": lines,
            "seconds": round(time.perf_counter() - start, 1),
        }
        logger.info("Phoneme lexicon: %s", stats)
        return cls(entries, letters, stats)


# Closed-class words, whose pronunciation most depends on their neighbours.
FUNCTION_WORDS = tuple(
    """a an the this that these those my your his her its our their some any no every each all
    both either neither i you he she it we they me him us them myself yourself himself herself
    itself ourselves themselves who whom whose which what be am is are was were been being have
    has had having do does did done doing will would shall should can could may might must not
    and or but nor so yet if then than because as while when where why how whether though
    although unless until since of to in on at by for with from into onto upon about above below
    under over between among through during before after against without within along across
    behind beyond near off out up down around there here very too also just only even one two
    three more most much many few less least such own same other another don't doesn't didn't
    can't won't isn't aren't wasn't weren't hasn't haven't hadn't shouldn't wouldn't couldn't
    i'm you're he's she's it's we're they're i've you've we've they've i'll you'll he'll she'll
    we'll they'll i'd you'd he'd she'd we'd they'd that's there's what's let's""".split()
)


@functools.lru_cache(maxsize=2)
def english_words(wordnet_dir=WORDNET_DIR):
    """A general English word list from WordNet 3.0: (words, inflections, gloss word counts).

    `words`: every single-word lemma and irregular form of WordNet's four
    parts of speech, every word of its glosses (definitions and usage
    examples), number words from num2words (cardinals and ordinals to 100,
    scale words), the words of the normalizer's tables and `FUNCTION_WORDS`.
    `inflections`: regular forms of the lemmas (noun plurals; verb -s, -ed,
    -ing; adverbs in -ly from adjectives) that are not in `words`; some are
    not real words, which costs only space. Lowercase letters with inner
    apostrophes or hyphens.

    Raises:
        FileNotFoundError: `wordnet_dir` lacks WordNet's files.
    """
    from num2words import num2words

    if not os.path.exists(os.path.join(wordnet_dir, "index.noun")):
        raise FileNotFoundError(
            f"No WordNet database in {wordnet_dir}: the phoneme lexicon needs a general English "
            "word list (sudo apt-get install wordnet-base, or scripts/setup.sh)."
        )

    def read(name):
        with open(os.path.join(wordnet_dir, name), encoding="ascii", errors="replace") as f:
            return f.read().splitlines()

    lemmas = {}
    words = set()
    frequency = collections.Counter()
    for part in _WORDNET_PARTS:
        lemmas[part] = {
            line.split(" ", 1)[0].lower() for line in read(f"index.{part}") if line[:1] != " "
        }
        words.update(lemmas[part])
        words.update(w.lower() for line in read(f"{part}.exc") for w in line.split())
        for line in read(f"data.{part}"):
            if line[:1] != " " and " | " in line:
                frequency.update(_WORD_RE.findall(line.split(" | ", 1)[1].lower()))
    words.update(frequency)
    numbers = [num2words(i, lang="en") for i in range(101)]
    numbers += [num2words(i, lang="en", to="ordinal") for i in range(101)]
    numbers += ["thousand million billion trillion thousandth millionth oh"]
    tables = [
        *rules.TITLES.values(),
        *rules.TITLES_WITH_PERIOD.values(),
        *rules.ENDINGS.values(),
        *rules.ENDINGS_WITH_PERIOD.values(),
        *rules.SPOKEN_SYMBOLS.values(),
        *(unit for units in rules.CURRENCY_UNITS.values() for unit in units if unit),
        rules.OTHER_WORDS,
    ]
    for text in numbers + tables:
        words.update(_WORD_RE.findall(text))
    words.update(_LETTERS)
    words.update(FUNCTION_WORDS)
    words = {w for w in words if _WORD_RE.fullmatch(w)}
    inflections = set()
    for noun in lemmas["noun"]:
        inflections.add(_plural_spelling(noun))
    for verb in lemmas["verb"]:
        inflections.update(_verb_spellings(verb))
    for adjective in lemmas["adj"]:
        inflections.add(_adverb_spelling(adjective))
    inflections = {w for w in inflections if _WORD_RE.fullmatch(w)} - words
    return words, inflections, frequency


def _plural_spelling(word):
    if re.search(r"(?:s|x|z|ch|sh)$", word):
        return word + "es"
    if re.search(r"[^aeiou]y$", word):
        return word[:-1] + "ies"
    return word + "s"


def _verb_spellings(verb):
    forms = [_plural_spelling(verb)]
    # "stop" -> "stopped", "stopping" (short consonant-vowel-consonant verbs).
    double = re.fullmatch(r"[a-z]*[^aeiou][aeiou][bdgklmnprt]", verb) and len(verb) <= 5
    stem = verb + verb[-1] if double else verb
    if verb.endswith("e"):
        forms += [
            verb + "d",
            verb[:-1] + "ing" if not verb.endswith(("ee", "ye", "oe")) else verb + "ing",
        ]
    elif re.search(r"[^aeiou]y$", verb):
        forms += [verb[:-1] + "ied", verb + "ing"]
    else:
        forms += [stem + "ed", stem + "ing"]
        if double:
            forms += [verb + "ed", verb + "ing"]
    return forms


def _adverb_spelling(adjective):
    if re.search(r"[^aeiou]y$", adjective):
        return adjective[:-1] + "ily"
    if re.search(r"[^aeiou]le$", adjective):
        return adjective[:-1] + "y"
    if adjective.endswith("ic"):
        return adjective + "ally"
    return adjective + "ly"
