"""mmae: a multimodal (text + audio) autoencoder for speech synthesis.

Importing the package is cheap: TensorFlow is only loaded by the modules
that need it (features, datasets, models), so worker processes that decode
audio or normalize text stay light.
"""

__version__ = "0.1.0"
