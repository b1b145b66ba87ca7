"""What a fresh Python process pays before its first prepared clip.

    python -m bench.data_bench.startup_probe PRESET CLIP

Prints one line of JSON, in seconds: importing TensorFlow and
mmae.datasets.prepare, the first `load_clip` of CLIP (librosa loads its
submodules lazily, on the first trim), the first call of the mel function
(tracing), and the same clip again, warm.

It only means something as the first thing a process does, so it runs in a
process of its own (`prepare_throughput.fresh_process_probe`) and imports
everything after its clock starts. Its packages, `bench` and
`bench.data_bench`, import nothing.
"""

import json
import sys
import time


def main(argv=None):
    preset, clip = sys.argv[1:] if argv is None else argv
    start = time.perf_counter()
    import tensorflow as tf

    import mmae.datasets.prepare  # noqa: F401 (its import time is measured)

    imported_tf = time.perf_counter()
    from mmae.audio.features import MelSpectrogram
    from mmae.audio.io import load_clip
    from mmae.config import Config

    audio = Config.load(preset).audio

    def load():
        return load_clip(clip, audio)  # as prepare loads it

    layer = MelSpectrogram.from_config_dataclass(audio)
    mel_fn = tf.function(layer, input_signature=[tf.TensorSpec([None], tf.float32)])
    before = time.perf_counter()
    waveform = load()
    loaded = time.perf_counter()
    mel_fn(tf.constant(waveform)).numpy()
    first_mel = time.perf_counter()
    load()
    mel_fn(tf.constant(waveform)).numpy()
    second_clip = time.perf_counter()
    stages = {
        "import_tensorflow_and_prepare_s": imported_tf - start,
        "first_load_audio_s": loaded - before,
        "first_mel_call_s": first_mel - loaded,
        "steady_clip_s": second_clip - first_mel,
    }
    print(json.dumps(stages))


if __name__ == "__main__":
    main()
