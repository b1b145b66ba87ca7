"""English text frontend: normalization and tokenizers (no TensorFlow)."""

from mmae.text.normalize import normalize_text
from mmae.text.tokenizer import (
    CharacterTokenizer,
    EmptyTextError,
    PhonemeTokenizer,
    TextTokenizer,
    UnknownCharacterWarning,
    tokenizer_from_config,
)

__all__ = [
    "CharacterTokenizer",
    "EmptyTextError",
    "PhonemeTokenizer",
    "TextTokenizer",
    "UnknownCharacterWarning",
    "normalize_text",
    "tokenizer_from_config",
]
