"""Tests for the English text frontend: normalization and tokenizers."""

import doctest
import pickle
import subprocess
import sys
import warnings

import pytest

from mmae.config import TextConfig
from mmae.text import (
    CharacterTokenizer,
    EmptyTextError,
    PhonemeTokenizer,
    normalize_text,
    tokenizer_from_config,
)
from mmae.text import normalize as normalize_module
from mmae.text import tokenizer as tokenizer_module
from mmae.text.symbols import EOS, PAD, SYMBOL_SETS

NORMALIZATION_CASES = [
    # Case and whitespace.
    ("Hello   World\n\tagain ", "hello world again"),
    ("wait , what ?", "wait, what?"),
    # Unicode to ASCII.
    ("Café naïve Ærø straße", "cafe naive aero strasse"),
    ("\u201cQuoted\u201d and \u2018single\u2019 it\u2019s", "quoted and 'single' it's"),
    ("ﬁne\u00a0\u2026 done", "fine... done"),
    ("yes\u2014no \u2013 maybe", "yes - no - maybe"),
    ("secrets--he said", "secrets - he said"),
    ("pages 10\u201320", "pages ten to twenty"),
    ("2\u00bd cups, \u00be of it, \u00bd", "two and a half cups, three quarters of it, one half"),
    # Cardinals, grouped numbers, decimals, negative numbers.
    ("I have 2 cats and 13 dogs", "i have two cats and thirteen dogs"),
    ("1,000,000 people", "one million people"),
    ("pi is 3.14, not 3.50", "pi is three point one four, not three point five zero"),
    ("only .5 left", "only point five left"),
    ("-5 and (-3.5)", "minus five and (minus three point five)"),
    ("5-10", "five-ten"),
    ("007", "zero zero seven"),
    ("mp3 and 3d", "mp three and three d"),
    # Ordinals.
    ("1st 2nd 3rd 22nd 101st", "first second third twenty-second one hundred and first"),
    # Years, decades.
    ("In 1999, and in 2005.", "in nineteen ninety-nine, and in two thousand and five."),
    (
        "1100 2099 2100 1099",
        "eleven hundred twenty ninety-nine two thousand one hundred one thousand and ninety-nine",
    ),
    ("the 1990s and '80s", "the nineteen nineties and eighties"),
    ("the 1990's and 1999's end", "the nineteen nineties and nineteen ninety-nine's end"),
    # Currency and percentages.
    ("$5", "five dollars"),
    ("$1", "one dollar"),
    ("$3.50", "three dollars and fifty cents"),
    ("$0.01", "one cent"),
    ("$2.5 million", "two point five million dollars"),
    ("\u00a32", "two pounds"),
    ("\u00a31.01", "one pound and one penny"),
    ("\u20ac10", "ten euros"),
    ("\u00a5100", "one hundred yen"),
    ("-$5", "minus five dollars"),
    ("50% and 3.5 %", "fifty percent and three point five percent"),
    # Times.
    ("at 3:30, 12:00 or 9:05", "at three thirty, twelve o'clock or nine oh five"),
    ("09:30 and 18:00", "nine thirty and eighteen hundred"),
    # Abbreviations.
    ("Mr. and Mrs. Smith met Dr Jones", "mister and missus smith met doctor jones"),
    (
        "Gen. Lee, Col. Sanders, Capt. Hook, Lt. Dan",
        "general lee, colonel sanders, captain hook, lieutenant dan",
    ),
    ("Smith vs. Jones", "smith versus jones"),
    ("Martin Luther King Jr. spoke", "martin luther king junior spoke"),
    ("apples, pears, etc. and more", "apples, pears, et cetera and more"),
    ("apples, pears, etc.", "apples, pears, et cetera."),
    ("Acme Co. Ltd. sold it", "acme company limited sold it"),
    ("It was Acme Inc. Then it sold.", "it was acme incorporated. then it sold."),
    ("St. Paul lives on Baker St.", "saint paul lives on baker street."),
    ("No. 5 and #7", "number five and number seven"),
    ("I said no.", "i said no."),
    ("next gen co-op", "next gen co-op"),
    # Symbols and punctuation.
    ("Tom & Jerry", "tom and jerry"),
    ("x = 1 + 2", "x equals one plus two"),
    ('He said "hi".', "he said hi."),
    ("[aside] {note} <b>bold</b>", "(aside) (note) b bold b"),
    ("Wow! Really? Yes: no; (maybe).", "wow! really? yes: no; (maybe)."),
    ("under_score and ~tilde*", "under score and tilde"),
    # Letters with no ASCII spelling are left for the tokenizer to report.
    ("Привет", "привет"),
    ("", ""),
    ("?!\U0001f600", "?!"),
]


@pytest.mark.parametrize("text, expected", NORMALIZATION_CASES)
def test_normalize_text(text, expected):
    assert normalize_text(text) == expected


def test_normalized_text_uses_only_chars_v1():
    allowed = set(SYMBOL_SETS["chars-v1"]) - {PAD, EOS}
    for text, _ in NORMALIZATION_CASES:
        normalized = normalize_text(text)
        if normalized.isascii():
            assert set(normalized) <= allowed, text


def test_normalize_is_idempotent():
    for text, expected in NORMALIZATION_CASES:
        assert normalize_text(expected) == expected, text


@pytest.mark.parametrize("module", [normalize_module, tokenizer_module])
def test_docstring_examples(module):
    if module is tokenizer_module:
        pytest.importorskip("phonemizer")
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


def test_text_frontend_does_not_import_tensorflow():
    code = "import sys, mmae.text; assert 'tensorflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(
    "text",
    ["Hello, World!", "Dr. Who paid $3.50 (cash) in 1999; why?", "it's   fine: 3rd try..."],
)
def test_character_round_trip(text):
    tokenizer = CharacterTokenizer("chars-v1")
    ids = tokenizer.encode(text)
    assert ids[-1] == tokenizer.eos_id
    assert tokenizer.eos_id not in ids[:-1] and tokenizer.pad_id not in ids
    assert tokenizer.decode(ids) == normalize_text(text)
    assert len(ids) == len(normalize_text(text)) + 1


def test_decode_skips_padding_and_stops_at_eos():
    tokenizer = CharacterTokenizer("chars-v1")
    ids = tokenizer.encode("abc")
    padded = ids + [tokenizer.pad_id] * 3
    assert tokenizer.decode(padded) == "abc"
    assert tokenizer.decode(ids[:-1]) == "abc"
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tokenizer.decode([tokenizer.vocab_size])


def test_character_tokenizer_ids_and_vocab():
    symbols = SYMBOL_SETS["chars-v1"]
    tokenizer = CharacterTokenizer(symbols)
    assert (tokenizer.pad_id, tokenizer.eos_id, tokenizer.vocab_size) == (0, 1, len(symbols))
    assert tokenizer.encode("Go!") == [
        symbols.index("g"),
        symbols.index("o"),
        symbols.index("!"),
        1,
    ]


def test_without_normalization_text_is_taken_as_is():
    tokenizer = CharacterTokenizer("chars-v1", normalize=False)
    assert tokenizer.decode(tokenizer.encode("abc")) == "abc"
    with pytest.warns(UserWarning, match="'A'"):
        assert tokenizer.decode(tokenizer.encode("Abc", clip_id="c1")) == "bc"


def test_unknown_characters_are_dropped_counted_and_reported():
    tokenizer = CharacterTokenizer("chars-v1")
    with pytest.warns(UserWarning) as record:
        ids = tokenizer.encode("Hello жmega жж!", clip_id="LJ001-0001")
    # One warning for the clip, not one per character.
    assert len(record) == 1
    message = str(record[0].message)
    assert "'ж'" in message and "LJ001-0001" in message
    # Every known character is kept, in order.
    assert tokenizer.decode(ids) == "hello mega !"
    assert tokenizer.unknown_counts == {"ж": 3}

    with pytest.warns(UserWarning, match="clip-2"):
        tokenizer.encode("ж again", clip_id="clip-2")
    assert tokenizer.unknown_counts == {"ж": 4}


def test_a_dropped_word_between_spaces_leaves_one_space():
    tokenizer = CharacterTokenizer("chars-v1")
    with pytest.warns(UserWarning):
        ids = tokenizer.encode("one жж two ж", clip_id="x")
    assert tokenizer.decode(ids) == "one two"
    with pytest.warns(UserWarning):
        assert tokenizer.encode("ж one", clip_id="y") == tokenizer.encode("one")


def test_padding_and_eos_symbols_in_text_are_unknown():
    tokenizer = CharacterTokenizer("chars-v1", normalize=False)
    with pytest.warns(UserWarning, match="'_'"):
        ids = tokenizer.encode("a_b~c", clip_id="x")
    assert ids == tokenizer.encode("abc")
    assert tokenizer.unknown_counts == {"_": 1, "~": 1}


def test_known_text_does_not_warn():
    tokenizer = CharacterTokenizer("chars-v1")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tokenizer.encode("Plain text, 42 times.", clip_id="ok")
    assert not tokenizer.unknown_counts


@pytest.mark.parametrize("text", ["", "   ", "?!...", "\U0001f600", "日本"])
def test_empty_text_names_the_clip(text):
    tokenizer = CharacterTokenizer("chars-v1")
    with pytest.raises(EmptyTextError) as error:
        tokenizer.encode(text, clip_id="clip-42")
    assert isinstance(error.value, ValueError)
    message = str(error.value)
    assert "clip-42" in message and "empty" in message
    assert repr(text) in message


def test_encode_batch_matches_encode():
    tokenizer = CharacterTokenizer("chars-v1")
    texts = ["One.", "Two 2!", "three"]
    assert tokenizer.encode_batch(texts) == [tokenizer.encode(text) for text in texts]
    with pytest.raises(ValueError, match="clip ids"):
        tokenizer.encode_batch(texts, clip_ids=["a"])


def test_invalid_symbol_sets_are_rejected():
    with pytest.raises(ValueError, match="padding"):
        CharacterTokenizer("abc")
    with pytest.raises(ValueError, match="more than once"):
        CharacterTokenizer(PAD + EOS + "abca")


@pytest.fixture(scope="module")
def phoneme_tokenizer():
    pytest.importorskip("phonemizer")
    return PhonemeTokenizer("phonemes-v1")


def test_phoneme_tokenizer_on_a_sentence(phoneme_tokenizer):
    ids = phoneme_tokenizer.encode("Hello, world! It's 5 o'clock.", clip_id="p1")
    assert ids[-1] == phoneme_tokenizer.eos_id
    phonemes = phoneme_tokenizer.decode(ids)
    assert phonemes == "həlˈoʊ, wˈɜːld! ɪts fˈaɪv əklˈɑːk."
    assert not phoneme_tokenizer.unknown_counts


def test_phoneme_batch_keeps_alignment_and_names_empty_clips(phoneme_tokenizer):
    texts = ["Good morning.", "Wasn't it?", "Llanfair"]
    batch = phoneme_tokenizer.encode_batch(texts, clip_ids=["a", "b", "c"])
    assert batch == [phoneme_tokenizer.encode(text) for text in texts]
    # Symbols added to phonemes-v1 after phonemizing English text at scale.
    decoded = [phoneme_tokenizer.decode(ids) for ids in batch]
    assert "\u0329" in decoded[1] and "ɬ" in decoded[2]
    with pytest.raises(EmptyTextError, match="'empty-clip'"):
        phoneme_tokenizer.encode_batch(["Fine.", "  "], clip_ids=["ok", "empty-clip"])


def test_phoneme_tokenizer_pickles(phoneme_tokenizer):
    expected = phoneme_tokenizer.encode("Pickled peppers.")
    restored = pickle.loads(pickle.dumps(phoneme_tokenizer))
    assert restored.encode("Pickled peppers.") == expected
    assert restored.get_config() == phoneme_tokenizer.get_config()


def test_missing_phonemizer_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "phonemizer", None)
    monkeypatch.setitem(sys.modules, "phonemizer.backend", None)
    with pytest.raises(ImportError, match=r"pip install mmae\[phonemes\]"):
        PhonemeTokenizer("phonemes-v1")


def test_missing_espeak_says_how_to_install(monkeypatch):
    backend = pytest.importorskip("phonemizer.backend")
    monkeypatch.setattr(backend.EspeakBackend, "is_available", classmethod(lambda cls: False))
    with pytest.raises(RuntimeError, match="sudo apt-get install espeak-ng"):
        PhonemeTokenizer("phonemes-v1")


def test_tokenizer_from_config():
    characters = tokenizer_from_config(TextConfig())
    assert isinstance(characters, CharacterTokenizer)
    assert characters.symbols == SYMBOL_SETS["chars-v1"] and characters.normalize

    raw = tokenizer_from_config(TextConfig(normalize=False))
    assert not raw.normalize

    # The symbols saved with a run win over the set's current definition.
    saved = PAD + EOS + " abc"
    assert tokenizer_from_config(TextConfig(symbols=saved)).symbols == saved
    assert CharacterTokenizer.from_config(characters.get_config()).symbols == characters.symbols

    with pytest.raises(ValueError, match="phonemes-v1"):
        tokenizer_from_config(TextConfig(symbol_set="phonemes-v1"))
    with pytest.raises(ValueError, match="chars-v1"):
        tokenizer_from_config(TextConfig(tokenizer="phonemes"))


def test_tokenizer_from_config_phonemes():
    pytest.importorskip("phonemizer")
    config = TextConfig(tokenizer="phonemes", symbol_set="phonemes-v1", language="en-gb")
    tokenizer = tokenizer_from_config(config)
    assert isinstance(tokenizer, PhonemeTokenizer)
    assert (tokenizer.language, tokenizer.vocab_size) == ("en-gb", config.vocab_size)
    # Northern English "bath" as espeak-ng's en-gb voice reads it (en-us: "bˈæθ").
    assert tokenizer.decode(tokenizer.encode("Bath.")) == "bˈaθ."
