"""The learning-rate schedule and the optimizer each update of a stage gets."""

import math

import keras

__all__ = ["WarmupCosineDecay", "make_optimizer"]


@keras.saving.register_keras_serializable(package="mmae")
class WarmupCosineDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to `learning_rate`, then cosine decay to `final_fraction` of it.

    Args:
        learning_rate: the peak rate, reached after `warmup_steps`.
        warmup_steps: steps of linear warm-up (step 0 already has a small rate).
        decay_steps: total steps; the rate is `final_fraction * learning_rate`
            from here on.
        final_fraction: the end of the cosine, as a fraction of the peak.

    Example:

    >>> schedule = WarmupCosineDecay(1e-3, warmup_steps=10, decay_steps=100)
    >>> round(float(schedule(9)), 7), round(float(schedule(99)), 7)
    (0.001, 0.0001)
    """

    def __init__(self, learning_rate, warmup_steps, decay_steps, final_fraction=0.1):
        self.learning_rate = learning_rate
        self.warmup_steps = warmup_steps
        self.decay_steps = decay_steps
        self.final_fraction = final_fraction

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        warmup = self.learning_rate * keras.ops.minimum(
            1.0, (step + 1.0) / max(1, self.warmup_steps)
        )
        progress = keras.ops.clip(
            (step + 1.0 - self.warmup_steps) / max(1, self.decay_steps - self.warmup_steps),
            0.0,
            1.0,
        )
        cosine = 0.5 * (1.0 + keras.ops.cos(math.pi * progress))
        decayed = self.learning_rate * (self.final_fraction + (1 - self.final_fraction) * cosine)
        return keras.ops.where(step + 1.0 < self.warmup_steps, warmup, decayed)

    def get_config(self):
        return {
            "learning_rate": self.learning_rate,
            "warmup_steps": self.warmup_steps,
            "decay_steps": self.decay_steps,
            "final_fraction": self.final_fraction,
        }


class SummedAdamW(keras.optimizers.AdamW):
    """AdamW for gradients that the train step has already summed over replicas.

    Keras' TensorFlow optimizer sums gradients over replicas inside `apply`;
    the step sums them first so that it can measure, check and clip the
    global gradient, and a second sum would double it.
    """

    def _all_reduce_sum_gradients(self, grads_and_vars):
        return list(grads_and_vars)


def make_optimizer(train_config, num_steps, replicas, loss_scaling):
    """AdamW with a warm-up and a cosine decay over `num_steps`; returns (optimizer, schedule).

    The peak learning rate is `learning_rate x replicas`: linear scaling with
    the global batch (Goyal et al. 2017), so a config tuned on one device
    keeps its per-clip step size on many. Create it in the strategy's scope.
    """
    schedule = WarmupCosineDecay(
        train_config.learning_rate * replicas, train_config.warmup_steps, num_steps
    )
    if "_all_reduce_sum_gradients" not in dir(keras.optimizers.AdamW):
        raise RuntimeError("This Keras version sums gradients differently; see SummedAdamW.")
    optimizer = SummedAdamW(
        learning_rate=schedule,
        weight_decay=train_config.weight_decay,
        beta_1=train_config.beta_1,
        beta_2=train_config.beta_2,
    )
    if loss_scaling:
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer, schedule
