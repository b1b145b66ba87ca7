"""The distributed training and evaluation steps of one stage.

Each step takes one global batch of `batch_size x replicas` clips from one
bucket, split evenly over the replicas. For each of the stage's updates, in
order, each replica takes the gradient of its loss divided by the number of
replicas; the step sums those once over replicas (the gradient of the global
mean loss), measures the global norm, checks it and the loss for NaN/Inf,
clips it and applies the same update everywhere. An update whose loss or
gradient is not finite leaves its weights and optimizer state as they were.
"""

import logging

import keras
import tensorflow as tf

from mmae.training.regimes import trainable_variables

logger = logging.getLogger(__name__)

SUM = tf.distribute.ReduceOp.SUM
MEAN = tf.distribute.ReduceOp.MEAN


def update_losses(model, stage, update, batch, step, training):
    """The losses of one update's objective on `batch`, as float32.

    Steps count from the stage's start, so loss ramps (binarization) begin
    again when a text stage follows a pretraining stage.
    """
    losses = model.compute_losses(
        batch,
        objective=update.objective,
        step=step - stage.start_step,
        training=training,
        **dict(update.options),
    )
    return {name: tf.cast(value, tf.float32) for name, value in losses.items()}


def stage_losses(model, stage, batch, step, training):
    """Every update's losses on `batch`, as float32 (names prefixed when a stage has several)."""
    results = {}
    for update in stage.updates:
        losses = update_losses(model, stage, update, batch, step, training)
        prefix = f"{update.key}/" if len(stage.updates) > 1 else ""
        results.update({prefix + name: value for name, value in losses.items()})
    return results


def make_train_step(model, stage, optimizers, strategy, clip_norm, jit_compile, traces):
    """The `tf.function` training step of `stage`: `step_fn(batch, step) -> outputs`.

    Args:
        optimizers: one optimizer per update of the stage, in order.
        traces: a dict whose `traces[stage.name]` counts the traces.

    Returns:
        A function whose outputs are every update's losses and `grad_norm`,
        `finite` (every update was applied) and `frames` (in the global batch).
    """
    replicas = strategy.num_replicas_in_sync
    several = len(stage.updates) > 1
    updates = [
        _UpdateStep(model, stage, update, optimizer, replicas, clip_norm, jit_compile, traces)
        for update, optimizer in zip(stage.updates, optimizers, strict=True)
    ]

    def replica_step(batch, step):
        outputs, finite = {}, tf.constant(True)
        for update in updates:
            values = update(batch, step)
            finite = tf.logical_and(finite, values.pop("finite"))
            prefix = f"{update.update.key}/" if several else ""
            outputs.update({prefix + name: value for name, value in values.items()})
        # Throughput in mel frames; a batch without them (words) counts examples.
        if "num_frames" in batch:
            frames = tf.reduce_sum(tf.cast(batch["num_frames"], tf.float32))
        else:
            frames = tf.cast(_batch_size(batch), tf.float32)
        context = tf.distribute.get_replica_context()
        return {**outputs, "finite": finite, "frames": context.all_reduce(SUM, frames)}

    # XLA compiles one program per shape. Without it, a trace with unknown
    # batch and length (from the second shape on) serves every bucket.
    @tf.function(reduce_retracing=not jit_compile)
    def train_step(batch, step):
        outputs = strategy.run(replica_step, args=(batch, step))
        # Every value is already reduced over replicas: take the first copy.
        return {k: strategy.experimental_local_results(v)[0] for k, v in outputs.items()}

    return train_step


class _UpdateStep:
    """One update of a training step, in replica context."""

    def __init__(self, model, stage, update, optimizer, replicas, clip_norm, jit_compile, traces):
        self.update, self.optimizer, self.clip_norm = update, optimizer, clip_norm
        self.variables = trainable_variables(model, update)
        if not self.variables:
            raise ValueError(f"Stage {stage.name!r}, update {update.key!r}: nothing to train.")
        self.loss_scaled = isinstance(optimizer, keras.optimizers.LossScaleOptimizer)

        def gradients(batch, step):
            traces[stage.name] += 1  # Python: runs only when tracing.
            with tf.GradientTape() as tape:
                losses = update_losses(model, stage, update, batch, step, training=True)
                # Optimizers sum gradients over replicas: each replica gives its share.
                loss = losses["loss"] / replicas
                if self.loss_scaled:
                    loss = optimizer.scale_loss(loss)
            grads = tape.gradient(loss, self.variables)
            return losses, self._used(grads, stage)

        self.gradients = tf.function(
            gradients, jit_compile=jit_compile, reduce_retracing=not jit_compile
        )

    def _used(self, grads, stage):
        """{index: gradient} of the variables the loss depends on (warns about the others)."""
        trained = {i: g for i, g in enumerate(grads) if g is not None}
        if not trained:
            raise ValueError(f"Stage {stage.name!r}: no trainable variable affects the loss.")
        if len(trained) < len(self.variables):
            unused = [v.path for i, v in enumerate(self.variables) if i not in trained]
            logger.warning(
                "Stage %s: %d variables do not affect the loss and are not trained: %s",
                stage.name,
                len(unused),
                ", ".join(unused[:8]) + (" ..." if len(unused) > 8 else ""),
            )
        return trained

    def __call__(self, batch, step):
        losses, grads = self.gradients(batch, step)
        trained = [self.variables[i] for i in sorted(grads)]
        grads = [grads[i] for i in sorted(grads)]
        context = tf.distribute.get_replica_context()
        grads = context.all_reduce(SUM, grads)
        scale = self.optimizer.dynamic_scale if self.loss_scaled else 1.0
        grad_norm = tf.linalg.global_norm(grads) / scale
        losses = {name: context.all_reduce(MEAN, value) for name, value in losses.items()}
        loss_finite = tf.math.is_finite(losses["loss"])
        finite = tf.logical_and(loss_finite, tf.math.is_finite(grad_norm))
        if self.clip_norm > 0:
            grads, _ = tf.clip_by_global_norm(grads, self.clip_norm * scale, grad_norm * scale)
        # A loss-scaled optimizer skips overflowing steps itself (and lowers its scale).
        _apply_if(
            loss_finite if self.loss_scaled else finite,
            lambda: self.optimizer.apply(grads, trained),
        )
        return {**losses, "grad_norm": grad_norm, "finite": finite}


def make_eval_step(model, stage, strategy, names):
    """`eval_step(batch, step)`: the stage's losses summed over clips, and the clip count."""

    def replica_eval(batch, step):
        count = _batch_size(batch)
        weight = tf.cast(count, tf.float32)

        def weighted_losses():
            losses = stage_losses(model, stage, batch, step, training=False)
            return {name: losses[name] * weight for name in names}

        # The last validation batch may leave some replicas empty.
        sums = tf.cond(
            count > 0, weighted_losses, lambda: {name: tf.constant(0.0) for name in names}
        )
        return {**sums, "clips": weight}

    @tf.function(reduce_retracing=True)
    def eval_step(batch, step):
        sums = strategy.run(replica_eval, args=(batch, step))
        return {k: strategy.reduce(SUM, v, axis=None) for k, v in sums.items()}

    return eval_step


def _apply_if(condition, apply):
    """Runs `apply` (which updates mirrored variables) in every replica only if `condition`.

    Strategies that synchronize updates through `merge_call` cannot branch
    around it in replica context, so the branch is taken in cross-replica
    context, as Keras' LossScaleOptimizer does.
    """
    if tf.__internal__.distribute.strategy_supports_no_merge_call():
        tf.cond(condition, apply, lambda: None)
        return

    def cross_replica(strategy, condition):
        condition = strategy.experimental_local_results(condition)[0]
        tf.cond(condition, lambda: strategy.extended.call_for_each_replica(apply), lambda: None)

    tf.distribute.get_replica_context().merge_call(cross_replica, args=(condition,))


def _batch_size(batch):
    # Every value of a batch has the examples as its first dimension.
    return tf.shape(next(iter(batch.values())))[0]
