"""Writes tests/data/pretrained_reference.npz: what the bundled model says, for the regression test.

The bundled pretrained model (`mmae/assets/flite_slt`) speaks two fixed texts
through Griffin-Lim (no trained vocoder in the way); the log-mels of both
and the waveform of the first are saved. tests/test_runs.py checks that the
bundled model still says exactly that, so a change of the frontend, the
model code or the weight format that alters its speech is caught. Run it
after re-packing the bundled model:

    .venv/bin/python scripts/make_pretrained_reference.py
"""

import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEXTS = ["Hello world.", "The quick brown fox jumps over the lazy dog, twice."]


def main():
    sys.path.insert(0, ROOT)
    from mmae.synthesis import Synthesizer

    synthesizer = Synthesizer.from_pretrained(vocoder="griffin_lim")
    mels = synthesizer.synthesize_mel(TEXTS)
    audio = synthesizer.synthesize(TEXTS)[0]
    path = os.path.join(ROOT, "tests", "data", "pretrained_reference.npz")
    np.savez_compressed(
        path,
        texts=np.array(TEXTS),
        **{f"mel_{i}": mel for i, mel in enumerate(mels)},
        audio_0=audio,
    )
    print(f"Wrote {path}")


if __name__ == "__main__":
    main()
