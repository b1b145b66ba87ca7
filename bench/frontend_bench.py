"""The phoneme text frontend against espeak-ng: its G2P on held-out words, its tokens on new text.

Run from the repository root (needs espeak-ng, phonemizer, wordnet-base and,
for the second text, bible-kjv: `sudo apt-get install bible-kjv`):

    .venv/bin/python -m bench.frontend_bench
    .venv/bin/python -m bench.frontend_bench --quick      # 300 words, 40 sentences a text

The reference is always espeak-ng through `mmae.text.PhonemeTokenizer`, the
tokenizer the lexicon and the G2P's training words come from.

1. The G2P model (`mmae.text.g2p`) of the frontend pack (default: the one
   bundled for en-us) on the held-out words of `mmae prepare-lexicon`
   (a hash of each word puts about 5% of the lexicon's words aside; the
   bundled G2P never trained on them). Phoneme error rate (edit distance
   over phoneme symbols, stress and length marks included, divided by the
   reference's length), the same without stress marks, and word error rate
   (any difference). Beside it, what the frontend did before it had a G2P:
   spelling every unknown word with letter names.
2. Sentences of texts outside WordNet, whose words the lexicon was not built
   from: the licenses in /usr/share/common-licenses, and verses of the King
   James Bible (`bible`, package bible-kjv). For each, the fraction of
   sentences whose in-graph frontend ids (`GraphFrontend`, traced) equal
   espeak-ng's exactly, with the G2P and with spelling; how many words are
   outside the lexicon, and how many of those are spelled (only those
   without a vowel letter should be).
3. Speed: ids per second for 1,000 sentences: the frontend traced, the
   frontend inside a SavedModel (saved and loaded again), the frontend as
   `mmae prepare` calls it (`FrontendTokenizer.encode_batch`, one call per
   shard of 64 clips), and espeak-ng through `PhonemeTokenizer`, in one
   batch and one clip at a time (how `mmae prepare` read phonemes before
   frontend version 2).
4. `mmae prepare` end to end on the first clips of a corpus (default 400 of
   corpora/slt1600; skipped without it): with the frontend, and with
   espeak-ng one clip at a time as version 1 did (its tokenizer put in
   place of the frontend's), alternating, best of two each.
5. Speech: the bundled model speaks sentences of the licenses it never saw
   (default 100, another draw than part 2's) through the Python
   `Synthesizer` and through its exported SavedModel (`serving_default`);
   PocketSphinx transcribes both, and the word error rates are compared
   (target: the SavedModel's at most 1.02x the Synthesizer's). Needs the
   `eval` extra.

Writes bench/results/frontend_bench.json and .png.
"""

import os
import random
import re
import subprocess
import sys
import time
import warnings

from bench.harness import REPO, Benchmark, logger, pyplot, save_figure

LICENSES = "/usr/share/common-licenses"
# Where scripts/make_bundled_frontend.sh prepares the bundled G2P's words
# (WordNet's and the spelling dictionary's, since frontend version 8).
DEFAULT_LEXICON = os.path.join("prepared", "lexicon_insane")
# Held-out words the G2P transcribes a call.
G2P_CHUNK = 1024
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_WORD = re.compile(r"[a-z]+(?:['-][a-z]+)*")

log = logger("frontend_bench")


def add_arguments(parser):
    parser.add_argument(
        "--pack",
        default=None,
        help="a text frontend pack (default: the bundled one for en-us)",
    )
    parser.add_argument(
        "--lexicon",
        default=DEFAULT_LEXICON,
        help="the `mmae prepare-lexicon` directory the G2P was trained from, made there if "
        "missing (default: prepared/lexicon_insane, as scripts/make_bundled_frontend.sh makes it)",
    )
    parser.add_argument(
        "--sentences", type=int, default=400, help="sentences per text (default: 400)"
    )
    parser.add_argument(
        "--prepare-corpus",
        default=os.path.join("corpora", "slt1600"),
        help="an LJSpeech-format corpus for the prepare timing (default: corpora/slt1600, "
        "skipped when missing)",
    )
    parser.add_argument(
        "--prepare-clips", type=int, default=400, help="its clips to prepare (default: 400)"
    )
    parser.add_argument(
        "--speech-sentences",
        type=int,
        default=100,
        help="sentences the bundled model speaks through both paths (default: 100; 0 skips)",
    )


def error_rates(pairs):
    """{phoneme_error_rate, phoneme_error_rate_without_stress, word_error_rate} of (want, got).

    The phoneme error rate is `jiwer`'s character error rate over the phoneme
    strings: every symbol, stress and length marks included, is a character.
    """
    import jiwer

    def rate(pairs):
        return float(jiwer.cer([want for want, _ in pairs], [got for _, got in pairs]))

    unstressed = [(re.sub("[ˈˌ]", "", w), re.sub("[ˈˌ]", "", g)) for w, g in pairs]
    return {
        "phoneme_error_rate": round(rate(pairs), 4),
        "phoneme_error_rate_without_stress": round(rate(unstressed), 4),
        "word_error_rate": round(sum(w != g for w, g in pairs) / max(len(pairs), 1), 4),
    }


def license_sentences(limit, seed=0):
    """Sentences of the license texts, shuffled with `seed`, at most `limit`."""
    sentences = set()
    for name in sorted(os.listdir(LICENSES)):
        path = os.path.join(LICENSES, name)
        if os.path.islink(path) or not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            text = " ".join(f.read().split())
        sentences.update(s for s in _SENTENCE_END.split(text) if 3 <= len(s.split()) <= 40)
    return _sample(sentences, limit, seed)


def kjv_sentences(limit, seed=0):
    """Verses of the King James Bible (`bible`), shuffled with `seed`, at most `limit`."""
    listing = subprocess.run(
        ["bible", "-f", "Gen1:1-Rev22:21"], capture_output=True, text=True, check=True
    ).stdout
    verses = {line.partition(" ")[2].strip() for line in listing.splitlines()}
    return _sample({v for v in verses if 3 <= len(v.split()) <= 40}, limit, seed)


def _sample(sentences, limit, seed):
    sentences = sorted(sentences)
    random.Random(seed).shuffle(sentences)
    return sentences[:limit]


def measure(args):
    import tensorflow as tf

    from mmae import pretrained, runs
    from mmae.datasets.words import prepare_lexicon, read_words
    from mmae.text import PhonemeTokenizer, normalize_text
    from mmae.text.graph_frontend import GraphFrontend, agreement
    from mmae.text.lexicon import DICTIONARY_WORD_LIST

    pack = args.pack or pretrained.frontend_path("en-us")
    config, lexicon, g2p = runs.load_frontend(pack)
    if not os.path.exists(os.path.join(args.lexicon, "validation.tsv")):
        log(f"phonemizing the lexicon into {args.lexicon} (about eight minutes)")
        prepare_lexicon(args.lexicon, config, word_lists=[DICTIONARY_WORD_LIST])
    held_out = read_words(args.lexicon, "validation")
    if args.quick:
        held_out = random.Random(0).sample(held_out, 300)
    words = [w for w, _ in held_out]
    log(f"G2P on {len(words)} held-out words")
    start = time.perf_counter()
    predicted = []
    # In chunks: the 17,110 held-out words of the dictionary lexicon in one
    # batch need more than this machine's 24 GiB.
    for first in range(0, len(words), G2P_CHUNK):
        chunk = tf.constant(words[first : first + G2P_CHUNK])
        predicted += [p.decode() for p in g2p.transcribe(chunk).numpy()]
    g2p_seconds = time.perf_counter() - start
    spelling = GraphFrontend(config.text.symbols, "phonemes", False, lexicon)
    spelled = [s.decode() for s in spelling._spell(tf.constant(words)).numpy()]
    results = {
        "pack": os.path.relpath(pack, REPO),
        "g2p_report": _read_report(pack),
        "held_out_words": {
            "words": len(words),
            "g2p": {
                **error_rates(
                    [(want, got) for (_, want), got in zip(held_out, predicted, strict=True)]
                ),
                "words_per_second": round(len(words) / g2p_seconds, 1),
            },
            "spelled_with_letter_names": error_rates(
                [(want, got) for (_, want), got in zip(held_out, spelled, strict=True)]
            ),
            "examples": [
                [word, want, got]
                for (word, want), got in zip(held_out, predicted, strict=True)
                if want != got
            ][:15],
        },
    }
    results["comparison"] = {
        "note": "Published G2P figures are on CMUdict (human transcriptions, with many "
        "irregular words), not on espeak-ng's rule-based output, so they only set the scale.",
        "transformer_g2p_cmudict_per_wer": [0.0523, 0.221],
        "source": "Yolchuyeva et al., 'Transformer based grapheme-to-phoneme conversion', "
        "Interspeech 2019 (Transformer 4x4, CMUdict); the reference of DeepPhonemizer's "
        "README. g2p-en and DeepPhonemizer publish no CMUdict error rates of their own.",
    }
    results["hyphenated_words"] = _hyphenated(config, lexicon, g2p, tf, args.quick)
    tokenizer = PhonemeTokenizer(config.text.symbols, language=config.text.language)
    frontends = {
        "g2p": GraphFrontend(config.text.symbols, "phonemes", True, lexicon, g2p),
        "spelled": GraphFrontend(config.text.symbols, "phonemes", True, lexicon),
    }
    traced = {name: tf.function(f.tokenize, autograph=False) for name, f in frontends.items()}
    limit = 40 if args.quick else args.sentences
    texts = {"licenses": license_sentences(limit)}
    try:
        texts["kjv"] = kjv_sentences(limit)
    except FileNotFoundError:
        log("no `bible` (sudo apt-get install bible-kjv): the licenses only")
    results["sentences"] = {}
    for source, sentences in texts.items():
        log(f"{len(sentences)} sentences of {source}")
        row = {"sentences": len(sentences)}
        for name, tokenize in traced.items():
            rate, mismatches = agreement(tokenize, tokenizer, sentences)
            row[f"equal_ids_{name}"] = round(rate, 4)
            if name == "g2p":
                row["examples"] = [list(m) for m in mismatches[:10]]
        row.update(_unknown_words(sentences, lexicon, normalize_text))
        results["sentences"][source] = row
    results["speed"] = _speed(traced["g2p"], frontends["g2p"], tokenizer, texts, tf)
    if os.path.exists(os.path.join(args.prepare_corpus, "metadata.csv")):
        clips = 40 if args.quick else args.prepare_clips
        results["prepare"] = _prepare_speed(args.prepare_corpus, clips, tokenizer)
    else:
        log(f"no corpus at {args.prepare_corpus}: no prepare timing")
    count = 6 if args.quick else args.speech_sentences
    if count:
        results["speech"] = _speech(license_sentences(count, seed=1))
    return results


def _hyphenated(config, lexicon, g2p, tf, quick):
    """The lexicon's hyphenated words read as if it lacked them: as one phrase, or part by part.

    Both readings are of the graph frontend over the lexicon without its
    hyphenated words: the phrase of the parts said as one word (what the
    frontend does with a hyphenated word outside the lexicon) and each part
    alone, joined (what it did up to version 4).
    """
    from mmae.text.graph_frontend import GraphFrontend
    from mmae.text.lexicon import PhonemeLexicon

    words = sorted(k for k in lexicon.entries if "|" not in k and " " not in k and "-" in k)
    if quick:
        words = random.Random(0).sample(words, min(300, len(words)))
    log(f"{len(words)} hyphenated words of the lexicon, read as if it lacked them")
    kept = set(words)
    partial = PhonemeLexicon(
        {k: v for k, v in lexicon.entries.items() if k not in kept}, lexicon.letters
    )
    graph = GraphFrontend(config.text.symbols, "phonemes", False, partial, g2p)
    phrase = tf.function(graph._phonemes, autograph=False)
    alone = tf.function(graph._word_phonemes, autograph=False)
    got = {"as_one_phrase": [], "part_by_part": []}
    for start in range(0, len(words), 2048):
        batch = words[start : start + 2048]
        got["as_one_phrase"] += [w.decode() for w in phrase(tf.constant(batch)).numpy()]
        parts = tf.strings.split(tf.constant(batch), "-")
        forms = parts.with_flat_values(alone(parts.flat_values))
        got["part_by_part"] += [w.decode() for w in tf.strings.reduce_join(forms, axis=1).numpy()]
    want = [lexicon.entries[w] for w in words]
    return {
        "words": len(words),
        **{
            name: round(sum(a == b for a, b in zip(want, read, strict=True)) / len(words), 4)
            for name, read in got.items()
        },
        "note": "share of words read exactly as espeak-ng (the lexicon's entry)",
    }


def _speech(sentences):
    """WER of the bundled model's speech through the `Synthesizer` and through its SavedModel."""
    import tempfile

    import numpy as np
    import tensorflow as tf

    from mmae import pretrained
    from mmae.evaluation import Recognizer
    from mmae.evaluation.metrics import word_error_rate
    from mmae.export import export_saved_model
    from mmae.synthesis import Synthesizer

    log(f"speech: {len(sentences)} license sentences, Synthesizer and SavedModel")
    recognizer = Recognizer()
    synthesizer = Synthesizer.from_pretrained()
    rate = synthesizer.sample_rate
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        python_audio = [synthesizer.synthesize(s) for s in sentences]
    with tempfile.TemporaryDirectory() as directory:
        export_saved_model(pretrained.path_of(), os.path.join(directory, "1"))
        speech = tf.saved_model.load(os.path.join(directory, "1"))
        saved_audio = []
        for sentence in sentences:
            out = speech.signatures["serving_default"](text=tf.constant([sentence]))
            saved_audio.append(out["audio"][0, : int(out["lengths"][0])].numpy())
    rows = {}
    for name, audio in (("synthesizer", python_audio), ("saved_model", saved_audio)):
        heard = [recognizer.transcribe(a, rate) for a in audio]
        rows[name] = {
            "wer": round(float(word_error_rate(sentences, heard)), 4),
            "seconds_of_speech": round(sum(len(a) for a in audio) / rate, 1),
        }
    same_length = sum(len(a) == len(b) for a, b in zip(python_audio, saved_audio, strict=True))
    difference = max(
        float(np.max(np.abs(a - b))) if len(a) == len(b) and len(a) else 0.0
        for a, b in zip(python_audio, saved_audio, strict=True)
    )
    ratio = rows["saved_model"]["wer"] / max(rows["synthesizer"]["wer"], 1e-9)
    return {
        "sentences": len(sentences),
        "source": "license sentences (seed 1)",
        **rows,
        "saved_model_vs_synthesizer_wer": round(ratio, 4),
        "target_max": 1.02,
        "pass": ratio <= 1.02,
        "same_length_waveforms": same_length,
        "max_abs_sample_difference": round(difference, 6),
    }


def _unknown_words(sentences, lexicon, normalize_text):
    """Words (and hyphen parts) outside the lexicon, and those without a vowel letter."""
    words = [w for s in sentences for w in _WORD.findall(normalize_text(s))]
    unknown = [
        part
        for word in words
        if word not in lexicon.entries
        for part in word.split("-")
        if part not in lexicon.entries
        and not (part.endswith("s") and part.rstrip("'s") in lexicon.entries)
    ]
    no_vowel = [w for w in unknown if not re.search("[aeiouy]", w)]
    return {
        "words": len(words),
        "words_outside_lexicon": len(unknown),
        "spelled_words": len(no_vowel),
        "outside_lexicon_examples": sorted(set(unknown))[:20],
        "spelled_examples": sorted(set(no_vowel))[:20],
    }


def _speed(tokenize, frontend, tokenizer, texts, tf):
    import shutil
    import tempfile

    from mmae.config import TextConfig
    from mmae.text import tokenizer_from_config

    sentences = [s for group in texts.values() for s in group]
    batch = (sentences * (1000 // max(len(sentences), 1) + 1))[:1000]
    # Warm-up calls on the timed batch itself: a first call traces (or, with
    # another shape, retraces) and fills the lookup tables.
    tokenize(tf.constant(batch))
    directory = tempfile.mkdtemp(prefix="frontend_bench_")
    module = tf.Module()
    module.frontend = frontend
    module.tokenize = tf.function(
        frontend.tokenize, input_signature=[tf.TensorSpec([None], tf.string)]
    )
    tf.saved_model.save(module, directory)
    # The loaded object owns the tables: keep it, not only its function.
    loaded = tf.saved_model.load(directory)
    saved = loaded.tokenize
    saved(tf.constant(batch))
    text_config = TextConfig(
        tokenizer="phonemes", symbol_set="phonemes-v1", symbols=frontend.symbols
    )
    prepare_tokenizer = tokenizer_from_config(text_config)
    _python_tokens(prepare_tokenizer, batch)
    shards = [batch[i : i + 64] for i in range(0, len(batch), 64)]
    _python_tokens(tokenizer, batch[:10])  # starts espeak-ng
    timings = {}
    for name, run in (
        ("graph_frontend", lambda: tokenize(tf.constant(batch))[1].numpy().sum()),
        ("saved_model", lambda: saved(tf.constant(batch))[1].numpy().sum()),
        ("prepare_frontend_per_shard", lambda: _python_tokens(prepare_tokenizer, *shards)),
        ("phoneme_tokenizer_espeak", lambda: _python_tokens(tokenizer, batch)),
        (
            "phoneme_tokenizer_espeak_per_clip",
            lambda: _python_tokens(tokenizer, *([text] for text in batch)),
        ),
    ):
        start = time.perf_counter()
        ids = run()
        seconds = time.perf_counter() - start
        timings[name] = {"seconds": round(seconds, 2), "ids_per_second": round(ids / seconds)}
    shutil.rmtree(directory, ignore_errors=True)
    return {"sentences": len(batch), **timings}


def _prepare_speed(corpus, clips, reference):
    """Seconds of `prepare` on `clips` clips, with the frontend and with espeak-ng per clip."""
    import contextlib
    import shutil
    import tempfile
    import threading
    from unittest import mock

    import mmae.text
    from mmae.config import Config
    from mmae.datasets import prepare as prepare_module

    class EspeakPerClip(type(reference)):
        """Version 1's prepare: espeak-ng phonemes, one clip per call.

        Version 1 normalized with Python's `re`; here the shard is normalized
        in one call of the frontend, which costs less than that per clip did,
        so the baseline is if anything faster than version 1 was.
        """

        def encode_batch(self, texts, clip_ids=None, errors="raise", return_normalized=False):
            texts = list(texts)
            clip_ids = clip_ids or [None] * len(texts)
            normalized = mmae.text.normalize_texts(texts)
            encoded = [
                super(EspeakPerClip, self).encode_batch([text], [clip_id], errors)[0]
                for text, clip_id in zip(normalized, clip_ids, strict=True)
            ]
            return (encoded, normalized) if return_normalized else encoded

    def espeak_tokenizer(text_config):
        return EspeakPerClip(text_config.symbols, language=text_config.language, normalize=False)

    config = Config.load("flite16k")
    work = tempfile.mkdtemp(prefix="frontend_bench_prepare_")
    try:
        source = os.path.join(work, "corpus")
        os.makedirs(source)
        with open(os.path.join(corpus, "metadata.csv"), encoding="utf-8") as f:
            rows = f.readlines()[:clips]
        with open(os.path.join(source, "metadata.csv"), "w", encoding="utf-8") as f:
            f.writelines(rows)
        os.symlink(os.path.abspath(os.path.join(corpus, "wavs")), os.path.join(source, "wavs"))
        seconds = {"frontend": [], "espeak_per_clip": []}
        for repeat in range(2):
            for name in seconds:
                out = os.path.join(work, f"{name}{repeat}")
                prepare_module._THREAD_STATE = threading.local()
                patch = (
                    mock.patch.object(mmae.text, "tokenizer_from_config", espeak_tokenizer)
                    if name == "espeak_per_clip"
                    else contextlib.nullcontext()
                )
                start = time.perf_counter()
                with patch, warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    prepare_module.prepare(source, out, config, progress=False)
                seconds[name].append(time.perf_counter() - start)
                log(f"prepare {clips} clips, {name}: {seconds[name][-1]:.1f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    best = {name: round(min(values), 2) for name, values in seconds.items()}
    return {
        "corpus": corpus,
        "clips": len(rows),
        "seconds": {name: [round(v, 2) for v in values] for name, values in seconds.items()},
        "best_seconds": best,
        "frontend_vs_espeak_per_clip": round(best["frontend"] / best["espeak_per_clip"], 3),
        "note": "The frontend was traced before (by the speed pass; the trace is cached per "
        "process, about 5 s); each espeak-ng run starts espeak-ng in its threads.",
    }


def _python_tokens(tokenizer, *batches):
    count = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for batch in batches:
            encoded = tokenizer.encode_batch(batch, errors="return")
            count += sum(len(ids) for ids in encoded if not isinstance(ids, Exception))
    return count


def _read_report(pack):
    import json

    path = os.path.join(pack, "report.json")
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def plot(results, path):
    plt = pyplot()
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    held = results["held_out_words"]
    names = ["G2P", "letter names"]
    rows = [held["g2p"], held["spelled_with_letter_names"]]
    keys = ["phoneme_error_rate", "word_error_rate"]
    for i, key in enumerate(keys):
        values = [row[key] for row in rows]
        bars = left.bar([x + 0.4 * i for x in range(len(names))], values, width=0.4, label=key)
        left.bar_label(bars, fmt="%.3f", fontsize=8)
    left.set_xticks([x + 0.2 for x in range(len(names))], names)
    left.set_title(f"{held['words']} held-out words vs espeak-ng")
    left.legend(fontsize=8)
    sources = list(results["sentences"])
    for i, name in enumerate(["g2p", "spelled"]):
        values = [results["sentences"][s][f"equal_ids_{name}"] for s in sources]
        bars = right.bar(
            [x + 0.4 * i for x in range(len(sources))],
            values,
            width=0.4,
            label="with G2P" if name == "g2p" else "spelling unknown words",
        )
        right.bar_label(bars, fmt="%.3f", fontsize=8)
    right.axhline(0.97, color="gray", linestyle="--", linewidth=1, label="target 0.97")
    right.set_xticks([x + 0.2 for x in range(len(sources))], sources)
    right.set_ylim(0, 1.05)
    right.set_title("sentences whose ids equal espeak-ng's")
    right.legend(fontsize=8, loc="lower right")
    save_figure(figure, path)


def summary(results):
    held = results["held_out_words"]["g2p"]
    lines = [
        f"G2P held-out PER {held['phoneme_error_rate']:.4f} "
        f"(without stress {held['phoneme_error_rate_without_stress']:.4f}), "
        f"WER {held['word_error_rate']:.4f}"
    ]
    hyphenated = results.get("hyphenated_words")
    if hyphenated:
        lines.append(
            f"{hyphenated['words']} hyphenated words read as if outside the lexicon: "
            f"{hyphenated['as_one_phrase']:.3f} as espeak-ng as one phrase, "
            f"{hyphenated['part_by_part']:.3f} part by part"
        )
    for source, row in results["sentences"].items():
        lines.append(
            f"{source}: equal ids {row['equal_ids_g2p']:.3f} with G2P, "
            f"{row['equal_ids_spelled']:.3f} spelling; {row['words_outside_lexicon']} of "
            f"{row['words']} words outside the lexicon"
        )
    speech = results.get("speech")
    if speech:
        lines.append(
            f"speech WER: Synthesizer {speech['synthesizer']['wer']:.3f}, SavedModel "
            f"{speech['saved_model']['wer']:.3f} ({speech['saved_model_vs_synthesizer_wer']:.3f}x)"
        )
    prepare = results.get("prepare")
    if prepare:
        lines.append(f"prepare: {prepare['frontend_vs_espeak_per_clip']:.3f}x version 1's time")
    return "\n".join(lines)


BENCHMARK = Benchmark(
    name="frontend_bench",
    doc=__doc__,
    measure=measure,
    plot=plot,
    quick="300 held-out words and 40 sentences a text (smoke test)",
    add_arguments=add_arguments,
    summary=summary,
)

if __name__ == "__main__":
    sys.exit(BENCHMARK.main())
