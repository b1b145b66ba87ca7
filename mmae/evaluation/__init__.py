"""Evaluation of a trained run: intelligibility (ASR), naturalness (DNSMOS), distance to recordings.

`evaluate` is what `mmae evaluate` runs; the metric functions are pure and
usable on their own, `Recognizer` wraps PocketSphinx and `Naturalness` the
DNSMOS models.

Example:

>>> from mmae.evaluation import evaluate
>>> report = evaluate("runs/sample", "prepared/sample", "runs/sample/evaluation", limit=40)
"""

from mmae.evaluation.asr import Recognizer
from mmae.evaluation.evaluate import ROWS, evaluate
from mmae.evaluation.metrics import (
    WorldFeatures,
    character_error_rate,
    compare_features,
    dtw_path,
    f0_errors,
    frequency_warp,
    mel_cepstral_distortion,
    mel_cepstrum_settings,
    mel_l1,
    score_text,
    spectrum_to_mel_cepstrum,
    word_error_rate,
    world_features,
)
from mmae.evaluation.naturalness import Naturalness

__all__ = [
    "ROWS",
    "Naturalness",
    "Recognizer",
    "WorldFeatures",
    "character_error_rate",
    "compare_features",
    "dtw_path",
    "evaluate",
    "f0_errors",
    "frequency_warp",
    "mel_cepstral_distortion",
    "mel_cepstrum_settings",
    "mel_l1",
    "score_text",
    "spectrum_to_mel_cepstrum",
    "word_error_rate",
    "world_features",
]
