"""Training: the stage loop, its regimes and policies, checkpoints, and the distribution strategy.

Loading a trained run for inference is `mmae.runs`, which never imports this package.
"""

from mmae.runs import read_metrics, restore_weights
from mmae.training.checkpoints import NonFiniteLossError
from mmae.training.distribute import precision_policy, select_strategy
from mmae.training.lock import RunLock, RunLockedError
from mmae.training.optimizers import WarmupCosineDecay
from mmae.training.regimes import Stage, Update, stages_for
from mmae.training.trainer import train

__all__ = [
    "NonFiniteLossError",
    "RunLock",
    "RunLockedError",
    "Stage",
    "Update",
    "WarmupCosineDecay",
    "precision_policy",
    "read_metrics",
    "restore_weights",
    "select_strategy",
    "stages_for",
    "train",
]
