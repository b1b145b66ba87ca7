"""Training regimes: which objective each stage optimizes, and which parts it trains.

A model names its parts (`model.parts`, {name: layer}) and computes its
objectives (`model.compute_losses(batch, objective=...)`); a regime, chosen
by `train.regime`, splits the steps into stages and decides, per stage,
what is optimized and what is trained. A stage makes one or more updates per
step, each with its own optimizer: one for the autoencoder, two alternating
ones (discriminator, then generator) for an adversarial model.

    joint            joint over every part
    separate         audio (audio_encoder, decoder, speakers), then
                     text (text_encoder, length_regulator, aligner, duration_predictor)
    self_supervised  masked_audio (audio_encoder, decoder, speakers), then joint
"""

import dataclasses

__all__ = ["ALL_PARTS", "Stage", "Update", "stage_at", "stages_for"]

# An update that trains every part of the model.
ALL_PARTS = None

_AUDIO_AUTOENCODER = ("audio_encoder", "decoder", "speakers")
_TEXT_SIDE = ("text_encoder", "length_regulator", "aligner", "duration_predictor")


@dataclasses.dataclass(frozen=True)
class Update:
    """One optimizer step within a training step.

    Args:
        objective: what `model.compute_losses` computes; its "loss" is minimized.
        parts: names of the model parts it trains (`ALL_PARTS`: all of them).
        options: keyword arguments for `compute_losses` (e.g. `mask_ratio`).
        name: names the optimizer and, in a stage of several updates,
            prefixes its logged losses (default: the objective).
    """

    objective: str
    parts: tuple | None = ALL_PARTS
    options: tuple = ()
    name: str = ""

    @property
    def key(self):
        return self.name or self.objective


@dataclasses.dataclass(frozen=True)
class Stage:
    """Steps [start_step, end_step) of a regime; its updates run in order every step."""

    name: str
    start_step: int
    end_step: int
    updates: tuple = ()

    @property
    def num_steps(self):
        return self.end_step - self.start_step


def stages_for(train_config):
    """The stages of `train_config.regime`, in order, covering steps [0, steps).

    `pretrain_steps` ends the first stage of "separate" and "self_supervised".
    """
    steps, pretrain = train_config.steps, train_config.pretrain_steps
    if steps <= 0:
        raise ValueError(f"train.steps must be positive, got {steps}.")
    if train_config.regime == "joint":
        return [Stage("joint", 0, steps, (Update("joint"),))]
    if not 0 < pretrain < steps:
        raise ValueError(
            f"train.pretrain_steps ({pretrain}) must be between 0 and train.steps ({steps}) "
            f"for the {train_config.regime!r} regime."
        )
    if train_config.regime == "separate":
        first = Stage("audio_autoencoder", 0, pretrain, (Update("audio", _AUDIO_AUTOENCODER),))
        second = Stage("text_to_latent", pretrain, steps, (Update("text", _TEXT_SIDE),))
    else:
        masked = Update(
            "masked_audio", _AUDIO_AUTOENCODER, (("mask_ratio", train_config.mask_ratio),)
        )
        first = Stage("masked_pretrain", 0, pretrain, (masked,))
        second = Stage("joint", pretrain, steps, (Update("joint"),))
    return [first, second]


def stage_at(stages, step):
    """The stage that runs global step `step` (the last one past the end)."""
    for stage in stages:
        if step < stage.end_step:
            return stage
    return stages[-1]


def trainable_variables(model, update):
    """The trainable variables of the parts `update` trains.

    Raises:
        ValueError: the update names a part the model does not have.
    """
    parts = model.parts
    names = list(parts) if update.parts is ALL_PARTS else update.parts
    unknown = [name for name in names if name not in parts]
    if unknown:
        raise ValueError(
            f"Update {update.key!r} trains {', '.join(unknown)}, which "
            f"{type(model).__name__} does not have (its parts: {', '.join(parts)})."
        )
    return [v for name in names if parts[name] is not None for v in parts[name].trainable_variables]
