"""Typed configuration: dataclasses that load from and save to YAML or JSON.

Every prepared dataset and every run directory stores the exact `Config` it
was made with (`config.yaml`), so a model can always be rebuilt and a run can
refuse data whose features it was not trained on.

Example:

>>> config = Config.load("flite16k", overrides=["train.batch_size=4"])
>>> config.audio.sample_rate
16000
"""

import dataclasses
import json
import os
import typing

import yaml

from mmae.text.rules import FRONTEND_VERSION
from mmae.text.symbols import get_symbols

PRESET_DIR = os.path.join(os.path.dirname(__file__), "configs")


@dataclasses.dataclass
class AudioConfig:
    """How waveforms are loaded and turned into log-mel frames.

    Argument names follow `tf.signal` (`frame_length`, `frame_step`,
    `fft_length`, `lower_edge_hertz`, `upper_edge_hertz`).
    """

    sample_rate: int = 22050
    fft_length: int = 1024
    frame_length: int = 1024
    frame_step: int = 256
    num_mels: int = 80
    lower_edge_hertz: float = 0.0
    upper_edge_hertz: float = 8000.0
    # "slaney" matches librosa's default mel scale and area normalization;
    # "htk" is tf.signal.linear_to_mel_weight_matrix as is.
    mel_scale: str = "slaney"
    # 1.0: magnitude mel spectrogram; 2.0: power.
    power: float = 1.0
    # log(max(mel, log_floor)) per element, so no example's floor depends on
    # another example in the batch.
    log_floor: float = 1e-5
    # Pad by fft_length // 2 on both sides, like librosa's center=True.
    center: bool = True
    # Loading: resample other rates (else a mismatch is a bad clip).
    resample: bool = True
    # Upsampling cannot restore missing bandwidth, so a lower source rate is a
    # bad clip unless this is set.
    allow_upsampling: bool = False
    trim_silence: bool = True
    trim_top_db: float = 40.0
    peak_normalize: bool = True
    peak_level: float = 0.95
    # Synthesized audio louder than this is scaled down to it (Synthesizer,
    # SavedModel, evaluation, TensorBoard), so written WAVs never clip.
    output_peak_level: float = 0.95

    def __post_init__(self):
        if self.mel_scale not in ("slaney", "htk"):
            raise ValueError(f"audio.mel_scale must be 'slaney' or 'htk', got {self.mel_scale!r}.")
        if self.frame_length > self.fft_length:
            raise ValueError(
                f"audio.frame_length ({self.frame_length}) must not exceed "
                f"audio.fft_length ({self.fft_length})."
            )
        if not 0 <= self.lower_edge_hertz < self.upper_edge_hertz <= self.sample_rate / 2:
            raise ValueError(
                "Need 0 <= audio.lower_edge_hertz < audio.upper_edge_hertz <= sample_rate / 2, got "
                f"{self.lower_edge_hertz}, {self.upper_edge_hertz}, sample_rate {self.sample_rate}."
            )

    @property
    def frames_per_second(self):
        return self.sample_rate / self.frame_step


@dataclasses.dataclass
class TextConfig:
    """How text becomes token ids."""

    # "characters" or "phonemes" (from the bundled lexicon and G2P of
    # mmae.text.graph_frontend; espeak-ng only made them).
    tokenizer: str = "characters"
    # A frozen, versioned symbol set from mmae.text.symbols.
    symbol_set: str = "chars-v1"
    # The symbols themselves, filled in from `symbol_set` and saved with every
    # dataset and run so that a later change of the set is caught.
    symbols: str = ""
    language: str = "en-us"
    normalize: bool = True
    # The text frontend's version (mmae.text.rules.FRONTEND_VERSION) that
    # made the tokens. A stored config with symbols but no version was
    # written by version 1.
    frontend: int = FRONTEND_VERSION

    def __post_init__(self):
        if self.tokenizer not in ("characters", "phonemes"):
            raise ValueError(
                f"text.tokenizer must be 'characters' or 'phonemes', got {self.tokenizer!r}."
            )
        if not self.symbols:
            self.symbols = get_symbols(self.symbol_set)

    @property
    def vocab_size(self):
        return len(self.symbols)


@dataclasses.dataclass
class DataConfig:
    """Which clips `mmae prepare` keeps and how it shards them."""

    min_duration: float = 0.5
    max_duration: float = 12.0
    max_tokens: int = 256
    # Held-out clips are chosen by a hash of the clip id, so the split does
    # not change when rows are added, removed or reordered.
    validation_fraction: float = 0.05
    clips_per_shard: int = 128
    # Also store the processed PCM (int16) next to the mel frames.
    store_audio: bool = False


@dataclasses.dataclass
class ModelConfig:
    """The cross-modal autoencoder's sizes (see mmae.models)."""

    # "mmae": the cross-modal autoencoder; "seed_baseline": the seed
    # document's dense Encoder(128, 64) / Decoder(64, 128, out).
    architecture: str = "mmae"
    latent_dim: int = 128
    hidden_dim: int = 192
    num_heads: int = 2
    text_encoder_layers: int = 4
    audio_encoder_layers: int = 3
    decoder_layers: int = 6
    kernel_size: int = 5
    dropout: float = 0.1
    # Speaker embedding size; used only when the data has several speakers.
    speaker_dim: int = 64
    # The aligner's own small text and mel encoders.
    aligner_dim: int = 80
    # Beta-binomial prior strength (1.0 as in Badlani et al. 2021).
    prior_scaling: float = 1.0
    duration_predictor_layers: int = 2
    duration_predictor_kernel_size: int = 3
    # Convolution blocks before the text encoder's Transformer blocks.
    text_encoder_convs: int = 2
    # Width of the Transformer blocks' convolutional feed-forward layer, in hidden_dims.
    ffn_multiplier: int = 2
    # The decoder's blocks cycle through these dilation rates.
    decoder_dilation_rates: list[int] = dataclasses.field(default_factory=lambda: [1, 2, 4])
    # Sharpness of the aligner's distance softmax (Badlani et al. 2021).
    aligner_temperature: float = 0.0005
    # Width of the first convolution of the aligner's text and mel encoders.
    aligner_kernel_size: int = 3
    # Harmonics of a frame's position within its token (LengthRegulator).
    position_harmonics: int = 4
    # Frames the decoder reads and writes per position (Tacotron's reduction
    # factor): its blocks run at 1/r of the frame rate, so r=2 halves the
    # decoder's multiply-adds (about 3/4 of a joint step's) and doubles how
    # far its convolutions see. Measured on this CPU, a step of the
    # flite16k recipe got 1.2x as fast (bench/README.md, convergence_bench).
    decoder_reduction: int = 1

    def __post_init__(self):
        if self.decoder_reduction < 1:
            raise ValueError(
                f"model.decoder_reduction must be 1 or more, got {self.decoder_reduction}."
            )
        if self.architecture not in ("mmae", "seed_baseline"):
            raise ValueError(
                f"model.architecture must be 'mmae' or 'seed_baseline', got {self.architecture!r}."
            )


@dataclasses.dataclass
class LossConfig:
    """How the cross-modal autoencoder's losses add up; the model takes this object as it is."""

    mel_text_weight: float = 1.0
    mel_audio_weight: float = 1.0
    consistency_weight: float = 0.1
    forward_sum_weight: float = 1.0
    binarization_weight: float = 1.0
    # The binarization loss is ramped in linearly from start to start + ramp
    # (steps counted from the start of the training stage).
    binarization_start: int = 1000
    binarization_ramp: int = 1000
    duration_weight: float = 0.1
    # Share of each training batch's clips that the joint objective also
    # autoencodes (audio encoder and decoder, and the consistency loss); the
    # text path always takes the whole batch. The audio path costs more than
    # the text path's frame-rate work, so a share below 1 buys steps.
    audio_fraction: float = 1.0

    def __post_init__(self):
        if not 0.0 < self.audio_fraction <= 1.0:
            raise ValueError(f"loss.audio_fraction must be in (0, 1], got {self.audio_fraction}.")


@dataclasses.dataclass
class VocoderConfig:
    """A neural vocoder and its training losses (`mmae train-vocoder`).

    Each loss and discriminator can be switched off: a weight of 0, an empty
    list of periods or FFT sizes, or `adversarial_start >= train.steps`.
    """

    architecture: str = "vocos"
    # The Vocos generator: ConvNeXt blocks at frame rate, then an inverse STFT.
    dim: int = 192
    intermediate_dim: int = 576
    num_blocks: int = 8
    kernel_size: int = 7
    # Training clips: random windows of this many mel frames (and the samples
    # between their first and last centres); validation windows are longer.
    segment_frames: int = 32
    validation_segment_frames: int = 128
    # Reconstruction losses: L1 between log-mels of the output and of the
    # recording, and the multi-resolution STFT loss (spectral convergence plus
    # log-magnitude L1) at each FFT size in `stft_loss_fft_lengths`.
    mel_weight: float = 45.0
    stft_weight: float = 1.0
    stft_loss_fft_lengths: list[int] = dataclasses.field(default_factory=lambda: [512, 1024, 2048])
    # Steps with the reconstruction losses alone before the discriminators
    # join (least-squares GAN with feature matching).
    adversarial_start: int = 6000
    adversarial_weight: float = 1.0
    feature_matching_weight: float = 2.0
    # HiFi-GAN's multi-period discriminator ([] switches it off) ...
    periods: list[int] = dataclasses.field(default_factory=lambda: [2, 3, 5, 7, 11])
    period_channels: list[int] = dataclasses.field(default_factory=lambda: [16, 32, 64, 128])
    # ... and Vocos's multi-resolution spectrogram discriminator.
    resolution_fft_lengths: list[int] = dataclasses.field(default_factory=lambda: [512, 1024, 2048])
    resolution_channels: int = 16

    def __post_init__(self):
        if self.architecture != "vocos":
            raise ValueError(f"vocoder.architecture must be 'vocos', got {self.architecture!r}.")
        if self.segment_frames < 2 or self.validation_segment_frames < 2:
            raise ValueError("vocoder.segment_frames and validation_segment_frames must be >= 2.")


@dataclasses.dataclass
class G2PConfig:
    """The learned grapheme-to-phoneme model (`mmae train-g2p`, `mmae.text.g2p`).

    Transformer blocks read the letters, each letter's state is repeated
    `upsample` times, more blocks read that, and a CTC head emits phoneme symbols, so a word is transcribed
    in one pass (no decoding loop) inside any graph.
    """

    dim: int = 192
    # Blocks at the letter rate, then after the upsampling.
    num_layers: int = 4
    upsampled_layers: int = 1
    num_heads: int = 4
    kernel_size: int = 3
    ffn_multiplier: int = 2
    upsample: int = 3
    dropout: float = 0.1

    def __post_init__(self):
        if self.upsample < 2:
            raise ValueError(
                "g2p.upsample must be >= 2: CTC needs room for a blank between repeats."
            )


@dataclasses.dataclass
class TrainConfig:
    """How batches are formed and how the model is optimized."""

    batch_size: int = 16
    # Frame-length buckets: a batch is padded to its bucket's boundary, so a
    # jit-compiled step sees at most len(bucket_boundaries) shapes. Clips
    # longer than the last boundary are skipped by the input pipeline.
    bucket_boundaries: list[int] = dataclasses.field(
        default_factory=lambda: [200, 300, 400, 550, 700, 870]
    )
    # Scale each bucket's batch size so every batch holds about the same
    # number of frames (batch_size is the size of the longest bucket).
    bucket_by_frames: bool = True
    shuffle_buffer: int = 512
    cache: bool = False
    seed: int = 0

    # "joint", "separate" (audio autoencoder first, then the text side into
    # its frozen latent space) or "self_supervised" (masked-frame
    # pretraining of the audio autoencoder, then joint fine-tuning).
    regime: str = "joint"
    steps: int = 20000
    # Steps of the first stage of the "separate" and "self_supervised" regimes.
    pretrain_steps: int = 2000
    # Fraction of frames masked in self-supervised pretraining.
    mask_ratio: float = 0.3
    learning_rate: float = 1e-3
    warmup_steps: int = 500
    weight_decay: float = 1e-6
    # Adam's moment decay rates (GAN vocoders train with a shorter memory, 0.8).
    beta_1: float = 0.9
    beta_2: float = 0.999
    clip_norm: float = 1.0
    # XLA for the gradient computation: true, false, or "auto" (on with a GPU
    # or TPU; off on CPU, where bench/train_bench.py measured XLA 0.8x the
    # speed of plain graph mode with twice the compile time).
    jit_compile: bool | str = "auto"
    # "none", "mixed_float16" (GPU, with loss scaling), "mixed_bfloat16" (TPU),
    # or "auto" (bfloat16 on TPU, float16 on GPU, none on CPU).
    mixed_precision: str = "none"
    # Observability and safety.
    log_every: int = 50
    eval_every: int = 500
    # Steps between the TensorBoard examples of one validation clip (its
    # spectrograms, and audio through a vocoder), and at each call's last
    # step. They cost about as much as a validation pass (bench/README.md).
    display_every: int = 500
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    # Consecutive non-finite steps that stop training.
    max_nonfinite_steps: int = 20
    # Op determinism (slower); with a fixed seed, reruns give identical losses.
    deterministic: bool = False

    def __post_init__(self):
        if self.regime not in ("joint", "separate", "self_supervised"):
            raise ValueError(
                "train.regime must be 'joint', 'separate' or 'self_supervised', "
                f"got {self.regime!r}."
            )
        if self.jit_compile not in (True, False, "auto"):
            raise ValueError(
                f"train.jit_compile must be true, false or auto, got {self.jit_compile!r}."
            )
        if self.mixed_precision not in ("none", "mixed_float16", "mixed_bfloat16", "auto"):
            raise ValueError(
                "train.mixed_precision must be none, mixed_float16, mixed_bfloat16 or auto, "
                f"got {self.mixed_precision!r}."
            )


@dataclasses.dataclass
class Config:
    audio: AudioConfig = dataclasses.field(default_factory=AudioConfig)
    text: TextConfig = dataclasses.field(default_factory=TextConfig)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    loss: LossConfig = dataclasses.field(default_factory=LossConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    vocoder: VocoderConfig = dataclasses.field(default_factory=VocoderConfig)
    g2p: G2PConfig = dataclasses.field(default_factory=G2PConfig)

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values):
        return _from_dict(cls, _moved_keys(values), prefix="")

    @classmethod
    def load(cls, source=None, overrides=()):
        """Loads a preset name, a YAML/JSON file or a dict, then applies overrides.

        Args:
            source: None (defaults), a preset name from `mmae/configs/`, a path
                to a `.yaml`/`.yml`/`.json` file (local or `gs://`), or a dict.
            overrides: strings like `"audio.sample_rate=16000"`.
        """
        if source is None:
            values = {}
        elif isinstance(source, dict):
            values = source
        else:
            values = _read_mapping(_resolve_source(str(source)))
        config = cls.from_dict(values)
        return config.with_overrides(overrides) if overrides else config

    def save(self, path):
        """Writes YAML (or JSON when the path ends in `.json`)."""
        text = (
            json.dumps(self.to_dict(), indent=2, ensure_ascii=False)
            if path.endswith(".json")
            else yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)
        )
        _write_text(path, text)

    def with_overrides(self, overrides):
        values = self.to_dict()
        for item in overrides:
            key, sep, raw = item.partition("=")
            if not sep:
                raise ValueError(f"Override {item!r} is not of the form section.key=value.")
            section, _, field = _MOVED.get(key.strip(), key.strip()).partition(".")
            if section not in values or not field or field not in values[section]:
                raise ValueError(f"Unknown config key {key.strip()!r} in override {item!r}.")
            values[section][field] = yaml.safe_load(raw) if raw.strip() else ""
            # A changed symbol set must re-derive its symbols.
            if section == "text" and field == "symbol_set":
                values["text"]["symbols"] = ""
        return Config.from_dict(values)


# Settings that change what a feature frame or a token id means. A model
# trained on one value cannot read data made with another.
FEATURE_KEYS = {
    "audio": (
        "sample_rate",
        "fft_length",
        "frame_length",
        "frame_step",
        "num_mels",
        "lower_edge_hertz",
        "upper_edge_hertz",
        "mel_scale",
        "power",
        "log_floor",
        "center",
    ),
    "text": ("tokenizer", "symbols", "language", "frontend"),
}


class IncompatibleConfigError(ValueError):
    pass


def check_compatible(expected, found, what="data", sections=("audio", "text")):
    """Raises IncompatibleConfigError if `found` features differ from `expected`.

    Args:
        expected: the Config a model or run was made with.
        found: the Config stored with the data (or checkpoint) being loaded.
        what: a name for `found` in the message, e.g. a path.
        sections: the feature sections that matter (a vocoder reads no text:
            ("audio",)).
    """
    differences = []
    for section in sections:
        for key in FEATURE_KEYS[section]:
            want = getattr(getattr(expected, section), key)
            got = getattr(getattr(found, section), key)
            if want != got:
                differences.append(f"{section}.{key}: expected {want!r}, {what} has {got!r}")
    if differences:
        versions = {expected.text.frontend, found.text.frontend}
        advice = "Prepare the data again with this config, or train with the data's config."
        if "text" in sections and len(versions) > 1:
            # Only this version's frontend exists to make tokens with.
            advice = (
                f"Text frontend versions {sorted(versions)} made different tokens from the "
                f"same text; this mmae runs version {FRONTEND_VERSION}. Prepare the data again "
                "(mmae prepare) and train a new run on it."
            )
        raise IncompatibleConfigError(
            f"{what} was made with different feature settings:\n  "
            + "\n  ".join(differences)
            + "\n"
            + advice
        )


def with_current_frontend(config):
    """`config` with `text.frontend` set to this mmae's version: what data made now is."""
    text = dataclasses.replace(config.text, frontend=FRONTEND_VERSION)
    return dataclasses.replace(config, text=text)


def check_frontend(config, what):
    """Refuses `config` (of data or a run) when another text frontend version made its tokens.

    Raises:
        IncompatibleConfigError: the message names both versions and what to do.
    """
    if config.text.frontend != FRONTEND_VERSION:
        raise IncompatibleConfigError(
            f"{what} was made by text frontend version {config.text.frontend}; this mmae's "
            f"frontend is version {FRONTEND_VERSION} and makes different tokens from the same "
            "text (mmae/text/rules.py lists the versions). Prepare the data again "
            "(mmae prepare) and train a new run on it."
        )


def frontend_mismatch(text_config):
    """A warning's text when a run's tokens were made by another text frontend version, else None.

    Such a run still speaks: it reads the tokens of this version, which equal
    its training tokens for most text, but differ for some words.
    """
    if text_config.frontend == FRONTEND_VERSION:
        return None
    return (
        f"This model was trained on tokens of text frontend version {text_config.frontend}; "
        f"this mmae's frontend is version {FRONTEND_VERSION} and reads some words differently "
        "(mmae/text/rules.py lists the versions). Train on data prepared with this version "
        "for the tokens the model learned."
    )


def setting_differences(expected, found, section, keys=None):
    """`["SECTION.KEY: A vs B", ...]` for the `keys` (default: all) two config sections disagree on."""
    if keys is None:
        keys = [field.name for field in dataclasses.fields(expected)]
    return [
        f"{section}.{key}: {getattr(expected, key)!r} vs {getattr(found, key)!r}"
        for key in keys
        if getattr(expected, key) != getattr(found, key)
    ]


def audio_differences(expected, found):
    """`["audio.KEY: A vs B", ...]` for the feature settings two `AudioConfig`s disagree on."""
    return setting_differences(expected, found, "audio", FEATURE_KEYS["audio"])


# Settings that moved to another section: configs written before the move
# (runs, prepared data, the bundled model) and `--set` still use the old keys.
_MOVED = {f"train.{f.name}": f"loss.{f.name}" for f in dataclasses.fields(LossConfig)}


def _moved_keys(values):
    """`values` with every setting of `_MOVED` under its new key."""
    if not isinstance(values, dict) or not isinstance(values.get("train"), dict):
        return values
    values = {**values, "train": dict(values["train"]), "loss": dict(values.get("loss") or {})}
    for old, new in _MOVED.items():
        old_field, new_field = old.split(".")[1], new.split(".")[1]
        if old_field in values["train"]:
            values["loss"].setdefault(new_field, values["train"].pop(old_field))
    return values


def _from_dict(cls, values, prefix):
    if not isinstance(values, dict):
        raise ValueError(f"Config section {prefix.rstrip('.') or '(top)'} must be a mapping.")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ValueError(f"Unknown config keys: {', '.join(prefix + k for k in unknown)}.")
    if cls is TextConfig and values.get("symbols") and "frontend" not in values:
        # Written before the frontend was versioned.
        values = {**values, "frontend": 1}
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in values.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            kwargs[name] = _from_dict(hint, value or {}, prefix + name + ".")
        else:
            kwargs[name] = _coerce(value, hint, prefix + name)
    return cls(**kwargs)


def _coerce(value, hint, name):
    origin = typing.get_origin(hint)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{name} must be a list, got {value!r}.")
        (item_type,) = typing.get_args(hint)[:1]
        return [_coerce(v, item_type, name) for v in value]
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ValueError(f"{name} must be true or false, got {value!r}.")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ValueError(f"{name} must be an integer, got {value!r}.")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        # YAML 1.1 reads "2e-3" (no dot) as a string.
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ValueError(f"{name} must be a number, got {value!r}.")
    if hint is str:
        if isinstance(value, str):
            return value
        raise ValueError(f"{name} must be a string, got {value!r}.")
    return value


def _resolve_source(source):
    if os.path.splitext(source)[1] in (".yaml", ".yml", ".json") or "/" in source:
        return source
    preset = os.path.join(PRESET_DIR, source + ".yaml")
    if os.path.exists(preset):
        return preset
    presets = sorted(f[:-5] for f in os.listdir(PRESET_DIR) if f.endswith(".yaml"))
    raise ValueError(f"No config file or preset named {source!r}; presets: {', '.join(presets)}.")


def _read_mapping(path):
    text = _read_text(path)
    values = json.loads(text) if path.endswith(".json") else yaml.safe_load(text)
    return values or {}


def _read_text(path):
    if "://" in path:
        import tensorflow as tf

        with tf.io.gfile.GFile(path) as f:
            return f.read()
    if not os.path.exists(path):
        raise FileNotFoundError(f"Config file not found: {path}")
    with open(path, encoding="utf-8") as f:
        return f.read()


def _write_text(path, text):
    if "://" in path:
        import tensorflow as tf

        with tf.io.gfile.GFile(path, "w") as f:
            f.write(text)
        return
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
