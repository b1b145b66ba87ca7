"""English text frontend: normalization and tokenizers (TensorFlow is imported on first use)."""

from mmae.text.normalize import normalize_text, normalize_texts
from mmae.text.tokenizer import (
    CharacterTokenizer,
    EmptyTextError,
    FrontendTokenizer,
    PhonemeTokenizer,
    TextTokenizer,
    UnknownCharacterWarning,
    tokenizer_from_config,
)

__all__ = [
    "CharacterTokenizer",
    "EmptyTextError",
    "FrontendTokenizer",
    "PhonemeTokenizer",
    "TextTokenizer",
    "UnknownCharacterWarning",
    "normalize_text",
    "normalize_texts",
    "tokenizer_from_config",
]
