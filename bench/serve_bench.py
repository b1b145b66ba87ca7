"""`mmae serve` under load: time to first audio, latency and throughput, batched and not.

    .venv/bin/python -m bench.serve_bench [--quick] [--run RUN]

Starts `mmae serve` (the bundled model, or `--run`) on 127.0.0.1 three times:
as it runs by default (batching, `--max-batch 8 --max-wait-ms 5`, and two
model calls at once, `--workers 2`), unbatched with two workers
(`--max-batch 1 --workers 2`), and unbatched with one (`--max-batch 1
--workers 1`: one sentence at a time, as Coqui's tts-server speaks), all
with a queue of `--max-queue` sentences. For each, a load generator runs 1, 4, 16 and 64 concurrent clients. Each client
sends its requests one after another, streamed 16-bit PCM, and reads every
byte; requests alternate between one sentence and a paragraph of five (the
held-out texts of data/sample). A level ends after `--requests-per-client`
requests per client or `--seconds` of load, whichever is first; every
request then in flight still completes. Per level it records:

- time to first audio (the first PCM bytes) of one-sentence requests and of
  paragraphs: p50, p95, p99;
- whole-response latency (p50, p95, p99);
- throughput in seconds of audio per second of wall time;
- errors (any status but 200, or a broken stream), by kind.

Targets (issue 16): one-sentence time to first audio p50 <= 150 ms at 1
client; a paragraph's within 1.5x of a one-sentence request's (streaming);
throughput at 16 clients at least 2x the unbatched server's (one sentence at
a time; the ratio to two unbatched workers is recorded too); no errors
below the queue limit (the servers get `--max-queue 1024` sentences, above
what 64 clients queue; the default of `mmae serve` is 256). Writes bench/results/serve_bench.json and .png.
"""

import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import time

from bench.harness import REPO, Benchmark, pyplot, save_figure

LEVELS = (1, 4, 16, 64)


def add_arguments(parser):
    parser.add_argument("--run", default=None, help="a training run (default: the bundled model)")
    parser.add_argument("--requests-per-client", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=60.0, help="most load time per level")
    parser.add_argument("--max-batch", type=int, default=8, help="the batched server's")
    parser.add_argument("--max-wait-ms", type=float, default=5.0, help="the batched server's")
    parser.add_argument("--workers", type=int, default=2, help="the batched server's")
    parser.add_argument("--levels", type=int, nargs="+", default=list(LEVELS))
    parser.add_argument(
        "--max-queue",
        type=int,
        default=1024,
        help="the servers' queue (sentences), above what 64 clients ever queue",
    )


def texts():
    """(one sentence, paragraph) pairs from data/sample's held-out sentences."""
    with open(os.path.join(REPO, "data", "sample", "metadata.csv"), encoding="utf-8") as f:
        sentences = [line.split("|")[1].strip() for line in f][-40:]
    sentences = [s if s.endswith((".", "?", "!")) else s + "." for s in sentences]
    return sentences[:20], [" ".join(sentences[20 + i : 25 + i]) for i in range(0, 15, 5)]


def measure(args):
    levels = (1, 4) if args.quick else tuple(args.levels)
    per_client = 2 if args.quick else args.requests_per_client
    results = {"levels": list(levels), "requests_per_client": per_client, "modes": {}}
    modes = {
        "batched": (args.max_batch, args.workers),
        "unbatched_two_workers": (1, 2),
        "unbatched": (1, 1),
    }
    for mode, (max_batch, workers) in modes.items():
        options = ["--max-batch", str(max_batch), "--workers", str(workers)]
        options += ["--max-queue", str(args.max_queue), "--max-wait-ms", str(args.max_wait_ms)]
        with _server(args.run, options) as url:
            rows = {}
            for clients in levels:
                rows[str(clients)] = asyncio.run(_load(url, clients, per_client, args.seconds))
                print(f"{mode} {clients} clients: {_line(rows[str(clients)])}", flush=True)
            results["modes"][mode] = {"max_batch": max_batch, "workers": workers, "levels": rows}
    batched, two_workers, unbatched = (results["modes"][m]["levels"] for m in modes)
    results["model_calls"] = _model_calls(args.run)
    one = batched[str(levels[0])]
    top = str(16 if 16 in levels else levels[-1])
    results["targets"] = {
        "sentence_first_audio_p50_ms_at_1_client": one["first_audio_ms"]["sentence"]["p50"],
        "paragraph_over_sentence_first_audio_p50": round(
            one["first_audio_ms"]["paragraph"]["p50"] / one["first_audio_ms"]["sentence"]["p50"], 2
        ),
        f"throughput_batched_over_unbatched_at_{top}_clients": round(
            batched[top]["audio_seconds_per_second"] / unbatched[top]["audio_seconds_per_second"], 2
        ),
        f"throughput_batched_over_two_unbatched_workers_at_{top}_clients": round(
            batched[top]["audio_seconds_per_second"] / two_workers[top]["audio_seconds_per_second"],
            2,
        ),
        "errors": sum(
            row["errors"]["total"] for m in (batched, two_workers, unbatched) for row in m.values()
        ),
    }
    targets = results["targets"]
    results["targets_met"] = {
        "first_audio_p50_at_most_150_ms": targets["sentence_first_audio_p50_ms_at_1_client"] <= 150,
        "paragraph_within_1.5x": targets["paragraph_over_sentence_first_audio_p50"] <= 1.5,
        "batching_at_least_2x": targets[f"throughput_batched_over_unbatched_at_{top}_clients"] >= 2,
        "no_errors": targets["errors"] == 0,
    }
    return results


def _model_calls(run, repeats=4):
    """Seconds per 16 sentences, and cores kept busy, by batch size and threads at once.

    In this process, outside any server: the 16 one-sentence texts sorted by
    length, spoken by the Synthesizer in batches of 1 or 8, by one thread or
    two threads at once. It shows what a second model worker buys.
    """
    import resource
    import threading

    from mmae.synthesis import Synthesizer

    synthesizer = Synthesizer.from_run(run) if run else Synthesizer.from_pretrained()
    tokens = sorted((synthesizer.tokenizer.encode(t) for t in texts()[0][:16]), key=len)

    def cpu_seconds():
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    rows = {}
    for batch in (1, 8):
        groups = [tokens[i : i + batch] for i in range(0, len(tokens), batch)]
        for group in groups:  # traces
            synthesizer.synthesize_tokens(group)
        for threads in (1, 2):

            def speak(groups=groups):
                for _ in range(repeats):
                    for group in groups:
                        synthesizer.synthesize_tokens(group)

            workers = [threading.Thread(target=speak) for _ in range(threads)]
            started, cpu = time.perf_counter(), cpu_seconds()
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
            wall = time.perf_counter() - started
            name = f"batch_{batch}_threads_{threads}"
            rows[name] = {
                "seconds_per_16_sentences": round(wall / (repeats * threads), 3),
                "cores_busy": round((cpu_seconds() - cpu) / wall, 2),
            }
            print(f"model calls, {name}: {rows[name]}", flush=True)
    return rows


class _server:
    """`mmae serve` in a process of its own, on a free port, until the block ends."""

    def __init__(self, run, options):
        self.run, self.options = run, options

    def __enter__(self):
        import httpx

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        command = [sys.executable, "-m", "mmae.cli", "serve", "--port", str(port)]
        command += self.options
        if self.run:
            command += ["--run", self.run]
        self.process = subprocess.Popen(
            command,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": REPO},
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 300
        while True:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mmae serve did not start: {' '.join(command)}")
            try:
                if httpx.get(url + "/health").status_code == 200:
                    return url
            except httpx.TransportError:
                time.sleep(0.2)

    def __exit__(self, *exc):
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()


async def _load(url, clients, per_client, seconds):
    import httpx

    sentences, paragraphs = texts()
    records = []
    stop_at = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients + 4)
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as http:

        async def client(index):
            for number in range(per_client):
                if time.perf_counter() > stop_at:
                    return
                kind = "sentence" if (index + number) % 2 == 0 else "paragraph"
                pool = sentences if kind == "sentence" else paragraphs
                text = pool[(index * per_client + number) % len(pool)]
                records.append(await _request(http, kind, text))

        started = time.perf_counter()
        await asyncio.gather(*(client(i) for i in range(clients)))
        wall = time.perf_counter() - started
    return _summarize(records, wall)


async def _request(http, kind, text):
    body = {"input": text, "response_format": "pcm", "stream": True}
    started = time.perf_counter()
    first, size = None, 0
    try:
        async with http.stream("POST", "/v1/audio/speech", json=body) as response:
            if response.status_code != 200:
                await response.aread()
                return {"kind": kind, "error": str(response.status_code)}
            async for chunk in response.aiter_bytes():
                if chunk and first is None:
                    first = time.perf_counter() - started
                size += len(chunk)
    except Exception as error:  # noqa: BLE001 - every failure is counted by its kind
        return {"kind": kind, "error": type(error).__name__}
    return {
        "kind": kind,
        "first_audio_s": first,
        "latency_s": time.perf_counter() - started,
        "audio_s": size / 2 / 16000,
    }


def _percentiles(values):
    if not values:
        return {"p50": None, "p95": None, "p99": None, "n": 0}
    values = sorted(values)

    def at(q):
        return round(1000 * values[min(len(values) - 1, int(q * len(values)))], 1)

    return {
        "p50": round(1000 * statistics.median(values), 1),
        "p95": at(0.95),
        "p99": at(0.99),
        "n": len(values),
    }


def _summarize(records, wall):
    good = [r for r in records if "error" not in r]
    errors = {}
    for record in records:
        if "error" in record:
            errors[record["error"]] = errors.get(record["error"], 0) + 1
    return {
        "requests": len(records),
        "wall_seconds": round(wall, 2),
        "first_audio_ms": {
            kind: _percentiles([r["first_audio_s"] for r in good if r["kind"] == kind])
            for kind in ("sentence", "paragraph")
        },
        "latency_ms": _percentiles([r["latency_s"] for r in good]),
        "audio_seconds_per_second": round(sum(r["audio_s"] for r in good) / wall, 2),
        "errors": {"total": sum(errors.values()), **errors},
    }


def _line(row):
    first = row["first_audio_ms"]
    return (
        f"first audio p50 {first['sentence']['p50']} ms (sentence), "
        f"{first['paragraph']['p50']} ms (paragraph); latency p50 {row['latency_ms']['p50']} ms; "
        f"{row['audio_seconds_per_second']} audio-s/s; errors {row['errors']['total']}"
    )


def summary(results):
    return "\n".join(f"{k}: {v}" for k, v in results["targets"].items())


def plot(results, path):
    figure, axes = pyplot().subplots(1, 3, figsize=(15, 4))
    levels = results["levels"]
    for (mode, data), color in zip(results["modes"].items(), ("C0", "C1", "C2"), strict=False):
        rows = [data["levels"][str(level)] for level in levels]
        for kind, style in (("sentence", "-"), ("paragraph", "--")):
            axes[0].plot(
                levels,
                [r["first_audio_ms"][kind]["p50"] for r in rows],
                style,
                color=color,
                marker="o",
                label=f"{mode}, {kind}",
            )
        axes[1].plot(
            levels, [r["latency_ms"]["p50"] for r in rows], color=color, marker="o", label=mode
        )
        axes[2].plot(
            levels,
            [r["audio_seconds_per_second"] for r in rows],
            color=color,
            marker="o",
            label=mode,
        )
    axes[0].axhline(150, color="gray", linestyle=":", label="target (1 client)")
    titles = (
        "time to first audio, p50 (ms)",
        "whole-response latency, p50 (ms)",
        "throughput (audio s / s)",
    )
    for axis, title in zip(axes, titles, strict=True):
        axis.set(title=title, xlabel="concurrent clients", xscale="log")
        axis.set_xticks(levels, [str(level) for level in levels])
        axis.legend(fontsize=8)
    figure.suptitle("mmae serve on 127.0.0.1 (bundled model, streamed PCM)")
    figure.tight_layout()
    save_figure(figure, path)


BENCHMARK = Benchmark(
    name="serve_bench",
    doc=__doc__,
    measure=measure,
    plot=plot,
    quick="1 and 4 clients, 2 requests each (smoke test)",
    add_arguments=add_arguments,
    summary=summary,
)

if __name__ == "__main__":
    sys.exit(BENCHMARK.main())
