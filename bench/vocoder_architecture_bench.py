"""Vocoder architecture benchmark: Vocos against HiFi-GAN V3 and iSTFTNet, on this CPU.

Run from the repository root:

    .venv/bin/python -m bench.vocoder_architecture_bench            # full run: about 5 min, 2 cores
    .venv/bin/python -m bench.vocoder_architecture_bench --quick    # tiny shapes, 1 pass

The project's neural vocoder is Vocos (`mmae.vocoders.Vocos`, built by
`mmae.vocoders.build_vocoder` from the flite16k preset's `vocoder` section).
This benchmark measures what choosing it costs or saves beside the two usual
alternatives, for the flite16k features (16 kHz, hop 256, 80 mels):

- `vocos`: the real class, as configured (ConvNeXt blocks at frame rate, a
  1024-point inverse STFT written as a matrix product);
- `hifigan_v3`: HiFi-GAN V3 (Kong et al. 2020), written below as Keras layers
  after the paper's config: transposed convolutions upsample 8, 8 and 4 times
  (256 = our hop), each followed by a multi-receptive-field fusion of ResBlock2s;
- `istftnet_c8c8i`: iSTFTNet C8C8I (Kaneko et al. 2022): HiFi-GAN V1's first
  two upsampling stages (8 and 8, ResBlock1s, 512 channels in), then a
  16-point inverse STFT with hop 4, through the same matrix-product inverse
  STFT as Vocos (`mmae.vocoders.stft`).

The two written here are `Vocoder`s too (same input clipping, same output
length, `(frames - 1) * 256`), so every one is timed through the same call.
For each: its parameters; inference in a `tf.function` (graph mode, as
synthesis runs it) at batch 1 and batch 16 of 4 s (251 frames); one training
step (forward, backward, clipped AdamW update) of the reconstruction losses
`VocoderGAN.reconstruction_losses` (mel L1 x `mel_weight` + multi-resolution
STFT) on the project's vocoder training batch (16 windows of
`vocoder.segment_frames` frames); and whether it converts to TFLite with
builtin ops only (and then gives what TensorFlow gives). Inputs and weights
are random: speed does not depend on them. Quality does, and is not measured
(see the notes).

All timed calls take turns in one `time_in_rotation` loop, so load from
elsewhere on this shared machine hits them alike; compare the ratios to
Vocos measured within one run, not absolute numbers across runs.

TensorFlow, Keras and mmae are imported inside the functions that use them,
so that importing this module stays cheap.
"""

import dataclasses
import os
import statistics
import sys
import tempfile
import time

from bench.harness import (
    Benchmark,
    logger,
    pyplot,
    save_figure,
    time_in_rotation,
)

PRESET = "flite16k"

log = logger("vocoder_architecture_bench")


@dataclasses.dataclass(frozen=True)
class Settings:
    """How much work the benchmark does."""

    # Inference: one padded batch of this many frames ((frames - 1) * 256 samples).
    inference_frames: int
    inference_batch_sizes: tuple
    # Training: batch_size windows of segment_frames (default: the preset's
    # train.batch_size and vocoder.segment_frames).
    train_batch_size: int | None
    segment_frames: int | None
    # Timed passes after the warm-up pass.
    repeats: int
    # Frames of the input the TFLite interpreter and TensorFlow both vocode.
    tflite_frames: int


FULL = Settings(
    inference_frames=251,
    inference_batch_sizes=(1, 16),
    train_batch_size=None,
    segment_frames=None,
    repeats=5,
    tflite_frames=32,
)
QUICK = Settings(
    inference_frames=16,
    inference_batch_sizes=(1, 2),
    train_batch_size=2,
    segment_frames=8,
    repeats=1,
    tflite_frames=8,
)

# The paper's generator configs (HiFi-GAN's config_v3.json; iSTFTNet's
# config_v1.json with gen_istft_n_fft 16 and gen_istft_hop_size 4).
HIFIGAN_V3 = dict(
    upsample_rates=(8, 8, 4),
    upsample_kernel_sizes=(16, 16, 8),
    upsample_initial_channels=256,
    resblock="2",
    resblock_kernel_sizes=(3, 5, 7),
    resblock_dilations=((1, 2), (2, 6), (3, 12)),
)
ISTFTNET_C8C8I = dict(
    upsample_rates=(8, 8),
    upsample_kernel_sizes=(16, 16),
    upsample_initial_channels=512,
    resblock="1",
    resblock_kernel_sizes=(3, 7, 11),
    resblock_dilations=((1, 3, 5), (1, 3, 5), (1, 3, 5)),
    istft_fft_length=16,
    istft_frame_step=4,
)
# HiFi-GAN's LRELU_SLOPE; the last activation is F.leaky_relu's default, 0.01.
LEAKY_SLOPE = 0.1
FINAL_LEAKY_SLOPE = 0.01


def measure(args):
    """The settings, then every architecture's size, speed and TFLite conversion."""
    from mmae.config import Config

    settings = QUICK if args.quick else FULL
    config = Config.load(PRESET)
    return {
        "config_preset": PRESET,
        "vocoder_config": dataclasses.asdict(config.vocoder),
        "settings": dataclasses.asdict(settings),
        **bench_architectures(config, settings, include_istftnet=not args.no_istftnet),
    }


def add_arguments(parser):
    parser.add_argument(
        "--no-istftnet",
        action="store_true",
        help="leave iSTFTNet C8C8I out (the most expensive of the three to time)",
    )


# --------------------------------------------------------------------------
# The generators written here, after the papers


def generator_classes():
    """(HiFiGAN, ISTFTNet): `Vocoder` subclasses, made on first use to keep imports cheap."""
    import keras
    import tensorflow as tf

    from mmae.audio.features import centred_window
    from mmae.vocoders.base import Vocoder
    from mmae.vocoders.stft import (
        centre_span,
        inverse_dft_basis,
        overlap_and_add,
        overlap_normalizer,
    )

    class ResBlock1(keras.layers.Layer):
        """HiFi-GAN V1's residual block: per dilation, lrelu-conv(dilated)-lrelu-conv, residual."""

        def __init__(self, channels, kernel_size, dilations, **kwargs):
            super().__init__(**kwargs)
            self.channels = channels
            self.kernel_size = kernel_size
            self.dilations = tuple(dilations)
            self.dilated = [
                keras.layers.Conv1D(channels, kernel_size, dilation_rate=d, padding="same")
                for d in self.dilations
            ]
            self.plain = [
                keras.layers.Conv1D(channels, kernel_size, padding="same") for _ in self.dilations
            ]

        def build(self, input_shape):
            for conv in self.dilated + self.plain:
                conv.build(input_shape)
            self.built = True

        def call(self, inputs):
            hidden = inputs
            for dilated, plain in zip(self.dilated, self.plain, strict=True):
                update = dilated(tf.nn.leaky_relu(hidden, LEAKY_SLOPE))
                hidden = hidden + plain(tf.nn.leaky_relu(update, LEAKY_SLOPE))
            return hidden

    class ResBlock2(keras.layers.Layer):
        """HiFi-GAN V3's residual block: per dilation, lrelu then a dilated conv, residual."""

        def __init__(self, channels, kernel_size, dilations, **kwargs):
            super().__init__(**kwargs)
            self.channels = channels
            self.kernel_size = kernel_size
            self.dilations = tuple(dilations)
            self.convs = [
                keras.layers.Conv1D(channels, kernel_size, dilation_rate=d, padding="same")
                for d in self.dilations
            ]

        def build(self, input_shape):
            for conv in self.convs:
                conv.build(input_shape)
            self.built = True

        def call(self, inputs):
            hidden = inputs
            for conv in self.convs:
                hidden = hidden + conv(tf.nn.leaky_relu(hidden, LEAKY_SLOPE))
            return hidden

    class HiFiGAN(Vocoder):
        """HiFi-GAN's generator (Kong et al. 2020), channels last, without weight norm.

        Log-mel `[batch, frames, num_mels]` in; a `Vocoder`, so it returns
        `(frames - 1) * frame_step` samples, cut from its `frames * frame_step`.
        `istft_fft_length` > 0 makes it iSTFTNet: the last convolution predicts
        log-magnitude and phase of `istft_fft_length`-point frames instead of samples.
        """

        def __init__(
            self,
            sample_rate,
            frame_step,
            num_mels,
            upsample_rates,
            upsample_kernel_sizes,
            upsample_initial_channels,
            resblock,
            resblock_kernel_sizes,
            resblock_dilations,
            istft_fft_length=0,
            istft_frame_step=1,
            **kwargs,
        ):
            super().__init__(sample_rate=sample_rate, frame_step=frame_step, **kwargs)
            upsampling = 1
            for rate in upsample_rates:
                upsampling *= rate
            if upsampling * istft_frame_step != frame_step:
                raise ValueError(
                    f"Upsampling {upsample_rates} x iSTFT hop {istft_frame_step} must be the "
                    f"frame step {frame_step}."
                )
            self.num_mels = num_mels
            self.upsample_rates = tuple(upsample_rates)
            self.upsample_kernel_sizes = tuple(upsample_kernel_sizes)
            self.upsample_initial_channels = upsample_initial_channels
            self.resblock = resblock
            self.resblock_kernel_sizes = tuple(resblock_kernel_sizes)
            self.resblock_dilations = tuple(tuple(d) for d in resblock_dilations)
            self.istft_fft_length = istft_fft_length
            self.istft_frame_step = istft_frame_step
            block = {"1": ResBlock1, "2": ResBlock2}[resblock]
            self.conv_pre = keras.layers.Conv1D(upsample_initial_channels, 7, padding="same")
            self.upsamplers, self.fusions = [], []
            channels = upsample_initial_channels
            for rate, kernel_size in zip(upsample_rates, upsample_kernel_sizes, strict=True):
                channels //= 2
                # "same": `rate` samples out per sample in, as PyTorch's
                # padding (kernel_size - rate) // 2 gives.
                self.upsamplers.append(
                    keras.layers.Conv1DTranspose(channels, kernel_size, rate, padding="same")
                )
                self.fusions.append(
                    [
                        block(channels, k, d)
                        for k, d in zip(resblock_kernel_sizes, self.resblock_dilations, strict=True)
                    ]
                )
            out_channels = istft_fft_length + 2 if istft_fft_length else 1
            self.conv_post = keras.layers.Conv1D(out_channels, 7, padding="same")
            if istft_fft_length:
                window = centred_window(istft_fft_length, istft_fft_length)
                self._window = window
                self._basis_real, self._basis_imag = inverse_dft_basis(
                    window.numpy(), istft_fft_length
                )

        def build(self, input_shape=None):
            self.conv_pre.build((None, None, self.num_mels))
            channels = self.upsample_initial_channels
            for upsampler, fusion in zip(self.upsamplers, self.fusions, strict=True):
                upsampler.build((None, None, channels))
                channels //= 2
                for block in fusion:
                    block.build((None, None, channels))
            self.conv_post.build((None, None, channels))
            self.built = True

        def vocode(self, log_mel, num_frames=None):
            hidden = self.conv_pre(log_mel)
            for upsampler, fusion in zip(self.upsamplers, self.fusions, strict=True):
                hidden = upsampler(tf.nn.leaky_relu(hidden, LEAKY_SLOPE))
                # Multi-receptive-field fusion: the blocks' mean.
                hidden = tf.add_n([block(hidden) for block in fusion]) / len(fusion)
            hidden = tf.nn.leaky_relu(hidden, FINAL_LEAKY_SLOPE)
            if not self.istft_fft_length:
                return tf.tanh(self.conv_post(hidden))[:, :, 0]
            # iSTFTNet: one frame on the left, mirrored (its ReflectionPad1d((1, 0))),
            # makes `frames * upsampling + 1` STFT frames, `frames * frame_step` samples.
            hidden = tf.pad(hidden, [[0, 0], [1, 0], [0, 0]], mode="REFLECT")
            outputs = self.conv_post(hidden)
            bins = self.istft_fft_length // 2 + 1
            log_magnitude, phase = tf.split(outputs, [bins, bins], axis=-1)
            magnitude, phase = tf.exp(log_magnitude), tf.sin(phase)
            real, imag = magnitude * tf.cos(phase), magnitude * tf.sin(phase)
            windowed = tf.matmul(real, self._basis_real) + tf.matmul(imag, self._basis_imag)
            frames = tf.shape(windowed)[1]
            overlapped = overlap_and_add(windowed, self.istft_frame_step)
            waveform = centre_span(overlapped, self.istft_fft_length, self.istft_frame_step, frames)
            return waveform * overlap_normalizer(self._window, self.istft_frame_step, frames)

    return HiFiGAN


def build_generators(config, include_istftnet):
    """{name: (built Vocoder, what it is)} for the flite16k features."""
    from mmae.vocoders import build_vocoder

    HiFiGAN = generator_classes()
    audio = config.audio
    common = dict(
        sample_rate=audio.sample_rate, frame_step=audio.frame_step, num_mels=audio.num_mels
    )
    settings = config.vocoder
    generators = {
        "vocos": (
            build_vocoder(config),
            f"mmae.vocoders.Vocos as configured: dim {settings.dim}, intermediate "
            f"{settings.intermediate_dim}, {settings.num_blocks} ConvNeXt blocks, kernel "
            f"{settings.kernel_size}, {audio.fft_length}-point inverse STFT (matrix product)",
        ),
        "hifigan_v3": (
            HiFiGAN(**common, **HIFIGAN_V3, name="hifigan_v3"),
            "HiFi-GAN V3: conv 256 k7; transposed convs x8 x8 x4 (k 16 16 8), 128/64/32 "
            "channels, each followed by the mean of ResBlock2s k3/5/7, dilations "
            "[1,2]/[2,6]/[3,12]; conv 1 k7, tanh",
        ),
    }
    if include_istftnet:
        generators["istftnet_c8c8i"] = (
            HiFiGAN(**common, **ISTFTNET_C8C8I, name="istftnet_c8c8i"),
            "iSTFTNet C8C8I: HiFi-GAN V1 (conv 512 k7; transposed convs x8 x8, k16, 256/128 "
            "channels, ResBlock1s k3/7/11, dilations [1,3,5]); conv 18 k7 to log-magnitude "
            "and phase; 16-point inverse STFT, hop 4 (matrix product)",
        )
    for generator, _ in generators.values():
        if not generator.built:  # build_vocoder builds Vocos
            generator.build()
    return generators


# --------------------------------------------------------------------------
# The benchmark


def bench_architectures(config, settings, include_istftnet):
    """Parameters, timings and TFLite conversion of every generator."""
    import keras
    import tensorflow as tf

    from mmae.vocoders.gan import VocoderGAN

    keras.utils.set_random_seed(0)
    audio, vocoder_settings = config.audio, config.vocoder
    generators = build_generators(config, include_istftnet)
    # Training steps update their generator's weights: a second copy of each
    # keeps those of the inference timings and the TFLite check as initialized.
    trained = build_generators(config, include_istftnet)
    # The reconstruction losses of the project's vocoder training; its own
    # generator (another Vocos) is unused.
    losses = VocoderGAN(config)
    train_batch = settings.train_batch_size or config.train.batch_size
    segment_frames = settings.segment_frames or vocoder_settings.segment_frames
    segment_samples = (segment_frames - 1) * audio.frame_step
    inference_samples = (settings.inference_frames - 1) * audio.frame_step

    def random_log_mel(batch, frames):
        # About the range of real log-mels (-11.5 to 2.2): speed does not depend on it.
        return tf.random.normal([batch, frames, audio.num_mels], mean=-5.0, stddev=2.5)

    inference_inputs = {
        b: random_log_mel(b, settings.inference_frames) for b in settings.inference_batch_sizes
    }
    train_mel = random_log_mel(train_batch, segment_frames)
    train_audio = tf.random.normal([train_batch, segment_samples], stddev=0.1)

    methods, entries = {}, {}
    for name, (generator, description) in generators.items():
        infer = inference_function(generator, audio.num_mels)
        for batch in settings.inference_batch_sizes:
            methods[f"{name}/infer_batch{batch}"] = timed_call(infer, inference_inputs[batch])
        step = training_step(trained[name][0], losses, config)
        methods[f"{name}/train_step"] = timed_call(step, train_mel, train_audio)
        entries[name] = {
            "description": description,
            "parameters": int(sum(v.numpy().size for v in generator.trainable_variables)),
        }
        log(f"  {name}: {entries[name]['parameters']:,} parameters")

    outputs, first_pass, times = time_in_rotation(methods, settings.repeats, log)

    for name, entry in entries.items():
        for batch in settings.inference_batch_sizes:
            key = f"{name}/infer_batch{batch}"
            median = statistics.median(times[key])
            audio_seconds = batch * inference_samples / audio.sample_rate
            waveform = outputs[key]
            entry[f"infer_batch{batch}"] = {
                "pass_seconds": [round(t, 4) for t in times[key]],
                "median_s": round(median, 4),
                # Compute seconds per second of audio: below 1 is faster than real time.
                "real_time_factor": round(median / audio_seconds, 5),
                "x_real_time": round(audio_seconds / median, 1),
                "trace_s": round(max(0.0, first_pass[key] - median), 2),
                "output_shape": list(waveform.shape),
                "output_finite": bool(tf.reduce_all(tf.math.is_finite(waveform))),
            }
        key = f"{name}/train_step"
        median = statistics.median(times[key])
        entry["train_step"] = {
            "pass_seconds": [round(t, 4) for t in times[key]],
            "median_s": round(median, 4),
            "audio_s_per_step": round(train_batch * segment_samples / audio.sample_rate, 3),
            "trace_s": round(max(0.0, first_pass[key] - median), 2),
            "first_loss": round(float(outputs[key]), 3),
        }
    base = entries["vocos"]
    for entry in entries.values():
        entry["time_vs_vocos"] = {
            part: round(entry[part]["median_s"] / base[part]["median_s"], 2)
            for part in [f"infer_batch{b}" for b in settings.inference_batch_sizes] + ["train_step"]
        }
        entry["parameters_vs_vocos"] = round(entry["parameters"] / base["parameters"], 2)

    for name, (generator, _) in generators.items():
        log(f"  TFLite: {name}")
        entries[name]["tflite"] = tflite_check(generator, audio.num_mels, settings.tflite_frames)

    return {
        "inference": {
            "frames": settings.inference_frames,
            "samples": inference_samples,
            "audio_s_per_item": inference_samples / audio.sample_rate,
            "batch_sizes": list(settings.inference_batch_sizes),
        },
        "training": {
            "batch_size": train_batch,
            "segment_frames": segment_frames,
            "segment_samples": segment_samples,
            "loss": f"{vocoder_settings.mel_weight} x mel_l1 + {vocoder_settings.stft_weight} x "
            f"stft (FFT sizes {vocoder_settings.stft_loss_fft_lengths})",
        },
        "repeats": settings.repeats,
        "tensorflow_threads": {
            "intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
            "cpu_count": os.cpu_count(),
        },
        "architectures": entries,
    }


def inference_function(generator, num_mels):
    """The generator in a graph-mode `tf.function` for any batch and length of log-mels."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([None, None, num_mels], tf.float32)])
    def vocode(log_mel):
        return generator(log_mel)

    return vocode


def timed_call(function, *inputs):
    """A callable without arguments: `function(*inputs)` as NumPy, so the time includes the work."""
    return lambda: function(*inputs).numpy()


def training_step(generator, losses, config):
    """A graph-mode step: reconstruction losses, gradients, clipped AdamW update; returns the loss.

    Graph mode without XLA, as `mmae train-vocoder` runs on a CPU
    (`train.jit_compile: auto`).
    """
    import keras
    import tensorflow as tf

    settings, train = config.vocoder, config.train
    optimizer = keras.optimizers.AdamW(
        train.learning_rate, beta_1=train.beta_1, beta_2=train.beta_2, weight_decay=1e-6
    )
    variables = generator.trainable_variables
    optimizer.build(variables)

    @tf.function
    def step(log_mel, audio):
        with tf.GradientTape() as tape:
            fake = generator(log_mel, training=True)
            terms = losses.reconstruction_losses(audio, fake)
            loss = settings.mel_weight * terms["mel_l1"] + settings.stft_weight * terms["stft"]
        gradients = tape.gradient(loss, variables)
        gradients, _ = tf.clip_by_global_norm(gradients, train.clip_norm)
        optimizer.apply(gradients, variables)
        return loss

    return step


def tflite_check(generator, num_mels, frames):
    """Converts `generator` (log-mel `[1, None, num_mels]`) with builtin ops only; runs it once.

    As `mmae.export._write_tflite` does: variables frozen to constants first,
    then `TFLiteConverter.from_concrete_functions`, but without its fallback
    to select TF ops.
    """
    import numpy as np
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    @tf.function(
        input_signature=[tf.TensorSpec([1, None, num_mels], tf.float32, name="log_mel")],
        autograph=False,
    )
    def vocode(log_mel):
        return {"audio": generator(log_mel)}

    start = time.perf_counter()
    frozen = convert_variables_to_constants_v2(vocode.get_concrete_function())
    converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen], tf.Module())
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    try:
        flatbuffer = converter.convert()
    except Exception as failure:  # the converter raises ConverterError and others
        lines = [line.strip() for line in str(failure).strip().splitlines() if line.strip()]
        named = [line for line in lines if "ops" in line.lower() and "select" in line.lower()]
        gist = (named or lines or [""])[0]
        return {"builtin_ops": False, "error": f"{type(failure).__name__}: {gist[:400]}"}
    convert_s = time.perf_counter() - start
    log_mel = np.random.default_rng(0).normal(-5.0, 2.5, [1, frames, num_mels]).astype(np.float32)
    with tempfile.TemporaryDirectory() as directory:
        # From a file, as an app loads it.
        path = os.path.join(directory, "vocoder.tflite")
        with open(path, "wb") as f:
            f.write(flatbuffer)
        interpreter = litert_interpreter()(model_path=path)
        (log_mel_input,) = interpreter.get_input_details()
        interpreter.resize_tensor_input(log_mel_input["index"], log_mel.shape)
        interpreter.allocate_tensors()
        interpreter.set_tensor(log_mel_input["index"], log_mel)
        interpreter.invoke()
        (audio_output,) = interpreter.get_output_details()
        tflite_audio = interpreter.get_tensor(audio_output["index"])
    reference = generator(tf.constant(log_mel)).numpy()
    peak = float(np.max(np.abs(reference)))
    same_shape = tflite_audio.shape == reference.shape
    return {
        "builtin_ops": True,
        "bytes": len(flatbuffer),
        "convert_s": round(convert_s, 1),
        "checked_frames": frames,
        "output_shape_matches": same_shape,
        # A silent reference (non-finite output zeroed) would make any match meaningless.
        "tf_output_peak": float(f"{peak:.3g}"),
        "max_abs_difference_vs_tf_over_peak": float(
            f"{float(np.max(np.abs(tflite_audio - reference))) / peak:.3g}"
        )
        if same_shape and peak > 0
        else None,
    }


def litert_interpreter():
    """LiteRT's `Interpreter` (what the tests and an app use), else TensorFlow's deprecated one."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        return tf.lite.Interpreter
    return Interpreter


# --------------------------------------------------------------------------
# Report


def notes(results):
    entries = results["architectures"]
    lines = [
        "Timings on a small shared machine are noisy: compare the ratios to Vocos measured "
        "within one run (time_vs_vocos), not absolute numbers across runs. Every timed call "
        "takes turns with all the others in one time_in_rotation loop; the numbers are medians "
        "of the timed passes, trace_s the warm-up pass minus the median (tf.function tracing).",
        "Inference: a tf.function (graph mode, no XLA) of the generator's Vocoder call on one "
        "random [batch, 251, 80] log-mel, 4 s of audio per item, timed to a NumPy waveform. "
        "real_time_factor is seconds per second of audio over the whole batch (below 1: faster "
        "than real time).",
        "Training step: random log-mel windows and random waveforms of the project's vocoder "
        "training batch (train.batch_size windows of vocoder.segment_frames frames), forward, "
        "VocoderGAN.reconstruction_losses (mel L1 x mel_weight + multi-resolution STFT loss at "
        "FFT sizes 512/1024/2048, the pre-adversarial stage of train-vocoder), gradients, global "
        "norm clipping and an AdamW update, in one tf.function without XLA (train.jit_compile "
        "auto is off on CPU). The discriminators, which the adversarial stage adds and which "
        "cost the same whichever generator they judge, are not included: with them the ratios "
        "between generators shrink.",
        "HiFi-GAN V3 and iSTFTNet are written in this file after the papers' configs, channels "
        "last, without weight normalization (a reparametrization with one extra scale per "
        "output channel in training, folded away for inference); their parameter counts are "
        "the weights and biases of the convolutions. Keras 'same' padding of the transposed "
        "convolutions gives the same output length as PyTorch's padding (k - u) // 2. Both "
        "produce frames x 256 samples, cut to the (frames - 1) x 256 of the Vocoder contract.",
        "TFLite: the inference function with a [1, None, 80] input, variables frozen to "
        "constants, TFLiteConverter.from_concrete_functions with TFLITE_BUILTINS only (no "
        "select TF ops), then run once from the file in tf.lite.Interpreter on a random log-mel "
        "(LiteRT's interpreter) and compared with TensorFlow (max |difference| over the TensorFlow output's peak).",
        "Quality is not compared: with random weights every output is noise, and a fair "
        "comparison needs each generator trained for hours on the same data with the same "
        "losses and discriminators, then judged by listening, ASR error or MOS. The project "
        "trained only Vocos (its bundled vocoder), so this benchmark can say what each "
        "architecture costs on this CPU, not which sounds better; the papers report HiFi-GAN "
        "V3 below V1 in MOS, Vocos on par with or above HiFi-GAN V1, and iSTFTNet C8C8I on par "
        "with HiFi-GAN V1, all at 22.05 kHz on LJSpeech or LibriTTS.",
    ]
    if "istftnet_c8c8i" not in entries:
        lines.append("iSTFTNet C8C8I was left out of this run (--no-istftnet).")
    return lines


def summary_text(results):
    entries = results["architectures"]
    batches = results["inference"]["batch_sizes"]
    lines = [
        f"{'architecture':<16}{'params':>11}"
        + "".join(f"{f'RTF b{b}':>11}{'x vocos':>8}" for b in batches)
        + f"{'train s':>10}{'x vocos':>8}  tflite builtin"
    ]
    for name, entry in entries.items():
        row = f"{name:<16}{entry['parameters']:>11,}"
        ratios = entry["time_vs_vocos"]
        for b in batches:
            rtf = entry[f"infer_batch{b}"]["real_time_factor"]
            row += f"{rtf:>11.4f}{ratios[f'infer_batch{b}']:>8.2f}"
        row += f"{entry['train_step']['median_s']:>10.3f}{ratios['train_step']:>8.2f}"
        row += f"  {entry['tflite']['builtin_ops']}"
        lines.append(row)
    lines.append(f"total {results['total_seconds']} s")
    return "\n".join(lines)


def plot(results, path):
    plt = pyplot()
    entries = results["architectures"]
    names = list(entries)
    batches = results["inference"]["batch_sizes"]
    parts = [(f"infer_batch{b}", f"inference, batch {b}\n(real-time factor)") for b in batches]
    parts.append(("train_step", "training step\n(seconds)"))
    parts.append(("parameters", "parameters\n(millions)"))
    figure, axes = plt.subplots(1, len(parts), figsize=(4.2 * len(parts), 0.6 * len(names) + 2.2))
    colors = ["#55a868" if n == "vocos" else "#8c8c8c" for n in names]
    for panel, (part, title) in zip(axes, parts, strict=True):
        if part == "parameters":
            values = [entries[n]["parameters"] / 1e6 for n in names]
            labels = [
                f" {v:.2f}M ({entries[n]['parameters_vs_vocos']:.2f}x)"
                for n, v in zip(names, values, strict=True)
            ]
        elif part == "train_step":
            values = [entries[n][part]["median_s"] for n in names]
            labels = [
                f" {v:.3g} s ({entries[n]['time_vs_vocos'][part]:.2f}x)"
                for n, v in zip(names, values, strict=True)
            ]
        else:
            values = [entries[n][part]["real_time_factor"] for n in names]
            labels = [
                f" {v:.3g} ({entries[n]['time_vs_vocos'][part]:.2f}x)"
                for n, v in zip(names, values, strict=True)
            ]
        positions = range(len(names))
        panel.barh(positions, values, color=colors)
        panel.set_yticks(list(positions), names if panel is axes[0] else [""] * len(names))
        panel.invert_yaxis()
        panel.set_xscale("log")
        panel.set_xlim(min(values) / 2, max(values) * 12)
        for position, label, value in zip(positions, labels, values, strict=True):
            panel.annotate(label, (value, position), va="center", fontsize=8.5)
        panel.set_title(title, fontsize=10)
        panel.grid(axis="x", alpha=0.3, which="both")
    tflite = ", ".join(
        f"{n} {'yes' if entries[n]['tflite']['builtin_ops'] else 'no'}" for n in names
    )
    figure.suptitle(
        f"Vocoder generators on this CPU, flite16k features, random weights (x: ratio to "
        f"Vocos; log scales). TFLite builtin ops: {tflite}",
        fontsize=10,
    )
    save_figure(figure, path)


SMOKE_MODE = "16-frame inputs, batches of 1 and 2, a 2 x 8-frame training batch, 1 pass"
BENCHMARK = Benchmark(
    "vocoder_architecture_bench",
    __doc__,
    measure,
    plot,
    quick=SMOKE_MODE,
    add_arguments=add_arguments,
    notes=notes,
    summary=summary_text,
)

if __name__ == "__main__":
    sys.exit(BENCHMARK.main())
