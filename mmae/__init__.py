"""mmae: a multimodal (text + audio) autoencoder for speech synthesis.

Importing the package is cheap: TensorFlow is only loaded by the modules
that need it (features, datasets, models), so worker processes that decode
audio or normalize text stay light.
"""

__version__ = "0.1.0"


def __getattr__(name):
    # `mmae.Synthesizer` without importing TensorFlow on `import mmae`.
    if name == "Synthesizer":
        from mmae.synthesis import Synthesizer

        return Synthesizer
    raise AttributeError(f"module 'mmae' has no attribute {name!r}")
