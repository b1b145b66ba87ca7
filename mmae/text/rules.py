"""The English reading rules of the text frontend: tables, one definition.

Everything written one way and said another (abbreviations, currency,
symbols, number words, typography) is listed here once, as plain data.
`mmae.text.graph_frontend` compiles these tables into TensorFlow ops, which
are the only implementation of the rules: the SavedModel, `tf.data`, the
`Synthesizer`, `mmae prepare` and `normalize_text` all run them. The
pronunciation lexicon (`mmae.text.lexicon`) also reads them, so that every
word the normalizer can write has an entry.

`FRONTEND_VERSION` names the frontend's behaviour. It is saved in every
`TextConfig` (`text.frontend`); a dataset or run made with another version is
refused for training (`mmae.config.check_compatible`). Raise it whenever a
change here, in the graph frontend or in the bundled frontend pack changes the
tokens of some text.

Versions:
    1: the Python normalizer, espeak-ng phonemes through phonemizer (at
       prepare and Python synthesis), and an export-time lexicon that spelled
       every other word letter by letter (the SavedModel).
    2: one in-graph frontend everywhere; phonemes from the bundled lexicon
       and learned G2P (`mmae/assets/frontend_en-us`), no espeak-ng.
    3: espeak-ng's context from the word before (the verb after "to", "we",
       "it": "to use" is "juːz"; "had read" is "ɹˈɛd"), its pause before
       "and", "or", "which", ... inside a phrase (no linking "ɹ" or flap
       before it), Roman numerals ("vi": "Roman six") and the -est/-eth
       forms of older English in the lexicon.
    4: espeak-ng's phrase stress: a word such as "before", "among", "on",
       "shall" or "become" is stressed when only unstressed words follow it
       to the end of the phrase ("go before them": "bᵻfˈoːɹ ðˌɛm").
    5: espeak-ng's readings of word pairs that it reads apart but not as
       each word alone ("such as": "sˈʌtʃ ɐz", "each of the", "so much", "do
       so" at a phrase's end), hyphenated words outside the lexicon read as
       one phrase said as one word ("peer-to-peer": "pˈɪɹɾəpˈɪɹ"), and more
       words of older English ("wherewith", "thyself").
    6: the lexicon also holds the words of a spelling dictionary (Debian's
       wamerican-huge: 152k more words, with names, places and technical
       words such as "sublicense", "Absalom" or "Mizpah") as espeak-ng reads
       them, so the G2P reads fewer words.
    7: every word of the lexicon is read before another word, so the words
       espeak-ng stresses less inside a phrase and what it derives from them
       keep that ("goeth", "maketh", "throughly", "Sodom": "ɡˌoʊəθ ɪn"), and
       a joined pair stressed at the end of a phrase ("so it was": "ɪt
       wˈʌz") leaves the word before it unstressed ("sˌoʊ").
    8: the G2P is trained on the words of version 6's lexicon (WordNet's and
       the spelling dictionary's, names included), not WordNet's alone, so
       it reads names and rare words outside the lexicon closer to espeak-ng
       on the whole (phoneme error rate 2.3% against 3.2% on the
       dictionary's held-out words; "Meshullam" now as espeak-ng does,
       "Iddo" no longer).
    9: the lexicon also holds the words of Debian's larger spelling
       dictionary (wamerican-insane: 213k more words, most of them names and
       rare words, such as "Ahaz", "Iddo" or "Othniel"), and the G2P is
       version 8's fine-tuned on this lexicon's words (phoneme error rate
       2.2% against 3.1% on its held-out words).
"""

FRONTEND_VERSION = 9

# Typographic characters that NFKD leaves alone, mapped to what a plain
# ASCII writer would have typed. Dashes are handled separately because
# their meaning depends on what surrounds them.
TYPOGRAPHY = str.maketrans(
    {
        "\u2018": "'",  # left single quote
        "\u2019": "'",  # right single quote, also the typographic apostrophe
        "\u201a": "'",
        "\u201b": "'",
        "\u2032": "'",  # prime
        "\u02bc": "'",  # modifier letter apostrophe
        "\u00b4": "'",  # acute accent, often typed for an apostrophe
        "`": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u201f": '"',
        "\u2033": '"',
        "\u00ab": '"',
        "\u00bb": '"',
        "\u2039": '"',
        "\u203a": '"',
        "\u2212": "-",  # minus sign
        "\u2010": "-",  # hyphen
        "\u2011": "-",  # non-breaking hyphen
        "\u00ad": "",  # soft hyphen: invisible, not a word break
        "\u200b": "",  # zero-width space
        "\ufeff": "",  # byte order mark
        "\u2044": "/",  # fraction slash
        # Letters with no canonical decomposition, so NFKD cannot strip them.
        "\u00df": "ss",
        "\u00e6": "ae",
        "\u00c6": "AE",
        "\u0153": "oe",
        "\u0152": "OE",
        "\u00f8": "o",
        "\u00d8": "O",
        "\u0111": "d",
        "\u0110": "D",
        "\u0142": "l",
        "\u0141": "L",
        "\u00fe": "th",
        "\u00de": "Th",
        "\u00f0": "d",
        "\u00d0": "D",
        "\u0131": "i",
    }
)

# Figure dash, en dash (U+2013), em dash (U+2014), horizontal bar (U+2015).
# Between two numbers a dash is a range ("1990\u20131995" is "1990 to 1995");
# anywhere else it (or the typewriter's "--") is a pause, " - ". The ASCII
# hyphen is neither: it joins compounds and codes ("COVID-19", "5-10").
DASHES = "\u2012\u2013\u2014\u2015"

# Titles are always followed by a name, so their period never ends a sentence.
TITLES = {
    "mr": "mister",
    "mrs": "missus",
    "dr": "doctor",
    "capt": "captain",
    "lt": "lieutenant",
    "vs": "versus",
}
# Titles that are also ordinary words ("gen z", "col" of a mountain pass), so
# they are only expanded with their period.
TITLES_WITH_PERIOD = {
    "gen": "general",
    "col": "colonel",
}
# Abbreviations that can end a sentence: their period is kept when nothing
# follows or the next word starts with a capital letter (and is not another
# of these abbreviations, as in "Co. Ltd.").
ENDINGS = {
    "etc": "et cetera",
    "jr": "junior",
    "sr": "senior",
    "ltd": "limited",
    "inc": "incorporated",
}
# "co" is also a prefix ("co-op"), so it needs its period.
ENDINGS_WITH_PERIOD = {
    "co": "company",
}

CURRENCY_SYMBOLS = "$\u00a3\u20ac\u00a5"
# Singular major unit, plural major unit, singular minor unit, plural minor
# unit (None: the currency has no minor unit in everyday speech).
CURRENCY_UNITS = {
    "$": ("dollar", "dollars", "cent", "cents"),
    "\u00a3": ("pound", "pounds", "penny", "pence"),
    "\u20ac": ("euro", "euros", "cent", "cents"),
    "\u00a5": ("yen", "yen", None, None),
}
# Scale words that may follow an amount: "$3.5 million".
SCALES = ("thousand", "million", "billion", "trillion")

# Beyond this many digits a number is an identifier, read digit by digit.
MAX_CARDINAL_DIGITS = 15
DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
# Cardinal words to ordinal words, by their ending ("#" marks the end of the
# number): "twenty-one" -> "twenty-first", "forty" -> "fortieth".
ORDINAL_ENDINGS = (
    ("one#", "first"),
    ("two#", "second"),
    ("three#", "third"),
    ("five#", "fifth"),
    ("eight#", "eighth"),
    ("nine#", "ninth"),
    ("twelve#", "twelfth"),
    ("y#", "ieth"),
    ("#", "th"),
)

# Symbols that have a spoken form.
SPOKEN_SYMBOLS = {
    "&": " and ",
    "%": " percent ",
    "@": " at ",
    "+": " plus ",
    "=": " equals ",
    "\u00b0": " degrees ",
}
# Bracket shapes the symbol set has no room for are read like parentheses.
BRACKETS = {"[": "(", "{": "(", "]": ")", "}": ")"}

# Vulgar fractions (U+00BC..U+00BE, U+2150..U+215E).
VULGAR_FRACTIONS = "".join(chr(c) for c in [*range(0xBC, 0xBF), *range(0x2150, 0x215F)])

# Other words the normalizer writes, for the lexicon.
OTHER_WORDS = "number point minus percent o'clock hundred street saint half halves quarter quarters"


def fraction_words(numerator, denominator, article):
    """ "one half", "a quarter", "three eighths": `article` is "a" after a whole part, else "one"."""
    from num2words import num2words

    if denominator == 2:
        singular, plural = "half", "halves"
    elif denominator == 4:
        singular, plural = "quarter", "quarters"
    else:
        singular = num2words(denominator, lang="en", to="ordinal")
        plural = singular + "s"
    if numerator == 1:
        return f"{article} {singular}"
    return f"{num2words(numerator, lang='en')} {plural}"
