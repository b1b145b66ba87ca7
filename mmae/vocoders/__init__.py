"""Vocoders: log-mel frames back to waveforms.

Every vocoder is a `Vocoder` layer, `call(log_mel, num_frames=None)` returning
`[batch, (frames - 1) * frame_step]` float32 samples (see
`mmae.vocoders.base` for the exact length relation), so the synthesizer can
switch from Griffin-Lim to a neural vocoder by name alone.

Example:

>>> from mmae.config import Config
>>> vocoder = vocoder_from_config(Config.load("flite16k").audio, num_iterations=32)
>>> waveforms = vocoder(log_mel, num_frames=lengths)
>>> clip = waveforms[0, : vocoder.samples_for_frames(int(lengths[0]))]
"""

from mmae.vocoders.base import Vocoder
from mmae.vocoders.griffin_lim import GriffinLim

# Name -> Vocoder subclass with a `from_config_dataclass(audio_config, **kwargs)`.
VOCODERS = {"griffin_lim": GriffinLim}


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


__all__ = ["VOCODERS", "GriffinLim", "Vocoder", "vocoder_from_config"]
