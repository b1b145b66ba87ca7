"""Training: the custom loop, its stages and schedule, and the distribution strategy."""

from mmae.training.distribute import precision_policy, select_strategy
from mmae.training.trainer import (
    NonFiniteLossError,
    Stage,
    WarmupCosineDecay,
    load_run,
    model_weights,
    read_metrics,
    restore_weights,
    stages_for,
    train,
)

__all__ = [
    "NonFiniteLossError",
    "Stage",
    "WarmupCosineDecay",
    "load_run",
    "precision_policy",
    "model_weights",
    "read_metrics",
    "restore_weights",
    "select_strategy",
    "stages_for",
    "train",
]
