"""Naturalness without listeners: DNSMOS P.808 and P.835 scores from the `speechmos` models.

DNSMOS (Microsoft's Deep Noise Suppression challenge) predicts the mean
opinion score listeners would give a clip: one P.808 MOS (overall quality,
1 to 5) and the three P.835 scores, SIG (the speech itself), BAK (the
background) and OVRL (overall). The `speechmos` wheel on PyPI ships the ONNX
models, so nothing is downloaded at run time; `onnxruntime` runs them on the
CPU. Both come with the `eval` extra (`pip install mmae[eval]`).

What `Naturalness.score` does with a waveform, in order:

- resamples it to 16 kHz (soxr), the only rate the models take;
- scales it to an RMS level of `level_dbfs` (-25 dBFS, the default target
  level of the DNS challenge's data tools), because the scores move with
  level: the sample clip slt_00003 at 0.3 times its level had OVRL 2.86
  against 2.34, while the rows of an evaluation differ in level for reasons
  that have nothing to do with naturalness (synthesized audio is only ever
  scaled down to the output peak, never up). `level_dbfs=None` scores the
  level as given;
- hands it to `speechmos.dnsmos.DNSMOS`, which repeats a clip shorter than
  9.01 s end to end, doubling it until it is at least that long (a 2.1 s
  sentence is judged as 17 s of itself), and averages the scores of 9.01 s
  windows taken every second: 1 to 9 windows for a clip under 9 s, then one
  more per second. A window took 0.18 s (0.36 s of CPU, on two cores):
  0.2 s for slt_00002 (2.4 s, repeated to 9.6 s, one window), 1.5 s for
  slt_00001 (2.1 s, repeated to 17.2 s, eight windows).

An empty or all-zero clip has no scores (None): the models rate digital
silence at an OVRL of 1.84, above Griffin-Lim speech, which says nothing.

Example:

>>> naturalness = Naturalness()
>>> naturalness.score(waveform, 16000)
{'mos_p808': 3.23, 'sig': 3.01, 'bak': 3.51, 'ovrl': 2.57}
"""

import os

import numpy as np

__all__ = ["Naturalness"]

SCORE_KEYS = ("mos_p808", "sig", "bak", "ovrl")


class Naturalness:
    """Scores waveforms with DNSMOS (P.808 MOS and P.835 SIG, BAK, OVRL).

    The ONNX sessions are loaded once, here, and reused for every clip.

    Args:
        level_dbfs: RMS level, in dB relative to full scale, each waveform is
            scaled to before scoring; None to score it as given.
    """

    sample_rate = 16000

    def __init__(self, level_dbfs=-25.0):
        try:
            import onnxruntime  # noqa: F401
            from speechmos import dnsmos
        except ImportError as error:
            raise ImportError(
                f"DNSMOS needs speechmos and onnxruntime ({error}); install them with "
                "`pip install mmae[eval]` (the `eval` extra)."
            ) from error
        self.level_dbfs = level_dbfs
        models = os.path.join(os.path.dirname(dnsmos.__file__), "dnsmos_models")
        self._model_files = ("sig_bak_ovr.onnx", "model_v8.onnx")
        self._dnsmos = dnsmos.DNSMOS(*(os.path.join(models, name) for name in self._model_files))

    @property
    def description(self):
        """What produced the scores, for reports."""
        from importlib.metadata import version

        return {
            "engine": "DNSMOS (speechmos.dnsmos.DNSMOS, onnxruntime, CPU)",
            "version": {name: version(name) for name in ("speechmos", "onnxruntime")},
            "models": {"p835": self._model_files[0], "p808": self._model_files[1]},
            "sample_rate": self.sample_rate,
            "level_dbfs": self.level_dbfs,
            "short_clips": "repeated end to end until at least 9.01 s long",
            "windows": "9.01 s every 1 s, scores averaged",
        }

    def score(self, waveform, sample_rate):
        """The DNSMOS scores of `waveform` (float, mono, at `sample_rate`).

        Returns:
            `{"mos_p808", "sig", "bak", "ovrl"}` as floats from 1 to 5, each
            None for an empty or all-zero waveform.
        """
        waveform = np.asarray(waveform, np.float32)
        if waveform.ndim != 1:
            raise ValueError(f"Expected a 1-D waveform, got shape {waveform.shape}.")
        if sample_rate != self.sample_rate and waveform.size:
            import soxr

            waveform = soxr.resample(waveform, sample_rate, self.sample_rate, quality="HQ")
        if not np.all(np.isfinite(waveform)):
            raise ValueError("The waveform holds NaN or Inf.")
        if not np.any(waveform):
            return dict.fromkeys(SCORE_KEYS)
        if self.level_dbfs is not None:
            rms = float(np.sqrt(np.mean(np.square(waveform, dtype=np.float64))))
            waveform = waveform * np.float32(10.0 ** (self.level_dbfs / 20.0) / rms)
        # DNSMOS refuses samples outside [-1, 1]; a WAV would clip them too.
        waveform = np.clip(waveform, -1.0, 1.0)
        scores = self._dnsmos(waveform, self.sample_rate, False)
        return {
            "mos_p808": float(scores["p808_mos"]),
            "sig": float(scores["sig_mos"]),
            "bak": float(scores["bak_mos"]),
            "ovrl": float(scores["ovrl_mos"]),
        }
