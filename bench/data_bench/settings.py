"""How much work each part of the data benchmarks does: a full run and `--quick`."""

import dataclasses

PRESET = "flite16k"


@dataclasses.dataclass(frozen=True)
class Settings:
    """How much work each part does; the defaults are the full run's."""

    prepare_clips: int | None = None  # None: the whole sample corpus
    prepare_repeats: int = 5
    # The first few sample clips: the first prepare call's warm-up and, when
    # startup_repeats > 0, the tiny corpus that isolates a call's fixed cost.
    startup_clips: int = 8
    startup_repeats: int = 5
    startup_probe: bool = True
    # Also prepare the sample this many times over (0: skip), for the scaling fit.
    scale_factor: int = 8
    scale_repeats: int = 3
    mel_clips: int = 100
    mel_repeats: int = 7
    mel_batch_size: int = 16
    # Batched calls pad each length-sorted batch up to a multiple of this many
    # seconds, so a jit-compiled function sees a handful of shapes.
    mel_pad_seconds: float = 1.0
    pipeline_batches: int = 200
    pipeline_warmup_batches: int = 20
    pipeline_repeats: int = 3
    bigger_corpus: bool = True


FULL = Settings()
# Every part tiny: a smoke test of seconds.
QUICK = Settings(
    prepare_clips=8,
    prepare_repeats=1,
    startup_clips=4,
    startup_repeats=0,
    startup_probe=False,
    scale_factor=0,
    scale_repeats=0,
    mel_clips=6,
    mel_repeats=1,
    pipeline_batches=5,
    pipeline_warmup_batches=1,
    pipeline_repeats=1,
    bigger_corpus=False,
)
