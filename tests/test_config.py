import pytest

from mmae.config import (
    Config,
    IncompatibleConfigError,
    check_compatible,
    check_frontend,
    frontend_mismatch,
    with_current_frontend,
)
from mmae.text.rules import FRONTEND_VERSION
from mmae.text.symbols import SYMBOL_SETS


def test_defaults_fit_ljspeech():
    audio = Config().audio
    assert (audio.sample_rate, audio.fft_length, audio.frame_step, audio.frame_length) == (
        22050,
        1024,
        256,
        1024,
    )
    assert (audio.num_mels, audio.lower_edge_hertz, audio.upper_edge_hertz) == (80, 0.0, 8000.0)


@pytest.mark.parametrize("name", ["config.yaml", "config.json"])
def test_save_load_round_trip(tmp_path, name):
    config = Config.load("flite16k", overrides=["train.batch_size=7"])
    path = str(tmp_path / name)
    config.save(path)
    assert Config.load(path) == config


def test_overrides_are_typed():
    config = Config.load(
        None,
        overrides=[
            "audio.sample_rate=16000",
            "audio.upper_edge_hertz=7600",
            "audio.trim_silence=false",
            "train.bucket_boundaries=[100, 250]",
            # YAML 1.1 reads an exponent without a dot as a string.
            "train.learning_rate=2e-3",
        ],
    )
    assert config.audio.sample_rate == 16000
    assert config.audio.upper_edge_hertz == 7600.0 and isinstance(
        config.audio.upper_edge_hertz, float
    )
    assert config.audio.trim_silence is False
    assert config.train.bucket_boundaries == [100, 250]
    assert config.train.learning_rate == 0.002


def test_symbol_set_override_rederives_symbols():
    config = Config.load(None, overrides=["text.symbol_set=phonemes-v1"])
    assert config.text.symbols == SYMBOL_SETS["phonemes-v1"]


@pytest.mark.parametrize(
    "override, message",
    [
        ("audio.sample_rat=16000", "Unknown config key 'audio.sample_rat'"),
        ("nosuch.key=1", "Unknown config key 'nosuch.key'"),
        ("audio.sample_rate", "not of the form section.key=value"),
        ("audio.sample_rate=fast", "audio.sample_rate must be an integer, got 'fast'"),
        ("audio.center=3", "audio.center must be true or false"),
        ("train.learning_rate=fast", "train.learning_rate must be a number, got 'fast'"),
        ("audio.mel_scale=bark", "audio.mel_scale must be 'slaney' or 'htk'"),
        ("text.symbol_set=klingon-v1", "Unknown symbol set 'klingon-v1'"),
        ("model.decoder_reduction=0", "model.decoder_reduction must be 1 or more, got 0"),
    ],
)
def test_bad_overrides_say_what_is_wrong(override, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Config.load(None, overrides=[override])


def test_unknown_key_in_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("audio:\n  sample_rate: 16000\n  hop: 200\n")
    with pytest.raises(ValueError, match="Unknown config keys: audio.hop"):
        Config.load(str(path))


def test_unknown_preset_lists_presets():
    with pytest.raises(ValueError, match="presets: .*flite16k.*ljspeech.*tiny"):
        Config.load("nope")


def test_missing_file():
    with pytest.raises(FileNotFoundError, match="Config file not found: /no/such.yaml"):
        Config.load("/no/such.yaml")


def test_incompatible_features_are_listed():
    trained = Config.load("ljspeech")
    data = Config.load("ljspeech", overrides=["audio.num_mels=64", "text.symbol_set=phonemes-v1"])
    with pytest.raises(IncompatibleConfigError) as error:
        check_compatible(trained, data, what="prepared/x")
    message = str(error.value)
    assert "audio.num_mels: expected 80, prepared/x has 64" in message
    assert "text.symbols" in message and "audio.sample_rate" not in message


def test_text_frontend_versions():
    # A preset has no symbols: it is this version. A stored config with
    # symbols but no version was written by version 1.
    assert Config.load("flite16k").text.frontend == FRONTEND_VERSION == 9
    stored = Config().to_dict()
    assert stored["text"]["frontend"] == FRONTEND_VERSION
    del stored["text"]["frontend"]
    old = Config.from_dict(stored)
    assert old.text.frontend == 1
    with pytest.raises(IncompatibleConfigError, match=f"versions \\[1, {FRONTEND_VERSION}\\]"):
        check_compatible(Config(), old)
    # Only the audio matters to a vocoder; other differences get the usual advice.
    check_compatible(Config(), old, sections=("audio",))
    other = Config.from_dict({**stored, "audio": {"num_mels": 64}})
    with pytest.raises(IncompatibleConfigError) as error:
        check_compatible(old, other)
    assert "Prepare the data again with this config" in str(error.value)
    assert with_current_frontend(old).text.frontend == FRONTEND_VERSION
    with pytest.raises(IncompatibleConfigError, match="version 1.*mmae prepare"):
        check_frontend(old, "prepared/old")
    assert "version 1" in frontend_mismatch(old.text) and frontend_mismatch(Config().text) is None


def test_training_settings_do_not_break_compatibility():
    check_compatible(
        Config(), Config.load(None, overrides=["train.batch_size=3", "data.max_duration=3"])
    )
