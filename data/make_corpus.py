"""Build an LJSpeech-format speech corpus with Debian's speech synthesizers.

Sentences come from the usage examples in WordNet 3.0's glosses (package
wordnet-base) or, optionally, from the King James Bible (package bible-kjv).
Each sentence is spoken by one voice of flite or espeak-ng, voices taking
turns, and saved at the synthesizer's native sample rate.

Output, in OUT_DIR:

    metadata.csv    id|text|text rows, as in LJSpeech (ids like slt_00001)
    wavs/<id>.flac  one clip per row (or .wav / .ogg, see --format)
    manifest.csv    wavs/<id>.<ext>|text|speaker rows, only with several voices
    corpus.json     the arguments, text source and licenses, counts, duration
    LICENSE.txt     the text's license notice (WordNet asks for it on every copy)

The build is resumable: clips already on disk and readable are kept (so resume
with the same arguments), and each clip is written under a temporary name and
renamed when complete. The same arguments give the same bytes: flite is
deterministic, and Ogg files get a fixed stream serial number. Numbers and abbreviations are left as
written; normalizing them is the job of the text front end.

Example (the sample corpus committed in data/sample):

    python data/make_corpus.py data/sample --num-clips 260 --voices slt --format ogg

Uses only the standard library, numpy, soundfile and tqdm.
"""

import argparse
import concurrent.futures
import dataclasses
import io
import json
import os
import random
import re
import shlex
import shutil
import string
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

WORDNET_DIR = Path("/usr/share/wordnet")
WORDNET_FILES = ("data.noun", "data.verb", "data.adj", "data.adv")

ENGINES = {
    "flite": {"package": "flite", "default_voice": "slt"},
    "espeak-ng": {"package": "espeak-ng", "default_voice": "en-us"},
}

TEXT_SOURCES = {
    "wordnet": {
        "description": "usage examples from the glosses of WordNet 3.0",
        "package": "wordnet-base",
        "license": "WordNet 3.0 license, Copyright 2006 by Princeton University: "
        "permission to use, copy, modify and distribute for any purpose, "
        "without fee, keeping the copyright notice and disclaimer",
    },
    "kjv": {
        "description": "verses of the King James Version of the Bible (1611)",
        "package": "bible-kjv",
        "license": "public domain (in the United Kingdom, Crown rights under letters patent)",
    },
}

AUDIO_LICENSES = {
    "flite": "flite and its CMU voices: CMU license (BSD-style), "
    "Copyright Carnegie Mellon University",
    "espeak-ng": "espeak-ng: GPL-3.0-or-later (the program; its output is not covered)",
}

FORMATS = {"flac": ("FLAC", "PCM_16"), "wav": ("WAV", "PCM_16"), "ogg": ("OGG", "VORBIS")}

ALLOWED_CHARS = frozenset(string.ascii_letters + string.digits + " ',.;:!?-")
FINAL_PUNCTUATION = ".!?"


@dataclasses.dataclass(frozen=True)
class Clip:
    """One sentence to be spoken by one voice into one audio file."""

    id: str
    voice: str
    text: str
    path: Path


# ---------------------------------------------------------------- text


def exit_with(message):
    """Stops the script with an error message (exit status 1)."""
    raise SystemExit(f"make_corpus.py: error: {message}")


def wordnet_examples(wordnet_dir=WORDNET_DIR):
    """Yields the double-quoted usage examples of WordNet's glosses, raw."""
    for name in WORDNET_FILES:
        path = Path(wordnet_dir) / name
        with open(path, encoding="ascii", errors="replace") as lines:
            for line in lines:
                if line.startswith(" ") or " | " not in line:
                    continue  # the license header, or a synset without a gloss
                gloss = line.split(" | ", 1)[1]
                yield from re.findall(r'"([^"]*)"', gloss)


def kjv_verses():
    """Yields the verses of the King James Bible, as printed by `bible`."""
    require_binary("bible", TEXT_SOURCES["kjv"]["package"])
    listing = subprocess.run(
        ["bible", "-f", "Gen1:1-Rev22:21"], capture_output=True, text=True, check=True
    ).stdout
    for line in listing.splitlines():
        _reference, _, verse = line.partition(" ")
        if verse:
            yield verse


def clean_sentence(raw, min_words, max_words):
    """Returns `raw` as a capitalised sentence, or None if it is not a plain one.

    Plain: ASCII letters, digits and basic punctuation only, no quotes within
    it, no dashes or ellipses, starting with a letter or digit, and
    `min_words` to `max_words` words long.
    """
    text = " ".join(raw.split())
    if not text or not text[0].isalnum() or not set(text) <= ALLOWED_CHARS:
        return None
    if ".." in text or " -" in text or "- " in text or " '" in text:
        return None
    if not min_words <= len(text.split()) <= max_words:
        return None
    text = text.rstrip(",;:-")
    if text[-1] not in FINAL_PUNCTUATION:
        text += "."
    return text[0].upper() + text[1:]


def select_sentences(raw_sentences, min_words, max_words, seed):
    """Cleans, deduplicates and shuffles sentences; the same seed, the same order."""
    cleaned = (clean_sentence(raw, min_words, max_words) for raw in raw_sentences)
    sentences = sorted({text for text in cleaned if text is not None})
    random.Random(seed).shuffle(sentences)
    return sentences


def load_sentences(source, min_words, max_words, seed):
    """Returns the shuffled sentences of a text source ("wordnet" or "kjv")."""
    if source == "wordnet":
        if not (WORDNET_DIR / WORDNET_FILES[0]).exists():
            exit_with(
                f"WordNet not found in {WORDNET_DIR}; "
                "install it with: sudo apt-get install wordnet-base"
            )
        raw = wordnet_examples()
    else:
        raw = kjv_verses()
    return select_sentences(raw, min_words, max_words, seed)


# ---------------------------------------------------------------- synthesizers


def require_binary(binary, package):
    """Exits with the apt command to run if `binary` is not on PATH."""
    if shutil.which(binary) is None:
        exit_with(f"{binary} not found on PATH; install it with: sudo apt-get install {package}")


def check_voices(engine, voices):
    """Exits if flite lacks one of `voices` (flite falls back silently otherwise)."""
    if engine != "flite":
        return  # espeak-ng fails loudly on an unknown voice
    listing = subprocess.run(["flite", "-lv"], capture_output=True, text=True, check=False)
    available = listing.stdout.split(":", 1)[-1].split()
    missing = [voice for voice in voices if voice not in available]
    if missing:
        exit_with(f"flite has no voice {', '.join(missing)}; it has {', '.join(available)}")


def engine_version(engine):
    """Returns the synthesizer's version, as it reports it, for corpus.json."""
    output = subprocess.run(
        [engine, "--version"], capture_output=True, text=True, check=False
    ).stdout
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    line = next((line for line in lines if line.startswith("version:")), lines[0] if lines else "")
    return line.removeprefix("version:").split("  Data at:")[0].strip()


def synth_command(engine, voice, text, wav_path):
    """Returns the command line that speaks `text` into the WAV file `wav_path`."""
    if engine == "flite":
        return ["flite", "-voice", voice, "-t", text, "-o", str(wav_path)]
    return ["espeak-ng", "-v", voice, "-w", str(wav_path), text]


# ---------------------------------------------------------------- audio files


def _ogg_crc_table():
    """The table of the Ogg page checksum: CRC-32, polynomial 0x04C11DB7, unreflected."""
    table = []
    for byte in range(256):
        crc = byte << 24
        for _ in range(8):
            crc = (crc << 1) ^ 0x04C11DB7 if crc & 0x80000000 else crc << 1
        table.append(crc & 0xFFFFFFFF)
    return table


OGG_CRC_TABLE = _ogg_crc_table()


def ogg_crc(page):
    """Returns the checksum of an Ogg page whose checksum field is zeroed."""
    crc = 0
    for byte in page:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ OGG_CRC_TABLE[(crc >> 24) ^ byte]
    return crc


def set_ogg_serial(data, serial):
    """Gives every page of an Ogg stream the serial number `serial`.

    libsndfile picks a random serial number for each file it writes; a fixed
    one makes the same audio give the same bytes. Each page's checksum is
    recomputed (bytes 14-17 hold the serial, 22-25 the checksum).
    """
    out = bytearray(data)
    start = 0
    while start < len(out):
        if out[start : start + 4] != b"OggS":
            raise ValueError("not an Ogg stream")
        segments = out[start + 26]
        end = start + 27 + segments + sum(out[start + 27 : start + 27 + segments])
        out[start + 14 : start + 18] = serial.to_bytes(4, "little")
        out[start + 22 : start + 26] = bytes(4)
        out[start + 22 : start + 26] = ogg_crc(out[start:end]).to_bytes(4, "little")
        start = end
    return bytes(out)


def encode(audio, rate, audio_format, serial):
    """Returns the bytes of `audio` in `audio_format` (an Ogg stream gets `serial`)."""
    major, subtype = FORMATS[audio_format]
    buffer = io.BytesIO()
    sf.write(buffer, audio, rate, format=major, subtype=subtype)
    data = buffer.getvalue()
    return set_ogg_serial(data, serial) if audio_format == "ogg" else data


# ---------------------------------------------------------------- synthesis


def synthesize(clip, engine, audio_format):
    """Speaks one clip and saves it in `audio_format`, renaming it into place."""
    with tempfile.TemporaryDirectory(prefix="make_corpus_") as scratch:
        wav_path = Path(scratch) / "clip.wav"
        command = synth_command(engine, clip.voice, clip.text, wav_path)
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0 or not wav_path.exists():
            raise RuntimeError(f"{engine} failed on {clip.id}: {result.stderr.strip()}")
        audio, rate = sf.read(wav_path, dtype="int16")
    partial = clip.path.with_name(clip.path.name + ".tmp")
    partial.write_bytes(encode(audio, rate, audio_format, zlib.crc32(clip.id.encode())))
    os.replace(partial, clip.path)


def is_done(path):
    """True if `path` is a readable audio file with some audio in it."""
    try:
        return sf.info(path).frames > 0
    except (sf.LibsndfileError, RuntimeError, OSError):
        return False


def plan_clips(sentences, voices, out_dir, audio_format):
    """Gives sentence i to voice i mod len(voices); ids are voice_NNNNN (N = i + 1)."""
    clips = []
    for i, text in enumerate(sentences):
        voice = voices[i % len(voices)]
        clip_id = f"{voice}_{i + 1:05d}"
        path = out_dir / "wavs" / f"{clip_id}.{audio_format}"
        clips.append(Clip(id=clip_id, voice=voice, text=text, path=path))
    return clips


def synthesize_all(clips, engine, audio_format, jobs):
    """Synthesizes the clips not yet on disk, `jobs` synthesizers at a time."""
    todo = [clip for clip in clips if not is_done(clip.path)]
    if len(todo) < len(clips):
        print(f"{len(clips) - len(todo)} of {len(clips)} clips already done.", file=sys.stderr)
    # Threads are enough: each one waits on its own synthesizer process.
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(synthesize, clip, engine, audio_format) for clip in todo]
        try:
            with tqdm(total=len(futures), unit="clip", desc=engine) as progress:
                for future in concurrent.futures.as_completed(futures):
                    future.result()
                    progress.update()
        except RuntimeError as error:
            pool.shutdown(cancel_futures=True)
            exit_with(str(error))
        except KeyboardInterrupt:
            pool.shutdown(cancel_futures=True)
            exit_with("interrupted; run the same command again to resume")


# ---------------------------------------------------------------- output


def write_rows(path, rows):
    """Writes pipe-separated rows (no quoting, as LJSpeech) with a final newline."""
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        out.writelines("|".join(row) + "\n" for row in rows)


def write_metadata(out_dir, clips):
    """Writes LJSpeech's metadata.csv: id|text|normalized text (here the same)."""
    write_rows(out_dir / "metadata.csv", [(clip.id, clip.text, clip.text) for clip in clips])


def write_manifest(out_dir, clips):
    """Writes manifest.csv: path relative to out_dir|text|speaker."""
    rows = [(clip.path.relative_to(out_dir).as_posix(), clip.text, clip.voice) for clip in clips]
    write_rows(out_dir / "manifest.csv", rows)


def corpus_summary(args, argv, clips):
    """Returns what corpus.json records: arguments, sources, licenses, counts."""
    infos = [sf.info(clip.path) for clip in clips]
    seconds = [info.frames / info.samplerate for info in infos]
    return {
        "command": shlex.join(["python", "data/make_corpus.py", *argv]),
        "arguments": {
            key: (str(value) if isinstance(value, Path) else value)
            for key, value in vars(args).items()
        },
        "text_source": {"name": args.text, **TEXT_SOURCES[args.text]},
        "synthesizer": {
            "engine": args.engine,
            "version": engine_version(args.engine),
            "package": ENGINES[args.engine]["package"],
            "license": AUDIO_LICENSES[args.engine],
        },
        "num_clips": len(clips),
        "clips_per_voice": {voice: sum(c.voice == voice for c in clips) for voice in args.voices},
        "sample_rates": sorted({info.samplerate for info in infos}),
        "total_duration_seconds": round(float(np.sum(seconds)), 3),
        "total_duration_hours": round(float(np.sum(seconds)) / 3600, 4),
    }


def write_corpus_json(out_dir, summary):
    """Writes corpus.json, with sorted keys so that it is byte-stable."""
    text = json.dumps(summary, indent=2, sort_keys=True) + "\n"
    (out_dir / "corpus.json").write_text(text, encoding="utf-8")


# ---------------------------------------------------------------- main


def parse_args(argv):
    """Parses the command line; fills in the engine's default voice."""
    parser = argparse.ArgumentParser(
        description="Build an LJSpeech-format corpus with flite or espeak-ng.",
        epilog="Example: python data/make_corpus.py corpora/flite4 --num-clips 2000 "
        "--voices slt rms awb kal16 --skip-first 260",
    )
    parser.add_argument("out_dir", type=Path, metavar="OUT_DIR")
    parser.add_argument("--num-clips", type=int, required=True, help="number of clips to make")
    parser.add_argument(
        "--voices",
        nargs="+",
        help="voices, taking turns (default: slt for flite, en-us for espeak-ng)",
    )
    parser.add_argument("--engine", choices=sorted(ENGINES), default="flite")
    parser.add_argument("--text", choices=sorted(TEXT_SOURCES), default="wordnet")
    parser.add_argument("--format", choices=sorted(FORMATS), default="flac")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sentence shuffle")
    parser.add_argument("--jobs", type=int, default=2, help="synthesizers run at once")
    parser.add_argument("--min-words", type=int, default=5)
    parser.add_argument("--max-words", type=int, default=20)
    parser.add_argument(
        "--skip-first",
        type=int,
        default=0,
        metavar="K",
        help="skip the first K shuffled sentences (to stay disjoint from a "
        "corpus made with the same seed)",
    )
    args = parser.parse_args(argv)
    if args.voices is None:
        args.voices = [ENGINES[args.engine]["default_voice"]]
    if args.num_clips < 1 or args.jobs < 1 or args.skip_first < 0:
        parser.error("--num-clips and --jobs must be positive, --skip-first not negative")
    if not 1 <= args.min_words <= args.max_words:
        parser.error("need 1 <= --min-words <= --max-words")
    if len(set(args.voices)) != len(args.voices):
        parser.error("--voices lists a voice twice")
    return args


def write_license(out_dir, text_source, engine):
    """Writes LICENSE.txt: the text's license notice, which must travel with every copy."""
    notice = [f"Text: {TEXT_SOURCES[text_source]['description']}.", ""]
    copyright_file = Path("/usr/share/doc") / TEXT_SOURCES[text_source]["package"] / "copyright"
    if text_source == "wordnet" and copyright_file.exists():
        # The WordNet 3.0 license paragraph of Debian's copyright file, verbatim.
        block = copyright_file.read_text(encoding="utf-8").split("License: WordNet3.0\n", 1)[1]
        block = block.split("\n\n", 1)[0]
        notice += [line[1:] if line != " ." else "" for line in block.splitlines()]
    else:
        notice.append(TEXT_SOURCES[text_source]["license"])
    notice += ["", f"Audio: synthesized with {AUDIO_LICENSES[engine]}."]
    (out_dir / "LICENSE.txt").write_text("\n".join(notice) + "\n", encoding="utf-8")


def main(argv=None):
    """Builds the corpus described by the command line `argv`."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    require_binary(args.engine, ENGINES[args.engine]["package"])
    check_voices(args.engine, args.voices)

    sentences = load_sentences(args.text, args.min_words, args.max_words, args.seed)
    wanted = sentences[args.skip_first : args.skip_first + args.num_clips]
    if len(wanted) < args.num_clips:
        exit_with(
            f"only {len(sentences)} sentences of {args.min_words} to {args.max_words} "
            f"words in {args.text}; cannot skip {args.skip_first} and make "
            f"{args.num_clips} clips"
        )

    (args.out_dir / "wavs").mkdir(parents=True, exist_ok=True)
    clips = plan_clips(wanted, args.voices, args.out_dir, args.format)
    synthesize_all(clips, args.engine, args.format, args.jobs)

    write_metadata(args.out_dir, clips)
    if len(args.voices) > 1:
        write_manifest(args.out_dir, clips)
    summary = corpus_summary(args, argv, clips)
    write_corpus_json(args.out_dir, summary)
    write_license(args.out_dir, args.text, args.engine)
    print(
        f"{summary['num_clips']} clips, {summary['total_duration_seconds'] / 60:.1f} min, "
        f"in {args.out_dir}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
