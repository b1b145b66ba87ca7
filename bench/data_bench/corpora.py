"""The corpora the data benchmarks run on, all made from data/sample (or found in corpora/)."""

import os

from bench.harness import REPO

SAMPLE = os.path.join(REPO, "data", "sample")
CORPORA = os.path.join(REPO, "corpora")
# Git-ignored: a bigger corpus is prepared here once and reused by later runs.
WORK = os.path.join(REPO, "bench", "work")


def sample_rows():
    """(clip_id, metadata row, audio file name) for every clip of data/sample."""
    with open(os.path.join(SAMPLE, "metadata.csv"), encoding="utf-8") as f:
        rows = f.read().splitlines()
    names = {os.path.splitext(n)[0]: n for n in os.listdir(os.path.join(SAMPLE, "wavs"))}
    return [(row.split("|")[0], row, names[row.split("|")[0]]) for row in rows if row]


def write_corpus(root, rows):
    """An LJSpeech-layout corpus of (clip_id, metadata row, sample file) with symlinked audio."""
    os.makedirs(os.path.join(root, "wavs"), exist_ok=True)
    for clip_id, _, name in rows:
        link = os.path.join(root, "wavs", clip_id + os.path.splitext(name)[1])
        if not os.path.lexists(link):
            os.symlink(os.path.join(SAMPLE, "wavs", name), link)
    with open(os.path.join(root, "metadata.csv"), "w", encoding="utf-8") as f:
        f.write("\n".join(row for _, row, _ in rows) + "\n")
    return root


def subset_corpus(root, count):
    """The first `count` clips of data/sample."""
    return write_corpus(root, sample_rows()[:count])


def repeated_corpus(root, factor):
    """data/sample `factor` times over, each copy of a clip under its own id."""
    rows = []
    for copy in range(factor):
        for clip_id, row, name in sample_rows():
            new_id = f"{clip_id}_x{copy}"
            rows.append((new_id, new_id + row[len(clip_id) :], name))
    return write_corpus(root, rows)


def find_bigger_corpus():
    """The corpus under corpora/ with the most rows, if it has more than the sample."""
    if not os.path.isdir(CORPORA):
        return None
    best, best_rows = None, 260
    for name in sorted(os.listdir(CORPORA)):
        root = os.path.join(CORPORA, name)
        for listing in ("manifest.csv", "metadata.csv"):
            path = os.path.join(root, listing)
            if os.path.isfile(path):
                with open(path, encoding="utf-8") as f:
                    rows = sum(1 for line in f if line.strip())
                if rows > best_rows:
                    best, best_rows = root, rows
                break
    return best


def corpus_stats(corpus, summary):
    """Clip, shard and audio counts of `corpus`, as `prepare` returned `summary` for it."""
    from mmae.audio.io import audio_info
    from mmae.datasets.readers import read_corpus

    utterances, _ = read_corpus(corpus)
    splits = summary["splits"].values()
    return {
        "num_clips": len(utterances),
        "num_kept": sum(s["num_clips"] for s in splits),
        "num_skipped": len(summary["skipped"]),
        "num_shards": sum(len(s["shards"]) for s in splits),
        "source_audio_s": round(sum(audio_info(u.audio_path).duration for u in utterances), 1),
        "kept_audio_s_after_trim": round(sum(s["hours"] for s in splits) * 3600.0, 1),
    }
