"""Versioned symbol sets.

A symbol set is frozen once released: a model's embedding rows are indexed by
position in this string, so changing it silently would scramble every trained
model. Add a new version instead, and keep the old one.
"""

PAD = "_"  # id 0, also used for padding in batches
EOS = "~"  # appended to every utterance so the model sees where text ends

_PUNCTUATION = "!'(),-.:;? "
_LETTERS = "abcdefghijklmnopqrstuvwxyz"
# IPA characters espeak-ng produces for English (en-us and en-gb), plus
# stress and length marks; each is one token. The last two were found
# missing by phonemizing ~16k English sentences and ~100k distinct words:
# "ɬ" (Welsh "ll", as in "Llanfair") and U+0329, the combining mark of a
# syllabic consonant ("wasn't" -> "wˈʌzn̩t", about 1 sentence in 160).
_IPA = "aæɐɑɒbçdðeəɚɛɜɝfɡhiɪɨjklmnŋoɔpɹrɾsʃtθuʊʌvwxzʒʔˈˌːᵻ̃ʲ" + "ɬ\u0329"

SYMBOL_SETS = {
    "chars-v1": PAD + EOS + _PUNCTUATION + _LETTERS,
    "phonemes-v1": PAD + EOS + _PUNCTUATION + _IPA,
}


def get_symbols(symbol_set):
    """Returns the symbol string of a named, versioned symbol set."""
    try:
        return SYMBOL_SETS[symbol_set]
    except KeyError:
        raise ValueError(
            f"Unknown symbol set {symbol_set!r}; known: {sorted(SYMBOL_SETS)}."
        ) from None
