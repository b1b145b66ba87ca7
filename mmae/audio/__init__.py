"""Audio frontend: file I/O here, log-mel features in `mmae.audio.features`.

Only the I/O functions are exported, so `import mmae.audio` does not load
TensorFlow (worker processes that decode clips stay light). The feature layer
imports TensorFlow and is imported from its module:

    from mmae.audio.features import MelSpectrogram
"""

from mmae.audio.io import AudioError, AudioInfo, audio_info, load_audio, load_clip, save_audio

__all__ = ["AudioError", "AudioInfo", "audio_info", "load_audio", "load_clip", "save_audio"]
