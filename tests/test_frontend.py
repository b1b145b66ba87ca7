"""The text frontend's one case list, tests/data/frontend_golden.json, against every path.

The SavedModel's `tokenize` signature is checked against the same cases in
tests/test_export.py. Regenerate the fixture with
scripts/make_frontend_golden.py after a change meant to change tokens.
"""

import json
import os
import warnings

import pytest
import tensorflow as tf

from conftest import REPO, golden_cases, symbols_of_rows
from mmae.config import TextConfig
from mmae.text import EmptyTextError, normalize_text, normalize_texts, tokenizer_from_config
from mmae.text.graph_frontend import GraphFrontend
from mmae.text.rules import FRONTEND_VERSION

CONFIGS = {
    "characters": TextConfig(),
    "phonemes": TextConfig(tokenizer="phonemes", symbol_set="phonemes-v1"),
}


def test_the_fixture_is_of_this_frontend_version():
    with open(os.path.join(REPO, "tests", "data", "frontend_golden.json"), encoding="utf-8") as f:
        assert json.load(f)["frontend_version"] == FRONTEND_VERSION
    groups = {case["group"] for case in golden_cases()}
    assert groups == {"normalizer", "bad_input", "out_of_lexicon", "context", "sample_corpus"}


def test_normalize_text_gives_the_golden_texts():
    cases = golden_cases()
    assert normalize_texts([case["text"] for case in cases]) == [c["normalized"] for c in cases]
    for case in golden_cases("normalizer"):
        assert normalize_text(case["text"]) == case["normalized"], case["text"]


@pytest.mark.parametrize("kind", CONFIGS)
def test_the_python_tokenizers_give_the_golden_symbols(kind):
    """What `mmae prepare` and the `Synthesizer` tokenize with."""
    cases = golden_cases()
    tokenizer = tokenizer_from_config(CONFIGS[kind])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        encoded = tokenizer.encode_batch([case["text"] for case in cases], errors="return")
    got = [None if isinstance(ids, EmptyTextError) else tokenizer.decode(ids) for ids in encoded]
    for case, symbols in zip(cases, got, strict=True):
        assert symbols == case[kind], case["text"][:200]


@pytest.mark.parametrize("kind", CONFIGS)
def test_the_frontend_mapped_over_tf_data_gives_the_golden_symbols(kind):
    cases = golden_cases()
    frontend = GraphFrontend.from_config(CONFIGS[kind])
    texts = tf.data.Dataset.from_tensor_slices([case["text"] for case in cases])
    got = []
    for tokens, num_tokens in texts.batch(50).map(frontend.tokenize):
        got += symbols_of_rows(tokens.numpy(), num_tokens.numpy(), frontend.symbols)
    assert got == [case[kind] for case in cases]


def test_only_acronyms_are_spelled():
    (case,) = [c for c in golden_cases("out_of_lexicon") if c["text"].startswith("The GPL")]
    # "gpl", "fsf", "bbc" have no vowel letter: letter names, as espeak-ng.
    assert "dʒˌiːpˌiːˈɛl" in case["phonemes"] and "bˌiːbˌiːsˈiː" in case["phonemes"]
    frontend = GraphFrontend.from_config(CONFIGS["phonemes"])
    acronyms = {"gpl", "fsf", "bbc"}
    for case in golden_cases("out_of_lexicon"):
        # No other word of these sentences is read as its letter names.
        words = [w.strip(".,'") for w in case["normalized"].split()]
        spelled = frontend._spell(tf.constant(words)).numpy()
        phonemes = case["phonemes"].replace(",", " ").replace(".", " ").split()
        for word, letters in zip(words, spelled, strict=True):
            if word not in acronyms and len(word) > 1:
                assert letters.decode() not in phonemes, (word, case["text"])


def test_context_from_the_words_around_reads_as_espeak_ng():
    """The verb after "to", "we", "did not"; "had read"; no linking before a pause; Roman
    numerals; the stress of a phrase's last function word before unstressed ones; word
    pairs espeak-ng reads otherwise than each word ("such as"); hyphenated words outside
    the lexicon; words of older English."""
    pytest.importorskip("phonemizer")
    from mmae.text import PhonemeTokenizer

    cases = golden_cases("context")
    reference = PhonemeTokenizer("phonemes-v1")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        encoded = reference.encode_batch([case["text"] for case in cases])
    assert [case["phonemes"] for case in cases] == [reference.decode(ids) for ids in encoded]
    spoken = " ".join(case["phonemes"] for case in cases)
    forms = ("tə jˈuːz", "ðə jˈuːs", "ɪt jˈuːzᵻz", "hæv ɹˈɛd", "nˌɑːt jˈuːz", "ɹˌoʊmən sˈɪks")
    # Phrase stress: "before me" at a phrase's end, not before "the king".
    forms += ("bᵻfˈoːɹ mˌiː", "bᵻfˌoːɹ ðə", "bɪkˈʌm ʌv hˌɪm")
    # Pairs: "such as", "each of the", "too much", "do so" at a phrase's end.
    forms += ("sˈʌtʃ ɐz", "ˈiːtʃ əv ðɪ", "tˈuː mʌtʃ", "dˈuː soʊ")
    # Hyphenated words the lexicon lacks: one phrase said as one word.
    forms += ("pˈɪɹɾəpˈɪɹ", "nˈɑːŋkənsˈuːmɚ", "stˈeɪɾʌvðɪˈɑːɹt", "wɛɹwˈɪð", "ðaɪsˈɛlf")
    for form in forms:
        assert form in spoken
