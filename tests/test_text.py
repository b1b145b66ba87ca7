"""Tests for the English text frontend: normalization and tokenizers."""

import dataclasses
import doctest
import pickle
import subprocess
import sys
import warnings

import pytest

from conftest import golden_cases
from mmae.config import TextConfig
from mmae.text import (
    CharacterTokenizer,
    EmptyTextError,
    FrontendTokenizer,
    PhonemeTokenizer,
    UnknownCharacterWarning,
    normalize_text,
    normalize_texts,
    tokenizer_from_config,
)
from mmae.text import normalize as normalize_module
from mmae.text import tokenizer as tokenizer_module
from mmae.text.symbols import EOS, PAD, SYMBOL_SETS


def test_normalized_text_uses_only_chars_v1():
    allowed = set(SYMBOL_SETS["chars-v1"]) - {PAD, EOS}
    for case in golden_cases():
        if case["normalized"].isascii():
            assert set(case["normalized"]) <= allowed, case["text"]


def test_normalize_is_idempotent():
    cases = golden_cases("normalizer")
    normalized = [case["normalized"] for case in cases]
    assert normalize_texts(normalized) == normalized


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


def test_the_phoneme_frontend_reports_letters_of_other_scripts():
    tokenizer = FrontendTokenizer("phonemes-v1", tokenizer="phonemes")
    with pytest.warns(UnknownCharacterWarning, match="clip-3.*'м'"):
        ids = tokenizer.encode("Hello мир world.", clip_id="clip-3")
    assert tokenizer.decode(ids) == "həlˈoʊ wˈɜːld."
    assert tokenizer.unknown_counts == {"м": 1, "и": 1, "р": 1}
    with pytest.raises(EmptyTextError, match="dropped unknown characters: 'ж'"):
        tokenizer.encode("жж", clip_id="clip-4")


def test_what_is_not_text_is_named_and_broken_unicode_is_read():
    tokenizer = CharacterTokenizer("chars-v1")
    for bad in (None, b"bytes", 3.5):
        with pytest.raises(TypeError, match="Clip 'c1' is a"):
            tokenizer.encode_batch(["fine", bad], clip_ids=["c0", "c1"])
    with pytest.raises(TypeError, match="Text 1 is a NoneType"):
        normalize_texts(["fine", None])
    # A lone surrogate (an undecodable byte of a command line) is a space.
    assert tokenizer.decode(tokenizer.encode("bad\udc80byte")) == "bad byte"


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


def test_tokenizer_from_config_phonemes_reads_the_bundled_frontend():
    config = TextConfig(tokenizer="phonemes", symbol_set="phonemes-v1")
    tokenizer = tokenizer_from_config(config)
    assert isinstance(tokenizer, FrontendTokenizer) and tokenizer.tokenizer == "phonemes"
    assert (tokenizer.language, tokenizer.vocab_size) == ("en-us", config.vocab_size)
    assert tokenizer.decode(tokenizer.encode("Hello, world!")) == "həlˈoʊ, wˈɜːld!"
    # Only en-us is bundled; another voice says how to make its pack.
    with pytest.raises(FileNotFoundError, match="mmae prepare-lexicon"):
        tokenizer_from_config(dataclasses.replace(config, language="en-gb"))


def test_phoneme_tokenizer_reference_reads_other_espeak_voices():
    pytest.importorskip("phonemizer")
    tokenizer = PhonemeTokenizer("phonemes-v1", language="en-gb")
    # Northern English "bath" as espeak-ng's en-gb voice reads it (en-us: "bˈæθ").
    assert tokenizer.decode(tokenizer.encode("Bath.")) == "bˈaθ."
