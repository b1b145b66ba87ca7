"""The HTTP app of `mmae serve` (Starlette, run by uvicorn).

Endpoints:

- `POST /v1/audio/speech`: OpenAI's speech API. JSON fields `input`,
  `voice` (a name or id of `GET /voices`; every model answers to
  "default"), `speed` (0.25 to 4.0), `response_format` ("wav", "pcm",
  "flac"; default "wav"), `stream` (default true: WAV and PCM arrive
  sentence by sentence as they are spoken; false, and FLAC, arrive whole)
  and `model` (accepted, not used: the server has one model).
- `GET|POST /api/tts?text=...&speaker_id=...`: Coqui TTS's `tts-server`; a
  whole WAV.
- `GET /voices`, `GET /health`, `GET /metrics` (Prometheus text format).
- `GET /`: a page to type a sentence and hear it while it streams.

Bad input never gets a 500: text over `max_characters` gets 413 with the
limit; a text with nothing to say once normalized (empty, spaces, emoji)
gets 422; malformed JSON, an unknown voice or format, or a speed out of
range gets 400 naming the field; a full queue gets 503 with Retry-After.
Errors are JSON: `{"error": {"message", "type", "param"}}`, as OpenAI's.
"""

import asyncio
import contextlib
import importlib.resources
import json
import logging
import time

import anyio
import numpy as np
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.applications import Starlette
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from mmae.serving.audio_formats import MEDIA_TYPES, STREAMABLE, encode, pcm16, wav_header
from mmae.serving.engine import QueueFullError

logger = logging.getLogger("mmae.serve")

SPEED_RANGE = (0.25, 4.0)
_ENDPOINTS = ("/v1/audio/speech", "/api/tts", "/voices", "/health", "/metrics", "/")
_LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class RequestError(Exception):
    """A request the server refuses, with its HTTP status and the field at fault."""

    def __init__(self, status, message, param=None, headers=None):
        super().__init__(message)
        self.status, self.message, self.param, self.headers = status, message, param, headers

    def response(self):
        kind = "server_busy" if self.status == 503 else "invalid_request_error"
        body = {"error": {"message": self.message, "type": kind, "param": self.param}}
        return JSONResponse(body, status_code=self.status, headers=self.headers)


class Metrics:
    """The server's Prometheus metrics, in a registry of its own."""

    def __init__(self, engine):
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "mmae_requests",
            "HTTP requests by endpoint and status.",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "mmae_request_seconds",
            "Whole-response latency of speech requests.",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.first_audio = Histogram(
            "mmae_time_to_first_audio_seconds",
            "From a speech request's arrival to its first audio bytes.",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.audio_seconds = Counter(
            "mmae_audio_seconds", "Seconds of audio produced.", registry=self.registry
        )
        self.queue = Gauge(
            "mmae_queue_depth", "Sentences waiting or being spoken.", registry=self.registry
        )
        self.queue.set_function(lambda: engine.queue_depth)


class SpeechService:
    """What the endpoints share: the engine, the voices, the limits and the metrics."""

    def __init__(self, engine, max_characters=4096):
        self.engine = engine
        self.backend = engine.backend
        self.voices = self.backend.speakers
        self.max_characters = max_characters
        self.sample_rate = self.backend.sample_rate
        self.metrics = Metrics(engine)
        self._pause = np.zeros(
            [int(round(self.backend.pause_seconds * self.sample_rate))], np.float32
        )

    # -- checks ----------------------------------------------------------

    def speaker_id(self, voice, param="voice"):
        if voice is None or voice == "" or voice == "default":
            return 0
        if isinstance(voice, str) and voice in self.voices:
            return self.voices.index(voice)
        if isinstance(voice, (int, str)) and str(voice).isdigit() and int(voice) < len(self.voices):
            return int(voice)
        names = ", ".join(repr(v) for v in ["default", *self.voices] if v)
        raise RequestError(400, f"Unknown {param} {voice!r}; this model has: {names}.", param)

    def check_text(self, text, param):
        if not isinstance(text, str):
            raise RequestError(400, f"'{param}' must be a string of text to speak.", param)
        if len(text) > self.max_characters:
            raise RequestError(
                413,
                f"'{param}' has {len(text)} characters; this server speaks at most "
                f"{self.max_characters} in one request.",
                param,
            )

    async def sentences(self, text, param):
        """Tokenized off the event loop; 422 when nothing is left to say."""
        items = await anyio.to_thread.run_sync(self.backend.sentences, text)
        if not items:
            raise RequestError(
                422,
                f"'{param}' has nothing to say once normalized (no letters or digits the "
                "model reads): empty, spaces, or only symbols such as emoji.",
                param,
            )
        return items

    def submit(self, items, speed, speaker_id):
        try:
            return self.engine.submit(items, speed, speaker_id)
        except QueueFullError as error:
            raise RequestError(503, str(error), None, {"Retry-After": "1"}) from None

    # -- responses -------------------------------------------------------

    async def speak(self, text, speed, speaker_id, response_format, stream, param):
        started = time.perf_counter()
        items = await self.sentences(text, param)
        futures = self.submit(items, speed, speaker_id)
        media_type = MEDIA_TYPES[response_format]
        if stream and response_format in STREAMABLE:
            body = self._stream(futures, response_format, started)
            return StreamingResponse(body, media_type=media_type)
        try:
            parts = [await asyncio.wrap_future(future) for future in futures]
        finally:
            for future in futures:
                future.cancel()
        audio = self._join(parts)
        # A whole response's first audio is all of it.
        self._measured(started, time.perf_counter(), audio.size)
        return Response(encode(audio, self.sample_rate, response_format), media_type=media_type)

    async def _stream(self, futures, response_format, started):
        first = None
        samples = 0
        try:
            if response_format == "wav":
                yield wav_header(self.sample_rate)
            for index, future in enumerate(futures):
                audio = await asyncio.wrap_future(future)
                chunk = audio if index == 0 else np.concatenate([self._pause, audio])
                samples += chunk.size
                first = first or time.perf_counter()
                yield pcm16(chunk)
        finally:
            # A client that went away frees the sentences not yet spoken.
            for future in futures:
                future.cancel()
            self._measured(started, first, samples)

    def _join(self, parts):
        joined = [parts[0]]
        for part in parts[1:]:
            joined += [self._pause, part]
        return np.concatenate(joined).astype(np.float32)

    def _measured(self, started, first, samples):
        now = time.perf_counter()
        self.metrics.latency.observe(now - started)
        if first is not None:
            self.metrics.first_audio.observe(first - started)
        self.metrics.audio_seconds.inc(samples / self.sample_rate)


# -- endpoints -------------------------------------------------------------


async def openai_speech(request):
    service = request.app.state.service
    try:
        body = json.loads(await request.body() or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RequestError(400, f"The request body is not valid JSON: {error}.", "body") from None
    if not isinstance(body, dict):
        raise RequestError(400, "The request body must be a JSON object.", "body")
    if "input" not in body:
        raise RequestError(400, "'input' is required: the text to speak.", "input")
    text = body["input"]
    service.check_text(text, "input")
    speaker_id = service.speaker_id(body.get("voice"))
    response_format = body.get("response_format") or "wav"
    if response_format not in MEDIA_TYPES:
        raise RequestError(
            400,
            f"Unknown response_format {response_format!r}; this server writes "
            f"{', '.join(MEDIA_TYPES)}.",
            "response_format",
        )
    speed = body.get("speed", 1.0)
    if (
        isinstance(speed, bool)
        or not isinstance(speed, (int, float))
        or not (SPEED_RANGE[0] <= speed <= SPEED_RANGE[1])
    ):
        raise RequestError(
            400,
            f"'speed' must be a number from {SPEED_RANGE[0]} to {SPEED_RANGE[1]}, got {speed!r}.",
            "speed",
        )
    if speed != 1 and not service.backend.supports_speed:
        raise RequestError(
            400, "'speed' must be 1 with a SavedModel: its signature takes text only.", "speed"
        )
    stream = body.get("stream", True)
    if not isinstance(stream, bool):
        raise RequestError(400, f"'stream' must be true or false, got {stream!r}.", "stream")
    return await service.speak(text, float(speed), speaker_id, response_format, stream, "input")


async def coqui_tts(request):
    """Coqui TTS's `tts-server` API: the text and speaker in the query (or a form), a WAV back."""
    service = request.app.state.service
    values = dict(request.query_params)
    if request.method == "POST":
        values.update(await request.form())
    text = values.get("text")
    if text is None:
        raise RequestError(400, "'text' is required: the text to speak.", "text")
    service.check_text(text, "text")
    speaker_id = service.speaker_id(values.get("speaker_id") or None, "speaker_id")
    return await service.speak(text, 1.0, speaker_id, "wav", False, "text")


async def list_voices(request):
    service = request.app.state.service
    listed = [{"id": i, "name": name or "default"} for i, name in enumerate(service.voices)]
    return JSONResponse({"voices": listed, "default": listed[0]["name"]})


async def health(request):
    service = request.app.state.service
    return JSONResponse(
        {
            "status": "ok",
            "queue_depth": service.engine.queue_depth,
            "sample_rate": service.sample_rate,
        }
    )


async def metrics(request):
    registry = request.app.state.service.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


async def page(request):
    html = importlib.resources.files("mmae.serving").joinpath("page.html").read_text("utf-8")
    return HTMLResponse(html)


class _RequestLog:
    """ASGI middleware: one log line and one metric per request, errors as JSON."""

    def __init__(self, app, service):
        self.app, self.service = app, service

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = {}

        async def sending(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            code = status.get("code", 499)  # none sent: the client left first
            endpoint = scope["path"] if scope["path"] in _ENDPOINTS else "other"
            self.service.metrics.requests.labels(endpoint, str(code)).inc()
            logger.info(
                "%s %s %d %.0f ms",
                scope["method"],
                scope["path"],
                code,
                1000 * (time.perf_counter() - started),
            )


def create_app(engine, max_characters=4096, warm_up=True):
    """The Starlette app over a `SpeechEngine`; its lifespan starts the engine and stops it."""
    service = SpeechService(engine, max_characters)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        engine.start()
        if warm_up:
            await anyio.to_thread.run_sync(engine.warm_up)
        yield
        await anyio.to_thread.run_sync(engine.stop)

    async def refused(request, error):
        return error.response()

    app = Starlette(
        routes=[
            Route("/v1/audio/speech", openai_speech, methods=["POST"]),
            Route("/api/tts", coqui_tts, methods=["GET", "POST"]),
            Route("/voices", list_voices),
            Route("/health", health),
            Route("/metrics", metrics),
            Route("/", page),
        ],
        exception_handlers={RequestError: refused},
        lifespan=lifespan,
    )
    app.state.service = service
    app.add_middleware(_RequestLog, service=service)
    return app
