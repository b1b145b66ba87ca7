"""`mmae serve`: speech over HTTP, streamed sentence by sentence, batched across requests.

`create_app` builds the ASGI app (`mmae.serving.app`) over a `SpeechEngine`
(`mmae.serving.engine`), which groups the sentences of concurrent requests
into one model call. Needs the `serve` extra (Starlette, uvicorn,
prometheus-client): `pip install "mmae[serve]"`.
"""

from mmae.serving.engine import QueueFullError, SpeechEngine

__all__ = ["QueueFullError", "SpeechEngine", "create_app"]


def create_app(*args, **kwargs):
    """The Starlette app (see `mmae.serving.app.create_app`); imports Starlette on first use."""
    from mmae.serving.app import create_app as create

    return create(*args, **kwargs)
