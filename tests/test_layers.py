"""Every layer and model part through the shared `run_layer_test`, on tiny inputs."""

import numpy as np
import pytest
import tensorflow as tf

from layer_test_case import run_layer_test
from mmae.audio.features import MelSpectrogram
from mmae.layers import (
    ConvBlock,
    Dropout,
    LengthRegulator,
    SpeakerEmbedding,
    TransformerBlock,
    alignment_from_durations,
)
from mmae.models.parts import Aligner, AudioEncoder, Decoder, DurationPredictor, TextEncoder
from mmae.vocoders import GriffinLim, Vocos
from mmae.vocoders.discriminators import (
    MultiPeriodDiscriminator,
    MultiResolutionDiscriminator,
    PeriodDiscriminator,
    ResolutionDiscriminator,
)
from mmae.vocoders.vocos import ConvNeXtBlock

BATCH, TOKENS, FRAMES, HIDDEN, LATENT, MELS, VOCAB = 2, 5, 7, 8, 4, 6, 10
NUM_TOKENS = np.array([5, 3], np.int32)
NUM_FRAMES = np.array([7, 5], np.int32)
# Both examples padded differently, so masking is part of every check.
TOKEN_MASK = (np.arange(TOKENS) < NUM_TOKENS[:, None]).astype(np.float32)
FRAME_MASK = (np.arange(FRAMES) < NUM_FRAMES[:, None]).astype(np.float32)
EVAL = {"training": False}
# A tiny audio geometry (8 kHz, 64-point FFT) shared by the mel layer and the vocoder.
AUDIO = dict(
    sample_rate=8000,
    fft_length=64,
    frame_length=48,
    frame_step=16,
    num_mels=8,
    lower_edge_hertz=0.0,
    upper_edge_hertz=4000.0,
    mel_scale="slaney",
)


def normal(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def hidden_states():
    return normal(BATCH, TOKENS, HIDDEN) * TOKEN_MASK[..., None]


class TestDropout:
    def test_layer(self):
        run_layer_test(
            Dropout,
            {"rate": 0.25},
            hidden_states(),
            call_kwargs=EVAL,
            expected_output_shape=(BATCH, TOKENS, HIDDEN),
            expected_num_trainable_weights=0,
        )

    def test_drops_the_rate_and_keeps_the_expectation(self):
        layer = Dropout(0.25, seed=1)
        inputs = np.ones((64, 1001), np.float32)  # an odd number of elements
        first = layer(inputs, training=True).numpy()
        second = layer(inputs, training=True).numpy()
        assert set(np.unique(first)) == {
            0.0,
            np.float32(4 / 3),
        }  # kept elements scaled by 1 / (1 - 0.25)
        assert abs(np.mean(first == 0) - 0.25) < 0.01
        assert abs(first.mean() - 1.0) < 0.02
        assert np.mean((first == 0) == (second == 0)) < 0.7  # a new mask every call
        np.testing.assert_array_equal(layer(inputs, training=False), inputs)

    def test_gradient_is_the_mask_under_xla_and_float16(self):
        layer = Dropout(0.1, seed=2, dtype="mixed_float16")
        inputs = tf.constant(normal(4, 33, 8), tf.float16)

        @tf.function(jit_compile=True)
        def outputs_and_gradient(inputs):
            with tf.GradientTape() as tape:
                tape.watch(inputs)
                outputs = layer(inputs, training=True)
                total = tf.reduce_sum(outputs)
            return outputs, tape.gradient(total, inputs)

        outputs, gradient = outputs_and_gradient(inputs)
        assert outputs.dtype == tf.float16
        kept = gradient.numpy() != 0
        assert 0.8 < kept.mean() < 0.97
        np.testing.assert_allclose(
            outputs.numpy(), np.where(kept, inputs.numpy() * gradient.numpy(), 0), rtol=1e-3
        )


class TestConvBlock:
    def setup_method(self):
        self.init_kwargs = {"hidden_dim": HIDDEN, "kernel_size": 3, "dropout": 0.1}
        self.input_data = (hidden_states(), TOKEN_MASK)

    @pytest.mark.parametrize("dilation_rate", [1, 2])
    def test_layer(self, dilation_rate):
        outputs = run_layer_test(
            ConvBlock,
            {**self.init_kwargs, "dilation_rate": dilation_rate},
            self.input_data,
            call_kwargs=EVAL,
            expected_output_shape=(BATCH, TOKENS, HIDDEN),
            expected_num_trainable_weights=4,  # conv kernel and bias, norm scale and offset
        )
        assert not np.any(outputs.numpy()[1, 3:])  # padded steps stay zero


class TestTransformerBlock:
    def setup_method(self):
        self.init_kwargs = {"hidden_dim": HIDDEN, "num_heads": 2, "kernel_size": 3, "dropout": 0.1}
        self.input_data = (hidden_states(), TOKEN_MASK)

    def test_layer(self):
        outputs = run_layer_test(
            TransformerBlock,
            self.init_kwargs,
            self.input_data,
            call_kwargs=EVAL,
            expected_output_shape=(BATCH, TOKENS, HIDDEN),
            # query, key, value and output kernels and biases; two norms; two convolutions
            expected_num_trainable_weights=8 + 4 + 4,
        )
        assert not np.any(outputs.numpy()[1, 3:])


class TestLengthRegulator:
    def setup_method(self):
        self.init_kwargs = {"latent_dim": LATENT, "num_harmonics": 2}
        durations = np.array([[2, 1, 1, 2, 1], [2, 2, 1, 0, 0]], np.int32)  # 7 and 5 frames
        hard_alignment = alignment_from_durations(durations, FRAMES).numpy()
        latent = normal(BATCH, TOKENS, LATENT) * TOKEN_MASK[..., None]
        self.input_data = (latent, hard_alignment)

    def test_layer(self):
        outputs = run_layer_test(
            LengthRegulator,
            self.init_kwargs,
            self.input_data,
            expected_output_shape=(BATCH, FRAMES, LATENT),
            expected_num_trainable_weights=2,  # the position projection's kernel and bias
        )
        assert not np.any(outputs.numpy()[1, 5:])  # frames past the durations stay zero


class TestSpeakerEmbedding:
    def test_layer(self):
        outputs = run_layer_test(
            SpeakerEmbedding,
            {"num_speakers": 3, "speaker_dim": 4, "hidden_dim": HIDDEN},
            np.array([2, 0], np.int32),
            expected_output_shape=(BATCH, HIDDEN),
            expected_num_trainable_weights=3,  # the table, the projection's kernel and bias
        )
        assert not np.allclose(outputs.numpy()[0], outputs.numpy()[1])  # one vector per speaker


class TestTextEncoder:
    def setup_method(self):
        self.init_kwargs = {
            "vocab_size": VOCAB,
            "hidden_dim": HIDDEN,
            "latent_dim": LATENT,
            "num_layers": 1,
            "num_heads": 2,
            "kernel_size": 3,
            "dropout": 0.1,
        }
        tokens = np.random.default_rng(1).integers(2, VOCAB, (BATCH, TOKENS)).astype(np.int32)
        self.input_data = (tokens * TOKEN_MASK.astype(np.int32), TOKEN_MASK)

    def test_layer(self):
        run_layer_test(
            TextEncoder,
            self.init_kwargs,
            self.input_data,
            call_kwargs=EVAL,
            expected_output_shape=((BATCH, TOKENS, HIDDEN), (BATCH, TOKENS, LATENT)),
            # embedding; two conv blocks of 4; one Transformer block of 16; latent kernel and bias
            expected_num_trainable_weights=1 + 2 * 4 + 16 + 2,
        )


class TestAudioEncoder:
    def setup_method(self):
        self.init_kwargs = {
            "hidden_dim": HIDDEN,
            "latent_dim": LATENT,
            "num_layers": 2,
            "kernel_size": 3,
            "dropout": 0.1,
        }
        self.input_data = (normal(BATCH, FRAMES, MELS) * FRAME_MASK[..., None], FRAME_MASK)

    def test_layer(self):
        run_layer_test(
            AudioEncoder,
            self.init_kwargs,
            self.input_data,
            call_kwargs=EVAL,
            expected_output_shape=(BATCH, FRAMES, LATENT),
            expected_num_trainable_weights=2 + 2 * 4 + 2,  # projection, conv blocks, latent
        )


class TestDecoder:
    def setup_method(self):
        # Three blocks: dilation rates 1, 2 and 4.
        self.init_kwargs = {
            "hidden_dim": HIDDEN,
            "num_mels": MELS,
            "num_layers": 3,
            "kernel_size": 3,
            "dropout": 0.1,
        }
        self.latent = normal(BATCH, FRAMES, LATENT) * FRAME_MASK[..., None]

    @pytest.mark.parametrize("with_condition", [False, True], ids=["one_speaker", "condition"])
    # Reduction 2 on 7 frames: the last position holds one real frame and one of padding.
    @pytest.mark.parametrize("reduction", [1, 2], ids=["r1", "r2"])
    def test_layer(self, with_condition, reduction):
        input_data = (self.latent, FRAME_MASK)
        if with_condition:  # a speaker vector, as the model's speaker embedding gives
            input_data += (normal(BATCH, HIDDEN, seed=2),)
        run_layer_test(
            Decoder,
            {**self.init_kwargs, "reduction": reduction},
            input_data,
            call_kwargs=EVAL,
            expected_output_shape=(BATCH, FRAMES, MELS),
            expected_num_trainable_weights=2 + 3 * 4 + 2,  # projection, conv blocks, to_mel
        )


class TestAligner:
    def setup_method(self):
        self.init_kwargs = {
            "hidden_dim": HIDDEN,
            "aligner_dim": 4,
            "temperature": 0.01,
            "prior_scaling": 0.5,
        }
        self.input_data = (
            hidden_states(),
            normal(BATCH, FRAMES, MELS, seed=3) * FRAME_MASK[..., None],
            NUM_TOKENS,
            NUM_FRAMES,
        )

    def test_layer(self):
        outputs = run_layer_test(
            Aligner,
            self.init_kwargs,
            self.input_data,
            expected_output_shape=(BATCH, FRAMES, TOKENS),
            expected_num_trainable_weights=2 * 2 + 3 * 2,  # two text and three mel convolutions
            # Distances and the log-softmax stay in float32 under any policy.
            mixed_precision_output_dtype="float32",
        )
        # log p(token | frame): each real frame's probabilities sum to one.
        np.testing.assert_allclose(np.exp(outputs.numpy()).sum(-1), FRAME_MASK, atol=1e-5)


class TestDurationPredictor:
    def setup_method(self):
        self.init_kwargs = {"hidden_dim": HIDDEN, "num_layers": 2, "kernel_size": 3, "dropout": 0.1}
        self.input_data = (hidden_states(), TOKEN_MASK)

    def test_layer(self):
        outputs = run_layer_test(
            DurationPredictor,
            self.init_kwargs,
            self.input_data,
            call_kwargs=EVAL,
            expected_output_shape=(BATCH, TOKENS),
            expected_num_trainable_weights=2 * 4 + 2,  # two conv blocks, the output projection
            # The log-duration output layer is float32 under any policy.
            mixed_precision_output_dtype="float32",
        )
        assert not np.any(outputs.numpy()[1, 3:])


class TestMelSpectrogram:
    def setup_method(self):
        self.init_kwargs = {**AUDIO, "power": 2.0, "log_floor": 1e-4, "center": True}
        self.input_data = 0.1 * normal(BATCH, 160)

    def test_layer(self):
        run_layer_test(
            MelSpectrogram,
            self.init_kwargs,
            self.input_data,
            expected_output_shape=(BATCH, 1 + 160 // 16, 8),
            expected_num_trainable_weights=0,
            # Features are always computed in float32 (no float16 FFT).
            mixed_precision_output_dtype="float32",
        )


class TestGriffinLim:
    def setup_method(self):
        self.init_kwargs = {
            **AUDIO,
            "power": 1.0,
            "num_iterations": 2,
            "momentum": 0.5,
            "magnitude_power": 1.2,
        }
        log_mel = normal(BATCH, 11, 8) - 3.0
        self.input_data = (log_mel, np.array([11, 8], np.int32))

    def test_layer(self):
        outputs = run_layer_test(
            GriffinLim,
            self.init_kwargs,
            self.input_data,
            expected_output_shape=(BATCH, (11 - 1) * 16),
            expected_num_trainable_weights=0,
            # Waveforms are always float32 (no float16 FFT).
            mixed_precision_output_dtype="float32",
        )
        assert not np.any(outputs.numpy()[1, (8 - 1) * 16 :])  # past the second item's frames


class TestConvNeXtBlock:
    def test_layer(self):
        mask = np.array([[1.0] * 6, [1.0] * 3 + [0.0] * 3], np.float32)
        outputs = run_layer_test(
            ConvNeXtBlock,
            {"dim": HIDDEN, "intermediate_dim": 12, "kernel_size": 3, "layer_scale": 0.5},
            (normal(BATCH, 6, HIDDEN), mask),
            expected_output_shape=(BATCH, 6, HIDDEN),
            # depthwise kernel and bias, norm scale and offset, two dense layers, the scale
            expected_num_trainable_weights=2 + 2 + 4 + 1,
        )
        assert not np.any(outputs.numpy()[1, 3:])  # masked frames stay zero


class TestVocos:
    def setup_method(self):
        self.init_kwargs = {
            key: AUDIO[key]
            for key in ("sample_rate", "fft_length", "frame_length", "frame_step", "num_mels")
        }
        self.init_kwargs.update(
            dim=8, intermediate_dim=12, num_blocks=2, kernel_size=3, min_log_mel=-11.0
        )
        log_mel = normal(BATCH, 11, 8) - 3.0
        self.input_data = (log_mel, np.array([11, 8], np.int32))

    def test_layer(self):
        outputs = run_layer_test(
            Vocos,
            self.init_kwargs,
            self.input_data,
            expected_output_shape=(BATCH, (11 - 1) * 16),
            # embed conv and norm (4), 9 per block, final norm (2), head (2)
            expected_num_trainable_weights=4 + 2 * 9 + 2 + 2,
            # The inverse STFT runs in float32 whatever the trunk computes in.
            mixed_precision_output_dtype="float32",
        )
        assert not np.any(outputs.numpy()[1, (8 - 1) * 16 :])  # past the second item's frames


class TestDiscriminators:
    @pytest.mark.parametrize(
        "layer_cls, init_kwargs, num_weights",
        [
            (PeriodDiscriminator, {"period": 3, "channels": [4, 8]}, 2 * 4),
            (ResolutionDiscriminator, {"fft_length": 64, "channels": 4}, 2 * 6),
            (MultiPeriodDiscriminator, {"periods": [2, 3], "channels": [4]}, 2 * 2 * 3),
            (MultiResolutionDiscriminator, {"fft_lengths": [32, 64], "channels": 4}, 2 * 2 * 6),
        ],
    )
    def test_layer(self, layer_cls, init_kwargs, num_weights):
        waveform = normal(BATCH, 200) * 0.1
        run_layer_test(
            layer_cls,
            init_kwargs,
            waveform,
            expected_num_trainable_weights=num_weights,
            mixed_precision_output_dtype="float32",
        )


def model_batch(num_mels=MELS, seed=3):
    """A padded training batch, as `make_dataset` gives it."""
    tokens = np.random.default_rng(seed).integers(2, VOCAB, (BATCH, TOKENS)).astype(np.int32)
    return {
        "tokens": tokens * TOKEN_MASK.astype(np.int32),
        "num_tokens": NUM_TOKENS,
        "mel": (normal(BATCH, FRAMES, num_mels, seed=seed) - 4.0) * FRAME_MASK[..., None],
        "num_frames": NUM_FRAMES,
        "speaker_id": np.array([0, 1], np.int32),
        "token_mask": TOKEN_MASK,
        "frame_mask": FRAME_MASK,
    }


class TestCrossModalAutoencoder:
    def setup_method(self):
        self.init_kwargs = {
            "vocab_size": VOCAB,
            "num_mels": MELS,
            "mel_mean": [-4.0] * MELS,
            "mel_std": [1.0] * MELS,
            "num_speakers": 2,
            "latent_dim": LATENT,
            "hidden_dim": HIDDEN,
            "num_heads": 2,
            "text_encoder_layers": 1,
            "audio_encoder_layers": 1,
            "decoder_layers": 2,
            "kernel_size": 3,
            "dropout": 0.1,
            "speaker_dim": 4,
            "aligner_dim": 4,
        }

    def test_layer(self):
        from mmae.models import CrossModalAutoencoder

        run_layer_test(
            CrossModalAutoencoder,
            self.init_kwargs,
            model_batch(),
            call_kwargs=EVAL,
            expected_output_shape=(BATCH, FRAMES, MELS),
            # The log-mel comes back in the data's float32 scale.
            mixed_precision_output_dtype="float32",
            # `call` is the audio path alone; the text path has its own tests.
            check_gradients=False,
        )


class TestSeedBaseline:
    def test_layer(self):
        from mmae.models import SeedBaseline

        run_layer_test(
            SeedBaseline,
            {
                "vocab_size": VOCAB,
                "num_mels": MELS,
                "mel_mean": [0.0] * MELS,
                "mel_std": [1.0] * MELS,
                "frames_per_token": 2.0,
            },
            model_batch(),
            call_kwargs=EVAL,
            expected_output_shape=(BATCH, FRAMES, MELS),
        )
