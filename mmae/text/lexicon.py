"""The pronunciation lexicon: espeak-ng's phonemes for a general English vocabulary.

`PhonemeLexicon.build` phonemizes, with the project's reference
`PhonemeTokenizer` (espeak-ng through phonemizer), a general English word
list (every single-word lemma, irregular form and gloss word of WordNet 3.0,
about 105k words, from the Debian package `wordnet-base`), about 80k regular
inflections of WordNet's lemmas (plurals, -ed, -ing, -ly), number words,
the words of the normalizer's tables and, from `mmae prepare-lexicon`, the
words of a spelling dictionary (`DICTIONARY_WORD_LIST`: names, places and
technical words that WordNet lacks). Word-by-word lookup loses espeak-ng's
cross-word context, so the lexicon also keeps the forms that change next to
another word (measured with carrier phrases, kept only where they differ):
before a consonant and before a vowel ("the" is "ðə" or "ðɪ"; "a" is "ɐ",
where alone it is the letter "ˈeɪ"; "ɚ" links with "ɹ"; "goeth" loses its
stress before a stressed word: every word is read so), after another word
(function words), and the pairs of function words that espeak-ng reads as
one word ("of the" -> "ʌvðə"; "to be" only before another word) or otherwise
than each word alone ("such as" -> "sˈʌtʃ ɐz").

The lexicon is built once (`mmae prepare-lexicon`, about four minutes), saved
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

__all__ = [
    "DICTIONARY_WORD_LIST",
    "FUNCTION_WORDS",
    "PREVIOUS_WORD_MODES",
    "PhonemeLexicon",
    "english_words",
    "read_word_list",
]

logger = logging.getLogger(__name__)

WORDNET_DIR = "/usr/share/wordnet"
# A spelling dictionary's word list (Debian package `wamerican-insane`, about
# 660k entries with names, places and technical words that WordNet lacks).
DICTIONARY_WORD_LIST = "/usr/share/dict/american-english-insane"
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
    - "word word|" + one of "", "c", "v", "p", "m", "mc", "mv", "mp": a pair
      that espeak-ng reads as one word in that context ("of the" ->
      "ʌvðə"), or as two words otherwise than each alone ("such as" ->
      "sˈʌtʃ ɐz"; the form then holds both, with a space).
    - "word|qc", "word|qv": a word's stressed form when only unstressed
      words follow it to the end of the phrase, the next one starting with
      a consonant or a vowel ("before them": "bᵻfˈoːɹ"); "word|quiet":
      "end", "mid" or both, where a word stays unstressed at the end of a
      phrase or inside such an unstressed tail.

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
        function_words = (
            set(FUNCTION_WORDS)
            | set(ARCHAIC_WORDS)
            | {w for w, _ in frequency.most_common(num_frequent_words)}
        )
        function_words = set(function_words) & set(vocabulary)
        tokenizer = PhonemeTokenizer(symbols, language=language, normalize=False)
        lines = 0

        def readings(phrases):
            """Each phrase's words as espeak-ng reads them ([] where it fails)."""
            nonlocal lines
            lines += len(phrases)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                encoded = tokenizer.encode_batch(phrases, errors="return")
            return [
                [] if isinstance(ids, Exception) else tokenizer.decode(ids).split()
                for ids in encoded
            ]

        def forms(items, before="", after=""):
            """Each item's form in a carrier phrase (None where espeak-ng splits or joins it)."""
            expected = len(before.split()) + len(after.split()) + 1
            return [
                parts[len(before.split())] if len(parts) == expected else None
                for parts in readings([f"{before}{item}{after}" for item in items])
            ]

        entries = {}
        # The carriers: a following word that starts with a consonant ("cat")
        # or a vowel ("apple"), and a word before ("cat").
        for word, form in zip(inflections, forms(inflections), strict=True):
            if form:
                entries[word] = form
        alone = dict(zip(vocabulary, forms(vocabulary), strict=True))
        entries.update((word, form) for word, form in alone.items() if form)
        # Before another word, espeak-ng changes only some words: function
        # words and the words its dictionary stresses less inside a phrase,
        # with what it derives from them ("go", "goeth", "so", "sodom":
        # stress), compounds (stress) and words ending in "ɚ" (a linking
        # "ɹ" before a vowel). Every word is read before a consonant; before
        # a vowel, only those that changed or might link.
        frequent = {w for w, _ in frequency.most_common(10_000)} | function_words
        single = dict(entries)  # the words and their inflections, alone
        words_alone = sorted(single)
        changed_words = set()
        for word, form in zip(words_alone, forms(words_alone, after=" cat"), strict=True):
            if form and form != single[word]:
                entries[f"{word}|c"] = form
                changed_words.add(word)
        in_context = sorted(
            w
            for w in words_alone
            if w in frequent or w in changed_words or "-" in w or single[w].endswith("ɚ")
        )
        for word, form in zip(in_context, forms(in_context, after=" apple"), strict=True):
            if form and form != single[word]:
                entries[f"{word}|v"] = form
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
        # A pause before "and", "or", "but", "which", ...: espeak-ng makes
        # one inside a phrase (the word is third or later, and not last). The
        # word before it then neither links nor flaps ("holder" stays
        # "hˈoʊldɚ", "it" stays "ɪt"). Found with a probe word whose form
        # changes: "to" before a consonant, "holder" before a vowel.
        candidates = sorted(frequent)

        def probe_word(word):
            return "holder" if re.match("[aeiouy]", word) else "to"

        inside = readings([f"cat cat {probe_word(w)} {w} cat" for w in candidates])
        at_end = readings([f"cat cat {probe_word(w)} {w}" for w in candidates])
        pause_words = sorted(
            word
            for word, a, b in zip(candidates, inside, at_end, strict=True)
            if len(a) == 5 and len(b) == 4 and a[2] != b[2]
        )
        for word in pause_words:
            entries[f"{word}|pause"] = "1"
        before_pause = sorted(set(in_context) | set(function_words))
        for word, form in zip(
            before_pause, forms(before_pause, before="cat ", after=" and cat"), strict=True
        ):
            if form and form != entries.get(word):
                entries[f"{word}|mp"] = form
        for key, before, after in _PAUSE_CONTEXTS:
            for pair, form in zip(joined, forms(joined, before, after), strict=True):
                if form:
                    entries[f"{pair}|{key}"] = form
        # espeak-ng's modes from the word before: "to use" and "we use" read
        # the verb ("juːz"), "it uses" the verb's -s form, "had read" the
        # past ("ɹˈɛd"). A word joins a mode's class when it changes the
        # mode's example as the mode's own word does; a word's form in the
        # mode is read after that word, and kept where it differs.
        single_words = {k: v for k, v in entries.items() if "|" not in k and " " not in k}
        mode_words, through_words = {}, {}
        for mode, example in PREVIOUS_WORD_MODES:
            changed = forms([example], before=f"{mode} ")[0]
            if not changed or changed == single_words.get(example):
                continue
            found = readings([f"{w} {example}" for w in candidates + joined])
            for word, parts in zip(candidates + joined, found, strict=True):
                if len(parts) == 2 and parts[1] == changed:
                    mode_words.setdefault(word, []).append(mode)
            # Words the mode passes through ("may not use": the verb).
            found = readings([f"{mode} {w} {example}" for w in candidates])
            for word, parts in zip(candidates, found, strict=True):
                if len(parts) == 3 and parts[2] == changed and mode not in mode_words.get(word, ()):
                    through_words.setdefault(word, []).append(mode)
            # Function words read at the end of a phrase are stressed ("it
            # is" -> "ˈɪz") whatever the word before: only other words.
            in_mode = sorted(set(single_words) - set(FUNCTION_WORDS))
            for word, form in zip(in_mode, forms(in_mode, before=f"{mode} "), strict=True):
                if form and form != single_words[word]:
                    entries[f"{word}|after:{mode}"] = form
        for word, modes in mode_words.items():
            entries[f"{word}|modes"] = " ".join(modes)
        for word, modes in through_words.items():
            entries[f"{word}|through"] = " ".join(modes)
        # A phrase's stress: espeak-ng stresses some function words when
        # only unstressed words follow them to the end of the phrase ("go
        # before them": "bᵻfˈoːɹ ðˌɛm"; "go before the cat": "bᵻfˌoːɹ").
        # Such a word keeps its form before an unstressed word that starts
        # with a consonant or a vowel ("|qc", "|qv"); a word that stays
        # unstressed at the end of a phrase ("them") or inside a tail of
        # unstressed words ("be" in "shall be in you") is marked "|quiet".
        unstressed = [("c", " him"), ("v", " it")]
        stress_candidates = sorted(set(candidates) | changed_words)
        plain = forms(stress_candidates, before="cat ", after=" cat")
        stressed = {}
        for key, after in unstressed:
            found = forms(stress_candidates, before="cat ", after=after)
            for word, was, form in zip(stress_candidates, plain, found, strict=True):
                if was and form and "ˈ" not in was and "ˈ" in form:
                    entries[f"{word}|q{key}"] = form
                    stressed[word] = form
        for probe in ("among", "before"):
            if probe not in stressed:
                raise RuntimeError(f"espeak-ng no longer stresses {probe!r} before 'him'.")
        quiet = {}
        for where, after in (("end", ""), ("mid", " him")):
            found = [
                readings([f"cat {probe} {w}{after}" for w in candidates])
                for probe in ("among", "before")
            ]
            for word, *parts in zip(candidates, *found, strict=True):
                size = 3 + bool(after)
                if all(len(p) == size and "ˈ" in p[1] for p in parts):
                    quiet.setdefault(word, []).append(where)
        for word, where in quiet.items():
            entries[f"{word}|quiet"] = " ".join(where)
        # Roman numerals, which espeak-ng reads as "Roman six" ("vi", "iii"),
        # where no word of the vocabulary has that spelling.
        numerals = [n for n in _roman_numerals(2, 400) if n not in entries]
        for numeral, parts in zip(numerals, readings(numerals), strict=True):
            if len(parts) > 1 and parts[0] == ROMAN_PREFIX:
                entries[numeral] = " ".join(parts)
        letters = {c: form or "" for c, form in zip(_LETTERS, forms(list(_LETTERS)), strict=True)}
        # Pairs of words espeak-ng reads apart but not as each alone in
        # context: its own entries for word pairs ("such as": "sˈʌtʃ ɐz",
        # "each of": "ˈiːtʃ əv", "so much": "sˈoʊ mˌʌtʃ") and the phrase
        # stress of a pair at a phrase's end ("do so": "dˈuː soʊ", "it is":
        # "ɪɾ ˈɪz"). Found by reading every pair of function words in every
        # context both with espeak-ng and with the graph frontend over the
        # entries so far, and kept where they differ.
        context_pairs = _context_pairs(
            symbols,
            PhonemeLexicon(entries, letters),
            pairs,
            [*contexts, *_PAUSE_CONTEXTS],
            readings,
        )
        entries.update(context_pairs)
        stats = {
            "words": len(vocabulary),
            "inflections": len(inflections),
            "given_words": len(given),
            "function_words": len(function_words),
            "words_changed_before_a_word": len(changed_words),
            "joined_pairs": len(joined),
            "context_pair_forms": len(context_pairs),
            "pause_words": len(pause_words),
            "mode_words": len(mode_words),
            "words_modes_pass": len(through_words),
            "phrase_end_stressed_words": len(stressed),
            "quiet_words": len(quiet),
            "entries": len(entries),
            "phonemized_lines": lines,
            "seconds": round(time.perf_counter() - start, 1),
        }
        logger.info("Phoneme lexicon: %s", stats)
        return cls(entries, letters, stats)


# espeak-ng's modes set by the word before, each (a word that sets it, a
# word whose form it changes): the verb ("to use": "juːz"), the verb's -s
# form ("it uses": "juːzᵻz"), the past participle ("had read": "ɹˈɛd").
PREVIOUS_WORD_MODES = (("to", "use"), ("it", "uses"), ("had", "read"))
# The contexts of a word pair before a pause ("and" inside a phrase): at the
# start of a phrase and after another word, as (key, before, after).
_PAUSE_CONTEXTS = (("p", "", " and cat"), ("mp", "cat ", " and cat"))
# How espeak-ng begins its reading of a Roman numeral ("vi": "ɹˌoʊmən sˈɪks").
ROMAN_PREFIX = "ɹˌoʊmən"
# Words of older English (the King James Bible, Shakespeare) missing from WordNet.
ARCHAIC_WORDS = """thee thou thy thine ye hath doth dost hast art shalt wilt canst couldst
    wouldst shouldst didst wast wert saith unto hither thither whither whence thence
    yea nay lo spake begat brethren wherewith whereto thyself thitherward hitherward whoso
    shouldest wouldest couldest mightest mayest""".split()

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


def read_word_list(path):
    """The words of a one-word-a-line list (such as `DICTIONARY_WORD_LIST`), lowercased.

    Possessives ("Abel's") are left out: the frontend reads "'s" itself.
    What remains must be letters with inner apostrophes or hyphens.

    Raises:
        FileNotFoundError: `path` does not exist.
    """
    if not os.path.exists(path):
        hint = " (sudo apt-get install wamerican-insane, or scripts/setup.sh)"
        raise FileNotFoundError(
            f"No word list at {path}" + (hint if path == DICTIONARY_WORD_LIST else "") + "."
        )
    with open(path, encoding="utf-8", errors="replace") as f:
        words = {line.strip().lower() for line in f}
    return sorted(w for w in words if not w.endswith("'s") and _WORD_RE.fullmatch(w))


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
    words.update(ARCHAIC_WORDS)
    words = {w for w in words if _WORD_RE.fullmatch(w)}
    inflections = set()
    for noun in lemmas["noun"]:
        inflections.add(_plural_spelling(noun))
    for verb in lemmas["verb"]:
        inflections.update(_verb_spellings(verb))
        if "_" not in verb:
            inflections.update(_archaic_spellings(verb))
    for adjective in lemmas["adj"]:
        inflections.add(_adverb_spelling(adjective))
    inflections = {w for w in inflections if _WORD_RE.fullmatch(w)} - words
    return words, inflections, frequency


def _context_pairs(symbols, lexicon, pairs, contexts, readings):
    """{"word word|context": espeak-ng's two forms} where the graph reads the pair otherwise.

    Args:
        symbols: the phoneme symbol set.
        lexicon: the `PhonemeLexicon` built so far.
        pairs: "word word" strings.
        contexts: (key, before, after) carriers, as for the joined pairs.
        readings: phrases -> each phrase's words as espeak-ng reads them.
    """
    import tensorflow as tf

    from mmae.text.graph_frontend import GraphFrontend

    graph = GraphFrontend(symbols, "phonemes", False, lexicon)
    phonemes = tf.function(graph._phonemes, autograph=False)
    found = {}
    for key, before, after in contexts:
        if not pairs:
            break
        phrases = [f"{before}{pair}{after}" for pair in pairs]
        theirs = readings(phrases)
        ours = []
        for start in range(0, len(phrases), 4096):
            batch = tf.constant(phrases[start : start + 4096])
            ours += [text.decode().split() for text in phonemes(batch).numpy()]
        head, tail = len(before.split()), len(after.split())
        for pair, want, got in zip(pairs, theirs, ours, strict=True):
            key_of = f"{pair}|{key}"
            if key_of in lexicon.entries or len(want) != head + 2 + tail or len(got) != len(want):
                continue  # joined (an entry already), or read otherwise
            if not key.startswith("m") and f"{pair.split()[0]}|pause" in lexicon.entries:
                # The graph also reads a pair after a pause ("... and one") in
                # these contexts, where espeak-ng's phrase goes on.
                continue
            if want[:head] == got[:head] and want[head + 2 :] == got[head + 2 :]:
                if want[head : head + 2] != got[head : head + 2]:
                    found[key_of] = " ".join(want[head : head + 2])
    return found


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


def _archaic_spellings(verb):
    """The old second and third persons: "make" -> "makest", "maketh"; "cry" -> "criest"."""
    if verb.endswith("e") and not verb.endswith(("ee", "ye", "oe")):
        stem = verb[:-1]
    elif re.search(r"[^aeiou]y$", verb):
        stem = verb[:-1] + "i"
    else:
        stem = verb
    return [stem + "est", stem + "eth"]


def _roman_numerals(low, high):
    """The Roman numerals from `low` to `high` - 1, in lowercase ("ii", "iii", "iv", ...)."""
    values = ((100, "c"), (90, "xc"), (50, "l"), (40, "xl"), (10, "x"), (9, "ix"), (5, "v"))
    values += ((4, "iv"), (1, "i"))
    numerals = []
    for number in range(low, high):
        letters = ""
        for value, spelling in values:
            count, number = divmod(number, value)
            letters += spelling * count
        numerals.append(letters)
    return numerals


def _adverb_spelling(adjective):
    if re.search(r"[^aeiou]y$", adjective):
        return adjective[:-1] + "ily"
    if re.search(r"[^aeiou]le$", adjective):
        return adjective[:-1] + "y"
    if adjective.endswith("ic"):
        return adjective + "ally"
    return adjective + "ly"
