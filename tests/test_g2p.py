"""Tests for the learned G2P, the pronunciation lexicon's files and their training run."""

import gzip
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from mmae.config import Config
from mmae.datasets.words import fits, make_word_dataset, prepare_lexicon, read_words
from mmae.text.g2p import G2P, output_symbols
from mmae.text.graph_frontend import GraphFrontend
from mmae.text.lexicon import DICTIONARY_WORD_LIST, PhonemeLexicon, read_word_list
from mmae.text.symbols import get_symbols

SYMBOLS = get_symbols("phonemes-v1")
LETTERS = {c: f"ˈ{c}ɪ" for c in "abcdefghijklmnopqrstuvwxyz"}
WORDS = {
    "cat": "kˈæt",
    "cats": "kˈæts",
    "dog": "dˈɑːɡ",
    "hello": "həlˈoʊ",
    "world": "wˈɜːld",
    "banana": "bɐnˈænə",
    "x": "ˈɛks",
    "the": "ðə",
    "the|v": "ðɪ",
    "of the|": "ʌvðə",
    "well-known": "wˈɛlnˈoʊn",
}


TINY = [
    "text.tokenizer=phonemes",
    "text.symbol_set=phonemes-v1",
    "data.validation_fraction=0.3",
    "train.batch_size=4",
    "train.steps=3",
    "train.eval_every=3",
    "train.checkpoint_every=3",
    "train.log_every=1",
    "g2p.dim=16",
    "g2p.num_layers=1",
    "g2p.upsampled_layers=1",
    "g2p.num_heads=2",
]


def tiny_config():
    return Config.load(overrides=TINY)


@pytest.fixture
def lexicon_dir(tmp_path):
    """A prepared lexicon of a dozen words (no espeak-ng)."""
    lexicon = PhonemeLexicon(dict(WORDS), dict(LETTERS), {"entries": len(WORDS)})
    out = tmp_path / "lexicon"
    prepare_lexicon(str(out), tiny_config(), lexicon=lexicon)
    return str(out)


def test_a_lexicon_round_trips_through_its_file(tmp_path):
    lexicon = PhonemeLexicon(dict(WORDS), dict(LETTERS))
    path = str(tmp_path / "lexicon.tsv.gz")
    lexicon.save(path)
    loaded = PhonemeLexicon.load(path)
    assert loaded.entries == WORDS and loaded.letters == LETTERS
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("cat\tkˈæt\n")  # no letter names
    with pytest.raises(ValueError, match="lacks the names of the letters a, b"):
        PhonemeLexicon.load(path)


def test_prepare_lexicon_splits_single_words_by_hash(lexicon_dir):
    info = json.load(open(os.path.join(lexicon_dir, "dataset.json"), encoding="utf-8"))
    rows = read_words(lexicon_dir, "train") + read_words(lexicon_dir, "validation")
    # Context forms, pairs and hyphenated words are not G2P examples.
    words = ["banana", "cat", "cats", "dog", "hello", "the", "world", "x"]
    assert sorted(w for w, _ in rows) == words
    assert info["splits"]["validation"]["num_clips"] == len(read_words(lexicon_dir, "validation"))
    assert PhonemeLexicon.load(os.path.join(lexicon_dir, "lexicon.tsv.gz")).entries == WORDS
    with pytest.raises(ValueError, match="text.tokenizer=phonemes"):
        prepare_lexicon(str(lexicon_dir) + "2", Config.load(), lexicon=PhonemeLexicon({}, {}))


def test_a_word_list_gives_lowercase_words_without_possessives(tmp_path):
    path = tmp_path / "words"
    path.write_text("Abel\nAbel's\no'clock\nX-ray\nnaïve\n\nabel\nzygote\n", encoding="utf-8")
    # "Abel's": the frontend reads "'s" itself; "naïve": not letters a to z.
    assert read_word_list(str(path)) == ["abel", "o'clock", "x-ray", "zygote"]
    with pytest.raises(FileNotFoundError, match="No word list at .*nowhere"):
        read_word_list(str(tmp_path / "nowhere"))
    if not os.path.exists(DICTIONARY_WORD_LIST):
        with pytest.raises(FileNotFoundError, match="apt-get install wamerican-insane"):
            read_word_list(DICTIONARY_WORD_LIST)


def test_word_batches_have_one_shape_per_bucket_and_skip_what_ctc_cannot_align(lexicon_dir):
    # "x" -> "ˈɛks": 4 symbols for 1 letter x 3 positions.
    assert not fits("x", "ˈɛks", 3) and fits("cat", "kˈæt", 3)
    assert not fits("ab", "ɑɑɑ", 2) and fits("ab", "ɑɑ", 2)  # a blank between repeats
    config = tiny_config()
    words = {w for split in ("train", "validation") for w, _ in read_words(lexicon_dir, split)}
    seen = set()
    for split in ("train", "validation"):
        dataset = make_word_dataset(lexicon_dir, config, split, training=False, batch_size=4)
        for batch in dataset:
            letters = batch["letters"].numpy()
            # Padded to the bucket boundary (6 letters), phonemes to 3x that.
            assert letters.shape[1] == 6 and batch["phonemes"].shape[1] == 18
            for row, n in zip(letters, batch["num_letters"].numpy(), strict=True):
                seen.add("".join("'abcdefghijklmnopqrstuvwxyz"[i - 1] for i in row[:n]))
    assert seen == words - {"x"}


def test_greedy_decoding_merges_repeats_and_drops_blanks():
    g2p = G2P(SYMBOLS, dim=8, num_layers=1, upsampled_layers=1, num_heads=1)
    classes = [[0, 3, 3, 0, 3, 5, 5, 7]]
    logits = tf.one_hot(classes, len(output_symbols(SYMBOLS)) + 1)
    mask = tf.constant([[True] * 7 + [False]])
    assert g2p.decode(logits, mask).to_list() == [[3, 3, 5]]


def test_g2p_trains_resumes_packs_and_transcribes_in_a_graph(lexicon_dir, tmp_path, capsys):
    from mmae import cli, pretrained, runs
    from mmae.runs import read_metrics
    from mmae.training.g2p import g2p_config, train_g2p

    config = g2p_config(lexicon_dir, overrides=TINY)
    run_dir = str(tmp_path / "run")
    summary = train_g2p(config, lexicon_dir, run_dir, progress=False, max_steps=2)
    assert summary["step"] == 2
    # The command resumes with the run's stored (tiny) config.
    assert cli.main(["train-g2p", "--data", lexicon_dir, "--run-dir", run_dir, "--quiet"]) == 0
    assert "Trained to step 3" in capsys.readouterr().out
    validation = read_metrics(run_dir, "validation")[-1]
    assert {"loss", "phoneme_error_rate", "word_error_rate"} <= set(validation)
    out = str(tmp_path / "pack")
    assert pretrained.pack_frontend(run_dir, lexicon_dir, out) > 0
    pack_config, lexicon, g2p = runs.load_frontend(out)
    assert pack_config.g2p.dim == 16 and lexicon.entries == WORDS
    report = json.load(open(os.path.join(out, "report.json"), encoding="utf-8"))
    assert report["validation"]["step"] == 3 and report["held_out_words"] >= 1
    transcribe = tf.function(g2p.transcribe, input_signature=[tf.TensorSpec([None], tf.string)])
    phonemes = transcribe(tf.constant(["Kolarians", "", "o'brien"])).numpy()
    assert phonemes.shape == (3,) and phonemes[1] == b""
    allowed = set(output_symbols(SYMBOLS))
    assert all(set(p.decode()) <= allowed for p in phonemes)
    assert transcribe(tf.zeros([0], tf.string)).shape == (0,)
    # A new lexicon beside the same G2P: its weights bit for bit, the G2P's report kept.
    other = str(tmp_path / "lexicon2")
    prepare_lexicon(
        other, tiny_config(), lexicon=PhonemeLexicon({**WORDS, "cat dog|": "x"}, LETTERS)
    )
    again = str(tmp_path / "pack2")
    assert pretrained.relexicon_frontend(out, other, again) > 0
    _, lexicon2, g2p2 = runs.load_frontend(again)
    assert lexicon2.entries == {**WORDS, "cat dog|": "x"}
    for a, b in zip(g2p.weights, g2p2.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    report2 = json.load(open(os.path.join(again, "report.json"), encoding="utf-8"))
    assert report2["validation"] == report["validation"] and "g2p_lexicon" in report2


def test_a_g2p_run_starts_from_a_trained_g2p_run_or_pack(lexicon_dir, tmp_path, capsys):
    from mmae import cli, pretrained, runs
    from mmae.training.g2p import _initialize, build_g2p, g2p_config, train_g2p

    config = g2p_config(lexicon_dir, overrides=TINY)
    source = str(tmp_path / "source")
    train_g2p(config, lexicon_dir, source, progress=False)
    pack = str(tmp_path / "pack")
    pretrained.pack_frontend(source, lexicon_dir, pack)
    _, _, packed = runs.load_frontend(pack)
    for origin in (source, pack):
        model = build_g2p(config)
        _initialize(model, config, origin)
        for ours, theirs in zip(model.weights, packed.weights, strict=True):
            np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-3, atol=1e-4)
    smaller = g2p_config(lexicon_dir, overrides=TINY + ["g2p.dim=8"])
    with pytest.raises(ValueError, match="g2p.dim: 16 vs 8"):
        _initialize(build_g2p(smaller), smaller, pack)
    with pytest.raises(FileNotFoundError, match="--init-from nowhere"):
        train_g2p(config, lexicon_dir, str(tmp_path / "x"), init_from="nowhere")
    run_dir = str(tmp_path / "fine")
    command = ["train-g2p", "--data", lexicon_dir, "--run-dir", run_dir, "--quiet"]
    command += [a for o in TINY for a in ("--set", o)]
    assert cli.main(command + ["--init-from", pack, "--steps", "2"]) == 0
    # Resumed, the run needs its source no more.
    assert cli.main(command + ["--init-from", str(tmp_path / "gone")]) == 0
    assert "Trained to step 3" in capsys.readouterr().out


def test_g2p_trains_under_xla_with_dense_ctc_labels(lexicon_dir, tmp_path):
    # XLA cannot compile the sparse labels of the CPU's fast CTC kernel: the
    # trainer switches the model to dense ones under jit_compile.
    from mmae.runs import read_metrics
    from mmae.training.g2p import g2p_config, train_g2p

    config = g2p_config(lexicon_dir, overrides=TINY + ["train.jit_compile=true"])
    run_dir = str(tmp_path / "run")
    summary = train_g2p(config, lexicon_dir, run_dir, progress=False, max_steps=2)
    assert summary["step"] == 2
    assert all(np.isfinite(r["loss"]) for r in read_metrics(run_dir, "train"))


class _Marker:
    """Stands in for a G2P: every word it reads becomes "ʒ", so the test sees which it read."""

    def transcribe(self, words):
        return tf.fill(tf.shape(words), "ʒ")


def test_the_frontend_reads_unknown_words_with_the_g2p_and_spells_only_acronyms():
    lexicon = PhonemeLexicon(dict(WORDS), dict(LETTERS))
    frontend = GraphFrontend(SYMBOLS, "phonemes", True, lexicon, _Marker())
    to_symbols = tf.function(frontend.to_symbols, autograph=False)
    texts = ["The kolarians saw a GPL cat.", "Hello, zyzzyva-cat world!", "", "cats"]
    got = [s.decode() for s in to_symbols(tf.constant(texts)).numpy()]
    assert got[0] == "ðə ʒ ʒ ʒ ˌgɪˌpɪˈlɪ kˈæt."  # "saw", "a": not in this lexicon
    assert got[1] == "həlˈoʊ, ʒkˈæt wˈɜːld!"
    assert got[2:] == ["", "kˈæts"]
    spelling = GraphFrontend(SYMBOLS, "phonemes", True, lexicon)
    spelled = tf.function(spelling.to_symbols, autograph=False)(tf.constant(["kolarians"]))
    assert spelled.numpy()[0].decode().startswith("ˌkɪˌoɪ")


def test_the_bundled_frontend_reads_new_words_close_to_espeak_ng():
    """Made-up and rare words are read by the bundled G2P, not spelled."""
    pytest.importorskip("phonemizer")
    jiwer = pytest.importorskip("jiwer")
    from mmae import pretrained, runs
    from mmae.text import PhonemeTokenizer

    _, lexicon, g2p = runs.load_frontend(pretrained.frontend_path("en-us"))
    words = ["kolarians", "gnomovision", "vorpalize", "blorptastic", "quentavia", "zorbing"]
    assert not any(w in lexicon.entries for w in words)
    got = [p.decode() for p in g2p.transcribe(tf.constant(words)).numpy()]
    tokenizer = PhonemeTokenizer("phonemes-v1", normalize=False)
    expected = [tokenizer.decode(ids) for ids in tokenizer.encode_batch(words)]
    # Phoneme error rate against espeak-ng (bench/frontend_bench.py measures
    # it on 27,090 held-out words).
    assert jiwer.cer(expected, got) < 0.2, list(zip(got, expected, strict=True))
