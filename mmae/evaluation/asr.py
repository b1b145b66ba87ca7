"""Speech recognition for intelligibility scores: PocketSphinx's bundled US English model.

The `pocketsphinx` wheel on PyPI ships its acoustic model, dictionary and
language model, so nothing is downloaded at run time. The model is trained
on 16 kHz speech; other rates are resampled (soxr) before decoding.

Example:

>>> recognizer = Recognizer()
>>> recognizer.transcribe(waveform, 16000)
'with many in sessions in the margins'
"""

import os

import numpy as np

__all__ = ["Recognizer"]


class Recognizer:
    """Transcribes waveforms with PocketSphinx, one whole utterance at a time.

    Args:
        peak_level: each waveform is scaled to this peak before it is turned
            into 16-bit samples, so quiet synthesis is not lost to rounding
            and loud synthesis does not clip.
    """

    sample_rate = 16000

    def __init__(self, peak_level=0.9):
        from pocketsphinx import Decoder

        self.peak_level = peak_level
        self._decoder = Decoder(samprate=self.sample_rate, logfn=os.devnull)

    @property
    def description(self):
        """What produced the transcripts, for reports."""
        import pocketsphinx

        version = getattr(pocketsphinx, "__version__", None)
        if version is None:
            from importlib.metadata import version as package_version

            version = package_version("pocketsphinx")
        return {
            "engine": "pocketsphinx",
            "version": version,
            "model": os.path.basename(str(self._decoder.config["hmm"]).rstrip("/")),
            "sample_rate": self.sample_rate,
        }

    def transcribe(self, waveform, sample_rate):
        """The recognized words of `waveform` (float, mono, at `sample_rate`), lower case.

        Returns an empty string for empty or silent audio.
        """
        waveform = np.asarray(waveform, np.float32)
        if waveform.ndim != 1:
            raise ValueError(f"Expected a 1-D waveform, got shape {waveform.shape}.")
        if sample_rate != self.sample_rate and waveform.size:
            import soxr

            waveform = soxr.resample(waveform, sample_rate, self.sample_rate, quality="HQ")
        peak = float(np.max(np.abs(waveform))) if waveform.size else 0.0
        if peak == 0.0 or not np.isfinite(peak):
            return ""
        samples = np.round(waveform * (self.peak_level / peak) * 32767.0).astype(np.int16)
        # The feature front end keeps state (noise and cepstral-mean
        # estimates) from one utterance to the next, which made a sentence's
        # transcript depend on the sentence decoded before it.
        self._decoder.reinit_feat()
        self._decoder.start_utt()
        self._decoder.process_raw(samples.tobytes(), no_search=False, full_utt=True)
        self._decoder.end_utt()
        hypothesis = self._decoder.hyp()
        return hypothesis.hypstr.lower() if hypothesis is not None else ""
