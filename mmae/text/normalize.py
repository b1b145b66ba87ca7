"""English text normalization for speech synthesis.

A TTS model can only learn to read what it sees often, so everything that is
written one way but said another is spelled out before tokenization: numbers,
currency, ordinals, years, abbreviations and symbols. The result is lowercase
ASCII letters plus the punctuation of the `chars-v1` symbol set
(`!'(),-.:;?` and space), which both tokenizers read.

The rules are tables in `mmae.text.rules`, run by the text frontend's
TensorFlow ops (`mmae.text.graph_frontend.GraphFrontend.normalize`): this
module is their Python face, so text is normalized the same way in training
data, in the `Synthesizer` and in an exported SavedModel. TensorFlow is
imported on the first call, not with the module.

Example:

>>> normalize_text("Dr. Smith paid $3.50 on May 1st, 1999.")
'doctor smith paid three dollars and fifty cents on may first, nineteen ninety-nine.'
"""

__all__ = ["normalize_text", "normalize_texts"]


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
    return normalize_texts([text])[0]


def normalize_texts(texts):
    """`normalize_text` of every text of a sequence, in one call of the frontend's ops.

    Returns:
        A list of normalized texts (Python `str`), one per text.
    """
    from mmae.text import graph_frontend

    return graph_frontend.normalize_batch(texts)
