"""`mmae serve`: the batching engine, the HTTP API (OpenAI's and Coqui's), limits and bad input."""

import io
import json
import os
import socket
import threading
import time

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")

import soundfile  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from mmae.serving import QueueFullError, SpeechEngine, create_app  # noqa: E402
from mmae.synthesis import split_sentences  # noqa: E402


class FakeBackend:
    """A backend (`mmae.serving.backends`) that reads characters and gives 100 samples each."""

    sample_rate = 16000
    pause_seconds = 0.25
    speakers = ["default"]
    supports_speed = True

    def __init__(self, delay=0.0):
        self.delay = delay
        self.batches = []
        self.running = []  # (batch, the other batches running when it started)
        self._lock = threading.Lock()
        self._now = []

    def sentences(self, text):
        return [s for s in split_sentences(text) if any(c.isalnum() for c in s)]

    def speak(self, items, speaking_rate, speaker_ids):
        lengths = [len(item) for item in items]
        with self._lock:
            self.batches.append(lengths)
            self.running.append((lengths, list(self._now)))
            self._now.append(lengths)
        time.sleep(self.delay)
        with self._lock:
            self._now.remove(lengths)
        return [np.full([100 * len(item)], 0.5, np.float32) for item in items]

    def warm_up(self):
        pass


# -- the engine --------------------------------------------------------------


def test_concurrent_sentences_share_a_model_call_and_first_sentences_go_first():
    synthesizer = FakeBackend(delay=0.05)
    with SpeechEngine(synthesizer, workers=1, max_batch=8, max_wait_ms=1) as engine:
        blocker = engine.submit([[1]])  # holds the model while the others queue
        time.sleep(0.01)
        paragraph = engine.submit([[1, 2], [1, 2, 3], [1, 2, 3, 4]])
        others = [engine.submit([[5] * (i + 1)]) for i in range(3)]
        for future in blocker + paragraph + [f for fs in others for f in fs]:
            assert future.result(timeout=10).size > 0
        # After the blocker: the four first sentences together, then the rest.
        assert synthesizer.batches[0] == [1]
        assert sorted(synthesizer.batches[1]) == [1, 2, 2, 3]
        assert sorted(synthesizer.batches[2]) == [3, 4]
        assert paragraph[1].result().size == 300


def test_a_batch_is_the_oldest_sentence_and_those_closest_in_length():
    synthesizer = FakeBackend(delay=0.05)
    with SpeechEngine(synthesizer, workers=1, max_batch=2, max_wait_ms=1) as engine:
        blocker = engine.submit([[1]])
        time.sleep(0.01)
        futures = engine.submit([[1], [1] * 10, [1] * 2, [1] * 9, [1] * 3])
        [future.result(timeout=10) for future in blocker + futures]
        assert synthesizer.batches == [[1], [1], [10, 9], [2, 3]]


def test_two_workers_speak_two_batches_at_once_but_never_later_beside_first_sentences():
    synthesizer = FakeBackend(delay=0.1)
    with SpeechEngine(synthesizer, workers=2, max_batch=1, max_wait_ms=0) as engine:
        paragraph = engine.submit([[1], [1, 2], [1, 2, 3]])
        time.sleep(0.02)
        other = engine.submit([[1] * 4])
        [future.result(timeout=10) for future in paragraph + other]
        running = dict((lengths[0], beside) for lengths, beside in synthesizer.running)
        # The other request's first sentence runs beside the paragraph's first.
        assert running[4] == [[1]]
        # The paragraph's later sentences run only once no first sentence does.
        assert [1] not in running[2] and [4] not in running[2]
        assert engine.queue_depth == 0


def test_without_batching_each_sentence_is_its_own_call():
    synthesizer = FakeBackend()
    with SpeechEngine(synthesizer, workers=1, max_batch=1) as engine:
        futures = engine.submit([[1], [1, 2], [1, 2, 3]])
        [future.result(timeout=10) for future in futures]
        assert synthesizer.batches == [[1], [2], [3]]


def test_a_full_queue_refuses_and_cancelled_sentences_are_not_spoken():
    synthesizer = FakeBackend(delay=0.2)
    with SpeechEngine(synthesizer, workers=1, max_batch=1, max_queue=3) as engine:
        futures = engine.submit([[1], [1, 2], [1, 2, 3]])
        with pytest.raises(QueueFullError, match="full"):
            engine.submit([[1]])
        time.sleep(0.05)
        for future in futures[1:]:
            future.cancel()
        futures[0].result(timeout=10)
        time.sleep(0.3)
        assert synthesizer.batches == [[1]]
        assert engine.queue_depth == 0


# -- the HTTP API, on a fake model ---------------------------------------------


@pytest.fixture
def fake_client():
    synthesizer = FakeBackend()
    engine = SpeechEngine(synthesizer, max_batch=4, max_wait_ms=2)
    app = create_app(engine, max_characters=200, warm_up=False)
    with TestClient(app) as client:
        client.synthesizer = synthesizer
        yield client


def test_speech_streams_as_wav_and_pcm_and_arrives_whole_as_flac(fake_client):
    text = "One two. Three four five."
    wav = fake_client.post("/v1/audio/speech", json={"input": text})
    assert wav.status_code == 200 and wav.headers["content-type"] == "audio/wav"
    pcm = fake_client.post("/v1/audio/speech", json={"input": text, "response_format": "pcm"})
    samples = np.frombuffer(pcm.content, "<i2")
    # Two sentences (100 samples a character) with a pause between.
    expected = 100 * (len("One two.") + len("Three four five.")) + 4000
    assert samples.size == expected
    assert wav.content[44:] == pcm.content  # a streaming header, then the same samples
    whole = fake_client.post(
        "/v1/audio/speech", json={"input": text, "response_format": "wav", "stream": False}
    )
    audio, rate = soundfile.read(io.BytesIO(whole.content), dtype="int16")
    assert rate == 16000 and np.array_equal(audio, samples)
    flac = fake_client.post("/v1/audio/speech", json={"input": text, "response_format": "flac"})
    audio, _ = soundfile.read(io.BytesIO(flac.content), dtype="int16")
    assert np.array_equal(audio, samples)


@pytest.mark.parametrize(
    "body, status, param",
    [
        ({"input": "x" * 201}, 413, "input"),
        ({"input": ""}, 422, "input"),
        ({"input": "   \n\t "}, 422, "input"),
        ({"input": "\U0001f600\U0001f680"}, 422, "input"),
        ({}, 400, "input"),
        ({"input": 5}, 400, "input"),
        ({"input": "Hi.", "voice": "alloy"}, 400, "voice"),
        ({"input": "Hi.", "response_format": "mp3"}, 400, "response_format"),
        ({"input": "Hi.", "speed": 9}, 400, "speed"),
        ({"input": "Hi.", "speed": "fast"}, 400, "speed"),
        ({"input": "Hi.", "stream": "yes"}, 400, "stream"),
    ],
)
def test_bad_requests_get_a_4xx_that_names_the_field(fake_client, body, status, param):
    response = fake_client.post("/v1/audio/speech", json=body)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["param"] == param and param in error["message"]
    if status == 413:
        assert "200" in error["message"]  # the limit


def test_malformed_bodies_never_get_a_500(fake_client):
    for content in (b"{", b"[1, 2]", b"null", b"\xff\xfe", b'"text"', b'{"input": null}'):
        response = fake_client.post("/v1/audio/speech", content=content)
        assert 400 <= response.status_code < 500, content
        assert response.json()["error"]["message"]


def test_coqui_voices_health_and_metrics(fake_client):
    response = fake_client.get("/api/tts", params={"text": "Hello there.", "speaker_id": ""})
    audio, rate = soundfile.read(io.BytesIO(response.content))
    assert response.headers["content-type"] == "audio/wav" and rate == 16000 and audio.size
    assert fake_client.get("/api/tts").status_code == 400
    assert fake_client.get("/voices").json()["voices"] == [{"id": 0, "name": "default"}]
    assert fake_client.get("/health").json()["status"] == "ok"
    metrics = fake_client.get("/metrics").text
    for name in (
        'mmae_requests_total{endpoint="/api/tts",status="200"} 1.0',
        "mmae_time_to_first_audio_seconds_bucket",
        "mmae_request_seconds_count",
        "mmae_queue_depth 0.0",
        "mmae_audio_seconds_total",
    ):
        assert name in metrics
    assert "<textarea" in fake_client.get("/").text


def test_a_full_queue_gets_503_with_retry_after():
    engine = SpeechEngine(FakeBackend(), max_queue=1)
    with TestClient(create_app(engine, warm_up=False)) as client:
        response = client.post("/v1/audio/speech", json={"input": "One. Two."})
    assert response.status_code == 503 and response.headers["retry-after"] == "1"


# -- a real server, the bundled model, OpenAI's client -------------------------


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def bundled_server():
    uvicorn = pytest.importorskip("uvicorn")
    from mmae.serving.backends import SynthesizerBackend
    from mmae.synthesis import Synthesizer

    engine = SpeechEngine(SynthesizerBackend(Synthesizer.from_pretrained()))
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(engine), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(30)


def test_openai_client_gets_speech_from_the_bundled_model(bundled_server, tmp_path):
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=bundled_server + "/v1", api_key="not-needed")
    path = tmp_path / "hello.wav"
    with client.audio.speech.with_streaming_response.create(
        model="mmae", voice="default", input="Hello from the server.", response_format="wav"
    ) as response:
        response.stream_to_file(path)
    audio, rate = soundfile.read(path)
    assert rate == 16000 and 0.5 < audio.size / rate < 5 and np.abs(audio).max() > 0.05
    with pytest.raises(openai.BadRequestError, match="voice"):
        client.audio.speech.create(model="mmae", voice="alloy", input="Hello.")
    voices = json.loads(openai.DefaultHttpxClient().get(bundled_server + "/voices").text)
    assert voices["default"] == "default"


def _serve_in_thread(app):
    uvicorn = pytest.importorskip("uvicorn")
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    return server, thread, f"http://127.0.0.1:{port}"


def test_a_client_that_leaves_mid_stream_frees_its_sentences():
    import httpx

    synthesizer = FakeBackend(delay=0.2)
    engine = SpeechEngine(synthesizer, max_batch=1)
    server, thread, url = _serve_in_thread(create_app(engine, warm_up=False))
    try:
        text = " ".join(f"Sentence number {i}." for i in range(8))
        with httpx.stream(
            "POST", url + "/v1/audio/speech", json={"input": text, "response_format": "pcm"}
        ) as response:
            assert response.status_code == 200
            next(response.iter_bytes())  # the first sentence, then the client goes
        time.sleep(1.0)
        assert len(synthesizer.batches) <= 3  # of 8 sentences
        assert engine.queue_depth == 0
        assert httpx.get(url + "/health").json()["queue_depth"] == 0
    finally:
        server.should_exit = True
        thread.join(30)


def test_mmae_serve_drains_its_requests_on_sigterm(tmp_path):
    """The command as a user runs it: a request in flight at SIGTERM still gets all its audio."""
    import signal
    import subprocess
    import sys

    import httpx

    from conftest import REPO

    port = _free_port()
    log = open(tmp_path / "serve.log", "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "mmae.cli", "serve", "--port", str(port), "--max-batch", "1"],
        env={**os.environ, "PYTHONPATH": REPO},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert process.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "mmae serve did not start"
            try:
                if httpx.get(url + "/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        text = "The first sentence. " + " ".join(["And then another one."] * 5)
        with httpx.stream(
            "POST",
            url + "/v1/audio/speech",
            json={"input": text, "response_format": "pcm"},
            timeout=120,
        ) as response:
            chunks = response.iter_bytes()
            received = len(next(chunks))
            process.send_signal(signal.SIGTERM)
            received += sum(len(chunk) for chunk in chunks)
        # uvicorn drains, then raises the signal again: the exit of a SIGTERM.
        assert process.wait(60) in (0, -signal.SIGTERM)
        seconds = received / 2 / 16000
        assert seconds > 6 * 0.5, seconds  # all six sentences, not just the first
        assert "POST /v1/audio/speech 200" in (tmp_path / "serve.log").read_text()
    finally:
        if process.poll() is None:
            process.kill()
        log.close()


def test_the_page_speaks_in_a_real_browser(bundled_server, tmp_path):
    """Headless Chromium (Debian's) types a sentence, presses Speak, and the audio plays."""
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--autoplay-policy=no-user-gesture-required",
        "--window-size=1000,700",
    ):
        options.add_argument(flag)
    service = webdriver.ChromeService(executable_path="/usr/bin/chromedriver")
    browser = webdriver.Chrome(options=options, service=service)
    try:
        browser.get(bundled_server + "/")
        WebDriverWait(browser, 30).until(
            lambda b: b.find_elements(By.CSS_SELECTOR, "#voice option")
        )
        box = browser.find_element(By.ID, "text")
        box.clear()
        box.send_keys("Hello from a real browser. This is the second sentence.")
        browser.find_element(By.ID, "speak").click()
        WebDriverWait(browser, 60).until(
            lambda b: b.find_element(By.TAG_NAME, "body").get_attribute("data-samples")
        )
        body = browser.find_element(By.TAG_NAME, "body")
        seconds = int(body.get_attribute("data-samples")) / 16000
        assert 1.5 < seconds < 10
        assert "First audio after" in browser.find_element(By.ID, "status").text
        # The audio clock runs on: what arrived is being played.
        WebDriverWait(browser, 20).until(
            lambda b: b.execute_script("return window.mmaeAudioTime()") > 0.5
        )
        # MMAE_SERVE_SCREENSHOT=bench/results/serve_page.png remakes the README's picture.
        screenshot = os.environ.get("MMAE_SERVE_SCREENSHOT") or str(tmp_path / "page.png")
        browser.save_screenshot(screenshot)
        assert os.path.getsize(screenshot) > 10_000
    finally:
        browser.quit()
