"""English text normalization for speech synthesis.

A TTS model can only learn to read what it sees often, so everything that is
written one way but said another is spelled out before tokenization: numbers,
currency, ordinals, years, abbreviations and symbols. The result is lowercase
ASCII letters plus the punctuation of the `chars-v1` symbol set
(`!'(),-.:;?` and space), which both tokenizers read.

This module is pure Python (no TensorFlow), so it can run in light worker
processes.

Example:

>>> normalize_text("Dr. Smith paid $3.50 on May 1st, 1999.")
'doctor smith paid three dollars and fifty cents on may first, nineteen ninety-nine.'
"""

import re
import unicodedata

from num2words import num2words

from mmae.text.symbols import EOS, PAD, get_symbols

__all__ = ["normalize_text"]

# Typographic characters that NFKD leaves alone, mapped to what a plain
# ASCII writer would have typed. Dashes are handled separately because
# their meaning depends on what surrounds them.
_TYPOGRAPHY = str.maketrans(
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

# En dash (U+2013), em dash (U+2014), horizontal bar (U+2015), figure dash.
_DASHES = "\u2012\u2013\u2014\u2015"
# A dash between two numbers is a range: "1990\u20131995" (en dash) is read
# "1990 to 1995". The ASCII hyphen is not: it also joins codes and numbers
# that are not ranges ("COVID-19", "555-0100"), so "5-10" stays "five-ten".
_NUMBER_RANGE_RE = re.compile(rf"(?<=\d)\s*[{_DASHES}]\s*(?=\d)")
# Anywhere else a dash (or the typewriter's "--") is a pause; " - " keeps it
# apart from the hyphen of compound words.
_DASH_RE = re.compile(rf"\s*(?:[{_DASHES}]+|--+)\s*")

# Vulgar fractions (U+00BC..U+00BE, U+2150..U+215E), with an optional whole
# part: "2¾" is "two and three quarters".
_VULGAR_FRACTION_RE = re.compile(r"(\d+)?\s?([\u00bc-\u00be\u2150-\u215e])")

# Titles are always followed by a name, so their period never ends a sentence.
_TITLES = {
    "mr": "mister",
    "mrs": "missus",
    "dr": "doctor",
    "capt": "captain",
    "lt": "lieutenant",
    "vs": "versus",
}
# Titles that are also ordinary words ("gen z", "col" of a mountain pass), so
# they are only expanded with their period.
_TITLES_WITH_PERIOD = {
    "gen": "general",
    "col": "colonel",
}
# Abbreviations that can end a sentence: their period is kept when nothing
# follows or the next word starts with a capital letter (and is not another
# of these abbreviations, as in "Co. Ltd.").
_ENDINGS = {
    "etc": "et cetera",
    "jr": "junior",
    "sr": "senior",
    "ltd": "limited",
    "inc": "incorporated",
}
# "co" is also a prefix ("co-op"), so it needs its period.
_ENDINGS_WITH_PERIOD = {
    "co": "company",
}


def _alternatives(words):
    # Longest first, so "mrs" is not read as "mr" + "s".
    return "|".join(sorted(words, key=len, reverse=True))


_TITLE_RE = re.compile(
    rf"\b(?:({_alternatives(_TITLES)})\b\.?|({_alternatives(_TITLES_WITH_PERIOD)})\.)",
    re.IGNORECASE,
)
_ENDING_WORDS = _alternatives({**_ENDINGS, **_ENDINGS_WITH_PERIOD})
_ENDING_RE = re.compile(
    rf"\b(?:({_alternatives(_ENDINGS)})\b(\.?)|({_alternatives(_ENDINGS_WITH_PERIOD)})(\.))"
    rf"(?=(\s+(?!(?:{_ENDING_WORDS})\b)(?-i:[A-Z])|\s*$)?)",
    re.IGNORECASE,
)
# "Baker St." is a street: "St" after a capitalized word or a number, and not
# followed by a capitalized word. Every other "St" is a saint ("St. Paul").
_STREET_RE = re.compile(r"\b([A-Z0-9][\w']*\s+)St\b(\.?)(?!\s+[A-Z])")
_SAINT_RE = re.compile(r"(?<!')\bst\b\.?", re.IGNORECASE)
# "No. 5" and "#5" are "number five"; a bare "no." is the word "no".
_NUMBER_SIGN_RE = re.compile(r"\bno\.\s*(?=\d)|#\s?(?=\d)", re.IGNORECASE)

# An integer, optionally with thousands separators: "7", "1999", "1,000,000".
_INTEGER = r"\d{1,3}(?:,\d{3})+(?!\d)|\d+"
_CURRENCY_SYMBOLS = "$\u00a3\u20ac\u00a5"
# A minus sign: a hyphen directly before a number that does not follow a word
# or another number ("-5", "(-3.5)", "-$2"), so "5-10" stays a range.
_NEGATIVE_RE = re.compile(rf"(?<![\w.,)-])-(?=[{re.escape(_CURRENCY_SYMBOLS)}]?\.?\d)")
_SCALES = "thousand|million|billion|trillion"
_CURRENCY_RE = re.compile(
    rf"([{re.escape(_CURRENCY_SYMBOLS)}])\s?({_INTEGER})(?:\.(\d+))?(?:\s?({_SCALES})\b)?"
)
# Singular major unit, plural major unit, singular minor unit, plural minor
# unit (None: the currency has no minor unit in everyday speech).
_CURRENCY_UNITS = {
    "$": ("dollar", "dollars", "cent", "cents"),
    "\u00a3": ("pound", "pounds", "penny", "pence"),
    "\u20ac": ("euro", "euros", "cent", "cents"),
    "\u00a5": ("yen", "yen", None, None),
}
_NUMBER = rf"(?:{_INTEGER})(?:\.\d+)?|\.\d+"
_PERCENT_RE = re.compile(rf"({_NUMBER})\s?%")
_ORDINAL_RE = re.compile(rf"\b({_INTEGER})(st|nd|rd|th)\b")
# Decades and plural numbers: "1990s", "the '80s", "in 2s and 3s"; also
# "1990's", but "1999's" is a possessive.
_PLURAL_RE = re.compile(rf"'?\b({_INTEGER})('?)s\b")
_LETTER_DIGIT_RE = re.compile(r"(?<=[^\W\d_])(?=\d)|(?<=\d)(?=[^\W\d_])")
_TIME_RE = re.compile(r"\b([01]?\d|2[0-3]):([0-5]\d)\b")
_DECIMAL_RE = re.compile(rf"(?:\b({_INTEGER})|(?<![\w.]))\.(\d+)\b")
# A bare four-digit number from 1100 to 2099 is almost always a year.
_YEAR_RE = re.compile(r"(?<![\w.])(?<!\d,)(?<!minus )(1[1-9]\d\d|20\d\d)(?!\w|[.,]\d)")
_INTEGER_RE = re.compile(_INTEGER)
# Beyond this many digits a number is an identifier, read digit by digit.
_MAX_CARDINAL_DIGITS = 15
_DIGIT_NAMES = "zero one two three four five six seven eight nine".split()

# Symbols that have a spoken form.
_SPOKEN_SYMBOLS = {
    "&": " and ",
    "%": " percent ",
    "@": " at ",
    "+": " plus ",
    "=": " equals ",
    "\u00b0": " degrees ",
}
# Bracket shapes the symbol set has no room for are read like parentheses.
_BRACKETS = {"[": "(", "{": "(", "]": ")", "}": ")"}
# Everything chars-v1 spells with, except the padding and end markers.
_KEPT = set(get_symbols("chars-v1")) - {PAD, EOS}

_SPACE_BEFORE_PUNCTUATION_RE = re.compile(r"\s+([!),.:;?])")
_SPACE_AFTER_PAREN_RE = re.compile(r"\(\s+")
_WHITESPACE_RE = re.compile(r"\s+")


def normalize_text(text):
    """Spells out English text the way it is read aloud.

    Steps, in order: Unicode to ASCII (typographic quotes and dashes to plain
    ones, accents stripped through NFKD), abbreviations ("Dr." -> "doctor"),
    lowercase, numbers (cardinals, decimals, ordinals, years, currency,
    percentages, times, negative numbers) with `num2words`, symbols ("&" ->
    "and"), then only the punctuation of the `chars-v1` symbol set is kept
    (other brackets become parentheses, double quotes are dropped) and
    whitespace is collapsed.

    Letters of other scripts (Cyrillic, CJK, ...) have no ASCII spelling; they
    are left in place, so that the tokenizer drops, counts and reports them
    instead of the data problem passing silently.

    Args:
        text: a transcript, any Unicode.

    Returns:
        The normalized text (possibly empty, or only punctuation).

    Example:

    >>> normalize_text("“Hello”—it’s 50% off at Smith & Co.!")
    "hello - it's fifty percent off at smith and company!"
    >>> normalize_text("In the 1990s, -3.5 was No. 1.")
    'in the nineteen nineties, minus three point five was number one.'
    """
    text = _to_ascii(text)
    text = _expand_abbreviations(text)
    text = text.lower()
    text = _expand_numbers(text)
    text = _replace_symbols(text)
    text = _SPACE_BEFORE_PUNCTUATION_RE.sub(r"\1", text)
    text = _SPACE_AFTER_PAREN_RE.sub("(", text)
    return _WHITESPACE_RE.sub(" ", text).strip()


def _to_ascii(text):
    text = _VULGAR_FRACTION_RE.sub(_expand_vulgar_fraction, text)
    text = text.translate(_TYPOGRAPHY)
    text = _NUMBER_RANGE_RE.sub(" to ", text)
    text = _DASH_RE.sub(" - ", text)
    # NFKD splits "é" into "e" + a combining accent, and folds compatibility
    # forms ("…" -> "...", "ﬁ" -> "fi", full-width digits, no-break spaces).
    text = unicodedata.normalize("NFKD", text)
    return "".join(char for char in text if not unicodedata.combining(char))


def _expand_vulgar_fraction(match):
    whole, fraction = match.groups()
    numerator, _, denominator = unicodedata.normalize("NFKD", fraction).partition("\u2044")
    # "one and a half" but "one half" on its own.
    words = _fraction(int(numerator), int(denominator), article="a" if whole else "one")
    return f" {_cardinal(whole)} and {words} " if whole else f" {words} "


def _fraction(numerator, denominator, article):
    if denominator == 2:
        singular, plural = "half", "halves"
    elif denominator == 4:
        singular, plural = "quarter", "quarters"
    else:
        singular = num2words(denominator, lang="en", to="ordinal")
        plural = singular + "s"
    if numerator == 1:
        return f"{article} {singular}"
    return f"{_cardinal(str(numerator))} {plural}"


def _expand_abbreviations(text):
    text = _NUMBER_SIGN_RE.sub("number ", text)
    text = _TITLE_RE.sub(lambda m: " " + _lookup(m, _TITLES, _TITLES_WITH_PERIOD) + " ", text)
    text = _ENDING_RE.sub(_expand_ending, text)
    text = _STREET_RE.sub(lambda m: m.group(1) + "street" + m.group(2), text)
    return _SAINT_RE.sub("saint", text)


def _lookup(match, *tables):
    word = next(group for group in match.groups() if group).lower()
    for table in tables:
        if word in table:
            return table[word]
    raise KeyError(word)


def _expand_ending(match):
    word = _lookup(match, _ENDINGS, _ENDINGS_WITH_PERIOD)
    period = match.group(2) or match.group(4)
    ends_sentence = match.group(5) is not None
    return word + "." if period and ends_sentence else word


def _expand_numbers(text):
    text = _NEGATIVE_RE.sub("minus ", text)
    text = _CURRENCY_RE.sub(lambda m: f" {_expand_currency(m)} ", text)
    text = _PERCENT_RE.sub(lambda m: f" {_number(m.group(1))} percent", text)
    text = _ORDINAL_RE.sub(lambda m: _ordinal(m.group(1)), text)
    text = _PLURAL_RE.sub(_expand_plural, text)
    # "mp3", "3d": a number glued to a word is read as a word of its own.
    text = _LETTER_DIGIT_RE.sub(" ", text)
    text = _TIME_RE.sub(_expand_time, text)
    text = _DECIMAL_RE.sub(lambda m: _decimal(m.group(1), m.group(2)), text)
    text = _YEAR_RE.sub(lambda m: _year(m.group(1)), text)
    return _INTEGER_RE.sub(lambda m: _cardinal(m.group(0)), text)


def _expand_currency(match):
    symbol, integer, fraction, scale = match.groups()
    major, majors, minor, minors = _CURRENCY_UNITS[symbol]
    if scale:
        return f"{_number(integer, fraction)} {scale} {majors}"
    whole = int(integer.replace(",", ""))
    if fraction is None or fraction.strip("0") == "":
        return f"{_cardinal(integer)} {major if whole == 1 else majors}"
    if minor is None or len(fraction) > 2:
        return f"{_decimal(integer, fraction)} {majors}"
    # "$3.5" is three dollars fifty cents, not five cents.
    cents = int(fraction.ljust(2, "0"))
    minor_words = f"{_cardinal(str(cents))} {minor if cents == 1 else minors}"
    if whole == 0:
        return minor_words
    return f"{_cardinal(integer)} {major if whole == 1 else majors} and {minor_words}"


def _expand_plural(match):
    integer, apostrophe = match.groups()
    digits = integer.replace(",", "")
    words = _year(digits) if _YEAR_RE.fullmatch(digits) else _cardinal(integer)
    if apostrophe and not digits.endswith("0"):
        return words + "'s"
    if words.endswith("y"):
        return words[:-1] + "ies"
    if words.endswith("x"):
        return words + "es"
    return words + "s"


def _expand_time(match):
    hours, minutes = match.groups()
    hours = str(int(hours))  # "09:30" is "nine thirty"
    if minutes == "00":
        return f"{_cardinal(hours)} o'clock" if int(hours) <= 12 else f"{_cardinal(hours)} hundred"
    if minutes.startswith("0"):
        return f"{_cardinal(hours)} oh {_cardinal(minutes[1])}"
    return f"{_cardinal(hours)} {_cardinal(minutes)}"


def _number(text, fraction=None):
    # A number written as "12", "1,200", "3.5" or ".5".
    if fraction is None and "." in text:
        text, _, fraction = text.partition(".")
    return _decimal(text, fraction) if fraction else _cardinal(text)


def _decimal(integer, fraction):
    # Digits after the point are read one by one: "3.14" is "three point one
    # four" and "3.50" keeps its zero.
    fraction_words = " ".join(_DIGIT_NAMES[int(digit)] for digit in fraction)
    if not integer:
        return f"point {fraction_words}"
    return f"{_cardinal(integer)} point {fraction_words}"


def _cardinal(integer):
    digits = integer.replace(",", "")
    # "007" and long identifiers are read digit by digit.
    if (len(digits) > 1 and digits.startswith("0")) or len(digits) > _MAX_CARDINAL_DIGITS:
        return " ".join(_DIGIT_NAMES[int(digit)] for digit in digits)
    return _spoken(num2words(int(digits), lang="en"))


def _ordinal(integer):
    return _spoken(num2words(int(integer.replace(",", "")), lang="en", to="ordinal"))


def _year(digits):
    return _spoken(num2words(int(digits), lang="en", to="year"))


def _spoken(words):
    # num2words writes "one thousand, two hundred"; that comma is not a pause.
    return words.replace(",", "")


def _replace_symbols(text):
    pieces = []
    for char in text:
        if char in _KEPT:
            pieces.append(char)
        elif char in _SPOKEN_SYMBOLS:
            pieces.append(_SPOKEN_SYMBOLS[char])
        elif char in _BRACKETS:
            pieces.append(_BRACKETS[char])
        elif char.isalpha() and not char.isascii():
            # No ASCII spelling: left for the tokenizer to count and report.
            pieces.append(char)
        else:
            # Not read aloud ('"', "*", "^", "$" without an amount, emoji);
            # a space rather than nothing, so it cannot join two words.
            pieces.append(" ")
    return "".join(pieces)
