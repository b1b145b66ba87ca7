"""Vocoders: log-mel frames back to waveforms.

Every vocoder is a `Vocoder` layer, `call(log_mel, num_frames=None)` returning
`[batch, (frames - 1) * frame_step]` float32 samples (see
`mmae.vocoders.base` for the exact length relation and how bad input is
handled), so the synthesizer can switch from Griffin-Lim to a neural
vocoder by name alone:

- `GriffinLim`: no training, the same for any voice; phasey.
- `Vocos`: a neural vocoder trained by `mmae train-vocoder`; a small one
  for the flite16k features ships with the package (`BUNDLED`).

`resolve_vocoder(spec, audio_config)` is how every command picks one:
"auto" (the bundled neural vocoder when its features are the run's, else
Griffin-Lim with a warning that names the difference), "griffin_lim", or the
path of a vocoder run or pack.

Example:

>>> from mmae.config import Config
>>> vocoder = resolve_vocoder("auto", Config.load("flite16k").audio)
>>> waveforms = vocoder(log_mel, num_frames=lengths)
>>> clip = waveforms[0, : vocoder.samples_for_frames(int(lengths[0]))]
"""

import logging
import os

from mmae.vocoders.base import Vocoder
from mmae.vocoders.griffin_lim import GriffinLim
from mmae.vocoders.vocos import Vocos

logger = logging.getLogger(__name__)

# Name -> Vocoder subclass with a `from_config_dataclass(audio_config, **kwargs)`.
VOCODERS = {"griffin_lim": GriffinLim, "vocos": Vocos}

# The neural vocoder that ships with the package (flite16k features).
BUNDLED = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets", "vocos_flite16k"
)


class VocoderMismatchWarning(UserWarning):
    """The chosen or bundled vocoder was made for other audio features."""


def vocoder_from_config(audio_config, kind="griffin_lim", **kwargs):
    """Builds the vocoder `kind` for features made with `audio_config`.

    Args:
        audio_config: the `mmae.config.AudioConfig` of the log-mels to invert.
        kind: a key of `VOCODERS`.
        **kwargs: forwarded to the vocoder's constructor, e.g.
            `num_iterations=64` for Griffin-Lim, or the layer's `name`.
    """
    if kind not in VOCODERS:
        raise ValueError(f"Unknown vocoder {kind!r}; choose from {', '.join(sorted(VOCODERS))}.")
    return VOCODERS[kind].from_config_dataclass(audio_config, **kwargs)


def build_vocoder(config):
    """The (untrained) neural vocoder a `Config`'s `vocoder` section describes."""
    settings = config.vocoder
    vocoder = Vocos.from_config_dataclass(
        config.audio,
        dim=settings.dim,
        intermediate_dim=settings.intermediate_dim,
        num_blocks=settings.num_blocks,
        kernel_size=settings.kernel_size,
        name="vocos",
    )
    vocoder.build()
    return vocoder


def resolve_vocoder(spec, audio_config):
    """The vocoder `spec` names, for log-mels made with `audio_config`.

    Args:
        spec: None or "auto" (the bundled neural vocoder if its features
            match, else Griffin-Lim with a `VocoderMismatchWarning`),
            "griffin_lim", a `Vocoder` (returned as is), or the path of a
            vocoder run or pack.
        audio_config: the features of the mels to invert.

    Raises:
        IncompatibleConfigError: a vocoder given by path was trained on
            other features (its message names each difference).
    """
    import warnings

    from mmae import runs
    from mmae.config import Config, IncompatibleConfigError, audio_differences

    if isinstance(spec, Vocoder):
        return spec
    if spec == "griffin_lim":
        return vocoder_from_config(audio_config)
    if spec in (None, "auto"):
        if not runs.is_vocoder(BUNDLED):
            return vocoder_from_config(audio_config)
        bundled = Config.load(os.path.join(BUNDLED, "config.yaml"))
        differences = audio_differences(bundled.audio, audio_config)
        if differences:
            warnings.warn(
                "The bundled neural vocoder was trained on other audio features ("
                + "; ".join(differences)
                + "); using Griffin-Lim. Train one with `mmae train-vocoder` and pass --vocoder.",
                VocoderMismatchWarning,
                stacklevel=2,
            )
            return vocoder_from_config(audio_config)
        return runs.load_vocoder(BUNDLED)[1]
    config, vocoder = runs.load_vocoder(spec)
    differences = audio_differences(config.audio, audio_config)
    if differences:
        raise IncompatibleConfigError(
            f"The vocoder {spec} was trained on other audio features: " + "; ".join(differences)
        )
    return vocoder


__all__ = [
    "BUNDLED",
    "VOCODERS",
    "GriffinLim",
    "Vocoder",
    "VocoderMismatchWarning",
    "Vocos",
    "build_vocoder",
    "resolve_vocoder",
    "vocoder_from_config",
]
