"""mmae.evaluation: metric functions on known inputs, the recognizer on real speech, `evaluate` end to end."""

import importlib
import json
import math
import os
import shutil

import numpy as np
import pytest

from conftest import sample_rows
from mmae.evaluation import (
    ROWS,
    Recognizer,
    character_error_rate,
    compare_features,
    dtw_path,
    evaluate,
    f0_errors,
    frequency_warp,
    mel_cepstral_distortion,
    mel_cepstrum_settings,
    mel_l1,
    score_text,
    spectrum_to_mel_cepstrum,
    word_error_rate,
    world_features,
)
from mmae.vocoders import Vocoder, vocoder_from_config


def _load(clip_index, sample_rate=16000):
    from mmae.audio.io import load_audio

    clip_id, text, path = sample_rows(clip_index + 1)[clip_index]
    return text, load_audio(path, sample_rate, allow_upsampling=True)


@pytest.fixture(scope="module")
def recognizer():
    return Recognizer()


@pytest.fixture(scope="module")
def features():
    """WORLD analyses of the first three sample clips (flite, 16 kHz)."""
    return [world_features(_load(i)[1], 16000) for i in range(3)]


# -- error rates ----------------------------------------------------------------


def test_score_text_spells_out_and_keeps_only_words():
    assert score_text("Dr. Smith paid $5 -- at 10:30!") == (
        "doctor smith paid five dollars at ten thirty"
    )
    assert score_text("It's  the 'quoted' well-known\tword.") == "it's the quoted well known word"
    assert score_text("?!") == ""


def test_error_rates_normalize_both_sides():
    assert word_error_rate("Dr. Smith paid $5.", "doctor smith paid five dollars") == 0.0
    assert word_error_rate("the cat sat", "the bat sat down") == pytest.approx(2 / 3)
    assert character_error_rate("abc", "abd") == pytest.approx(1 / 3)
    assert word_error_rate("Hello world", "hello world", normalize=False) == pytest.approx(1 / 2)


def test_error_rates_are_corpus_level():
    # 4 of 6 reference words deleted; the mean of per-sentence rates would be 0.5.
    assert word_error_rate(["a b", "c d e f"], ["a b", ""]) == pytest.approx(4 / 6)
    with pytest.raises(ValueError, match="pair up"):
        word_error_rate(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="no words"):
        word_error_rate(["a", "..."], ["a", "b"])


# -- mel-cepstra, DTW, MCD, F0 -----------------------------------------------------


def test_frequency_warp_is_the_all_pass_substitution():
    # The defining identity of SPTK's freqt: sum_n c_n z^-n == sum_m c~_m z~^-m
    # with z~^-1 = (z^-1 - alpha) / (1 - alpha z^-1), checked on the unit circle.
    rng = np.random.default_rng(0)
    cepstrum = rng.normal(size=8) / np.arange(1, 9)
    alpha = 0.42
    warped = frequency_warp(cepstrum, 60, alpha)
    z = np.exp(-1j * np.linspace(0.1, 3.0, 9))
    warped_z = (z - alpha) / (1 - alpha * z)
    np.testing.assert_allclose(
        np.polyval(warped[::-1], warped_z), np.polyval(cepstrum[::-1], z), atol=1e-10
    )
    np.testing.assert_allclose(frequency_warp(cepstrum, 4, 0.0), cepstrum[:5], atol=1e-12)


def test_mel_cepstrum_of_a_flat_spectrum_is_its_level():
    spectrum = np.full([3, 513], 4.0)
    mel_cepstrum = spectrum_to_mel_cepstrum(spectrum, 23, 0.42)
    assert mel_cepstrum.shape == (3, 24)
    np.testing.assert_allclose(mel_cepstrum[:, 0], np.log(4.0) / 2, atol=1e-12)
    np.testing.assert_allclose(mel_cepstrum[:, 1:], 0.0, atol=1e-12)


def test_mel_cepstrum_settings():
    assert mel_cepstrum_settings(16000) == (23, 0.42)
    assert mel_cepstrum_settings(22050) == (34, 0.45)
    order, alpha = mel_cepstrum_settings(32000)  # not in SPTK's table: fitted to the mel scale
    # 0.504 measured; the bounds are about the same fit at the neighbouring
    # rates, 24 kHz (0.466) and 44.1 kHz (0.544): the warping grows with the rate.
    assert order == 24 and 0.46 < alpha < 0.54


def test_dtw_path_on_a_known_pair():
    reference = np.array([[0.0], [1.0], [2.0]])
    synthesized = np.array([[0.0], [0.0], [1.0], [2.0]])
    reference_indices, synthesized_indices = dtw_path(reference, synthesized)
    assert reference_indices.tolist() == [0, 0, 1, 2]
    assert synthesized_indices.tolist() == [0, 1, 2, 3]


def test_mcd_formula_on_known_frames():
    reference = np.zeros([4, 5])
    synthesized = np.zeros([4, 5])
    synthesized[:, 0] = 7.0  # the energy term is not part of MCD
    synthesized[:, 1] = 1.0
    expected = 10 / math.log(10) * math.sqrt(2)
    assert mel_cepstral_distortion(reference, synthesized, path=False) == pytest.approx(expected)
    assert mel_cepstral_distortion(reference, synthesized) == pytest.approx(expected)
    with pytest.raises(ValueError, match="DTW"):
        mel_cepstral_distortion(reference, synthesized[:3], path=False)


def test_f0_errors_on_known_tracks():
    reference = np.array([100.0, 200.0, 0.0, 0.0])
    synthesized = np.array([110.0, 200.0, 150.0, 0.0])
    path = (np.arange(4), np.arange(4))
    errors = f0_errors(reference, synthesized, path)
    assert errors["f0_rmse_hz"] == pytest.approx(math.sqrt(100 / 2))
    assert errors["f0_rmse_cents"] == pytest.approx(1200 * math.log2(1.1) / math.sqrt(2))
    assert errors["voicing_error"] == pytest.approx(1 / 4)
    unvoiced = f0_errors(np.zeros(3), np.array([0.0, 120.0, 0.0]), (np.arange(3), np.arange(3)))
    assert unvoiced["f0_rmse_hz"] is None and unvoiced["voicing_error"] == pytest.approx(1 / 3)


def test_mcd_and_f0_of_real_speech(features):
    first, second, third = features
    assert compare_features(first, first) == {
        "mcd": 0.0,
        "f0_rmse_hz": 0.0,
        "f0_rmse_cents": 0.0,
        "voicing_error": 0.0,
        "num_frames": len(first.f0),
    }
    forward = compare_features(first, second)
    backward = compare_features(second, first)
    # Different sentences of the same voice: 9.14 dB and 25.3 Hz measured
    # (9.07 dB for the first and third). The bounds are two thirds and two
    # fifths of that, far above what the same speech gives (0 here, 0.013 dB
    # at another gain below).
    assert forward["mcd"] > 6.0
    assert forward["f0_rmse_hz"] > 10.0
    # Equal both ways when measured; 2% lets DTW break ties the other way.
    assert backward["mcd"] == pytest.approx(forward["mcd"], rel=0.02)
    assert compare_features(first, third)["mcd"] > 6.0


def test_mel_cepstral_distortion_ignores_gain():
    _, waveform = _load(0)
    reference = world_features(waveform, 16000)
    quieter = world_features(waveform * 0.3, 16000)
    # 0.013 dB measured (WORLD's envelope is not exactly scale-free); 0.1 dB is
    # still a hundredth of the 9 dB between different sentences above.
    assert compare_features(reference, quieter)["mcd"] < 0.1


def test_mel_l1_aligns_a_stretched_copy():
    rng = np.random.default_rng(0)
    mel = rng.normal(size=[20, 8])
    stretched = np.repeat(mel, 2, axis=0)
    assert mel_l1(mel, stretched) == pytest.approx(0.0)
    assert mel_l1(mel, mel + 0.5, align=False) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="Shapes"):
        mel_l1(mel, stretched, align=False)


# -- recognizer -----------------------------------------------------------------


def test_recognizer_transcribes_sample_speech(recognizer):
    pairs = [_load(i) for i in range(5)]
    hypotheses = [recognizer.transcribe(waveform, 16000) for _, waveform in pairs]
    # Measured: 11 errors in 33 words (0.33) on these five clips, 0.36 on the
    # first 30. 0.45 allows 3 more errors (another PocketSphinx build or
    # resampler), while a recognizer that hears nothing (1.0) fails.
    assert word_error_rate([text for text, _ in pairs], hypotheses) < 0.45
    assert recognizer.transcribe(np.zeros(16000, np.float32), 16000) == ""
    assert recognizer.transcribe(np.zeros(0, np.float32), 16000) == ""


def test_recognizer_resamples_other_rates(recognizer):
    text, waveform = _load(3, sample_rate=22050)
    # Measured: one error in ten words at 16 kHz ("executed" -> "mexican"), and
    # the same from 22050 Hz; the bound allows one more.
    assert word_error_rate(text, recognizer.transcribe(waveform, 22050)) <= 0.2


def test_recognizer_transcript_does_not_depend_on_the_previous_one(recognizer):
    # PocketSphinx's front end carried its estimates over from one utterance
    # to the next: clip 5 read "okay an exciting..." after clip 6 and
    # "they an exciting..." after nothing.
    _, fifth = _load(4)
    _, sixth = _load(5)
    alone = recognizer.transcribe(fifth, 16000)
    recognizer.transcribe(sixth, 16000)
    assert recognizer.transcribe(fifth, 16000) == alone


# -- evaluate -------------------------------------------------------------------


def _corpus_rate(rate, report, row):
    """`rate` of `row` over the report's sentences, from each one's own text and transcript."""
    sentences = [s for s in report["sentences"] if row in s["rows"]]
    texts = [s["text"] for s in sentences]
    return rate(texts, [s["rows"][row]["hypothesis"] for s in sentences])


def test_evaluate_writes_a_report(tiny_run, tmp_path, recognizer):
    data_dir, run_dir = tiny_run
    out_dir = str(tmp_path / "evaluation")
    report = evaluate(run_dir, data_dir, out_dir, limit=2, progress=False, recognizer=recognizer)

    assert set(report["rows"]) == {"original", "vocoder_ceiling", "model"}
    assert report["row_names"] == list(ROWS)
    assert report["missing_rows"] == {}
    count = report["num_sentences"]
    assert 1 <= count <= 2 and len(report["sentences"]) == count
    for row, summary in report["rows"].items():
        assert summary["num_sentences"] == count
        assert summary["wer"] == _corpus_rate(word_error_rate, report, row)
        assert summary["cer"] == _corpus_rate(character_error_rate, report, row)
    for row in ("vocoder_ceiling", "model"):
        assert report["rows"][row]["mcd"] > 0.0
        assert report["rows"][row]["num_compared"] == count
    assert "mcd" not in report["rows"]["original"]
    # A model trained for two steps says nothing recognizable; the recordings do.
    assert report["rows"]["original"]["wer"] < report["rows"]["model"]["wer"]
    assert report["rows"]["model"]["mel_l1_dtw"] > 0.0
    ratio = report["wer_ratio_model_to_ceiling"]
    ceiling = report["rows"]["vocoder_ceiling"]["wer"]
    assert ratio == (pytest.approx(report["rows"]["model"]["wer"] / ceiling) if ceiling else None)
    assert report["methods"]["mcd"]["order"] == 23
    # DNSMOS, every row: the summary is the mean of the sentences' scores.
    assert report["methods"]["dnsmos"]["version"]["speechmos"]
    for row, summary in report["rows"].items():
        for key in ("dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "dnsmos_p808"):
            values = [s["rows"][row][key] for s in report["sentences"]]
            values = [value for value in values if value is not None]
            assert summary[key] == (pytest.approx(np.mean(values)) if values else None)
        assert summary["num_dnsmos"] == len(values)
    assert report["rows"]["original"]["num_dnsmos"] == count
    assert 1.0 <= report["rows"]["original"]["dnsmos_ovrl"] <= 5.0

    model_wers = [s["rows"]["model"]["wer"] for s in report["sentences"]]
    assert model_wers == sorted(model_wers, reverse=True)
    for sentence in report["sentences"]:
        assert set(sentence["rows"]) == {"original", "vocoder_ceiling", "model"}
        for row, values in sentence["rows"].items():
            assert isinstance(values["hypothesis"], str)
            assert values["wer"] == word_error_rate(sentence["text"], values["hypothesis"])
            assert os.path.isfile(os.path.join(out_dir, values["audio"]))
            assert values["audio"] == f"audio/{sentence['clip_id']}_{row}.wav"

    for name in ("report.json", "report.md", "report.png"):
        assert os.path.getsize(os.path.join(out_dir, name)) > 0
    with open(os.path.join(out_dir, "report.json"), encoding="utf-8") as f:
        assert json.load(f)["rows"] == report["rows"]
    with open(os.path.join(out_dir, "report.md"), encoding="utf-8") as f:
        markdown = f.read()
    assert f"[wav](audio/{report['sentences'][0]['clip_id']}_model.wav)" in markdown
    assert "| vocoder_ceiling |" in markdown
    assert "| DNSMOS OVRL | SIG | BAK | P.808 |" in markdown
    original = report["rows"]["original"]
    assert f"| {original['dnsmos_ovrl']:.2f} | {original['dnsmos_sig']:.2f} |" in markdown


def test_evaluate_without_the_recordings(tiny_run, tmp_path, recognizer):
    data_dir, run_dir = tiny_run
    # The prepared data, with its corpus gone.
    moved = str(tmp_path / "prepared")
    shutil.copytree(data_dir, moved)
    with open(os.path.join(moved, "dataset.json"), encoding="utf-8") as f:
        info = json.load(f)
    info["source"] = str(tmp_path / "deleted_corpus")
    with open(os.path.join(moved, "dataset.json"), "w", encoding="utf-8") as f:
        json.dump(info, f)
    out_dir = str(tmp_path / "evaluation")

    report = evaluate(
        run_dir,
        moved,
        out_dir,
        limit=1,
        progress=False,
        write_audio=False,
        recognizer=recognizer,
        dnsmos=False,
    )

    assert set(report["rows"]) == {"vocoder_ceiling", "model"}
    assert "deleted_corpus" in report["missing_rows"]["original"]
    assert report["rows"]["model"]["mcd"] is None
    assert report["rows"]["model"]["num_compared"] == 0
    assert report["rows"]["model"]["wer"] == _corpus_rate(word_error_rate, report, "model")
    # The record's true log-mel through the vocoder is intelligible (0.375
    # measured: "a stopover" heard as "us stop over"); two training steps are
    # not (1.0: the transcript is "don't").
    assert report["rows"]["vocoder_ceiling"]["wer"] < report["rows"]["model"]["wer"]
    assert not os.path.exists(os.path.join(out_dir, "audio"))
    with open(os.path.join(out_dir, "report.md"), encoding="utf-8") as f:
        markdown = f.read()
    assert "| original | missing |" in markdown and "`original` is missing" in markdown
    # dnsmos=False: no scores, and a dash in the table.
    assert "dnsmos_ovrl" not in report["rows"]["model"] and "dnsmos" not in report["methods"]
    assert "dnsmos_ovrl" not in report["sentences"][0]["rows"]["model"]
    model_line = next(line for line in markdown.splitlines() if line.startswith("| model |"))
    assert model_line.endswith(f"| {report['rows']['model']['mel_l1_dtw']:.3f} | - | - | - | - |")


def test_evaluate_one_checkpoint_model_row_only(tiny_run, tmp_path, recognizer):
    data_dir, run_dir = tiny_run
    checkpoint = os.path.join(run_dir, "checkpoints", "ckpt-2")
    report = evaluate(
        run_dir,
        data_dir,
        str(tmp_path / "evaluation"),
        limit=1,
        progress=False,
        recognizer=recognizer,
        checkpoint=checkpoint,
        rows=("model",),
    )
    assert set(report["rows"]) == {"model"} and report["checkpoint"] == "ckpt-2"
    assert set(report["missing_rows"]) == {"original", "vocoder_ceiling"}
    assert report["wer_ratio_model_to_ceiling"] is None
    # The recordings are still read for the acoustic comparison.
    assert report["rows"]["model"]["num_compared"] == 1 and report["rows"]["model"]["mcd"] > 0
    assert set(report["sentences"][0]["rows"]) == {"model"}
    with pytest.raises(ValueError, match="rows must include 'model'"):
        evaluate(run_dir, data_dir, str(tmp_path / "e2"), rows=("original",))


class WrappedGriffinLim(Vocoder):
    """Stands in for a neural vocoder: a `Vocoder`, not a `GriffinLim` (it wraps one)."""

    def __init__(self, audio_config, **kwargs):
        super().__init__(audio_config.sample_rate, audio_config.frame_step, **kwargs)
        self.inner = vocoder_from_config(audio_config, num_iterations=4)

    def vocode(self, log_mel, num_frames=None):
        return self.inner(log_mel, num_frames)


def test_evaluate_adds_griffin_lim_beside_another_vocoder(tiny_run, tmp_path, recognizer):
    from mmae.config import Config

    data_dir, run_dir = tiny_run
    audio_config = Config.load("tiny").audio
    report = evaluate(
        run_dir,
        data_dir,
        str(tmp_path / "evaluation"),
        limit=1,
        progress=False,
        write_audio=False,
        recognizer=recognizer,
        vocoder=WrappedGriffinLim(audio_config),
        dnsmos=False,
    )
    names = ["original", "vocoder_ceiling", "griffin_lim_ceiling", "model"]
    assert report["row_names"] == names and list(report["rows"]) == names
    assert report["methods"]["ceilings"]["vocoder_ceiling"].endswith("WrappedGriffinLim")
    assert report["methods"]["ceilings"]["griffin_lim_ceiling"].endswith("GriffinLim")
    for row in ("vocoder_ceiling", "griffin_lim_ceiling"):
        assert report["rows"][row]["num_compared"] == 1 and report["rows"][row]["mcd"] > 0
    # Two renderings (4 Griffin-Lim iterations and 32): 5.73 and 5.75 dB measured.
    assert report["rows"]["vocoder_ceiling"]["mcd"] != report["rows"]["griffin_lim_ceiling"]["mcd"]
    with open(os.path.join(tmp_path, "evaluation", "report.md"), encoding="utf-8") as f:
        assert "| griffin_lim_ceiling | 1 |" in f.read()

    with pytest.raises(ValueError, match="other than 'original' and 'model'"):
        evaluate(run_dir, data_dir, str(tmp_path / "e2"), vocoders={"model": None})


def test_recordings_are_analyzed_once_per_process(monkeypatch):
    module = importlib.import_module("mmae.evaluation.evaluate")
    calls = []

    def world(waveform, sample_rate):
        calls.append(waveform.size)
        return world_features(waveform, sample_rate)

    monkeypatch.setattr(module, "_world", world)
    monkeypatch.setattr(module, "_REFERENCE_CACHE", {})
    waveform = _load(0)[1]
    first = module._reference_world(waveform, 16000)
    again = module._reference_world(waveform.copy(), 16000)
    assert again is first and len(calls) == 1
    np.testing.assert_array_equal(first.f0, world_features(waveform, 16000).f0)
    module._reference_world(waveform[:-160], 16000)  # other audio: analyzed anew
    assert len(calls) == 2


def test_cli_evaluate_reports_a_missing_run(tmp_path, capsys):
    from mmae.cli import main

    code = main(["evaluate", "--run", str(tmp_path / "nope"), "--data", str(tmp_path)])
    assert code == 2
    assert "mmae evaluate: error:" in capsys.readouterr().err
