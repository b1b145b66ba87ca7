"""Training: the custom loop, its stages and schedule, and the distribution strategy."""

from mmae.training.distribute import precision_policy, select_strategy
from mmae.training.trainer import (
    NonFiniteLossError,
    Stage,
    WarmupCosineDecay,
    read_metrics,
    stages_for,
    train,
)

__all__ = [
    "NonFiniteLossError",
    "Stage",
    "WarmupCosineDecay",
    "precision_policy",
    "read_metrics",
    "select_strategy",
    "stages_for",
    "train",
]
