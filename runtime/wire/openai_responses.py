"""The OpenAI Responses codec (``/v1/responses``), client side.

Request: ``encode_request`` (in ``openai_responses_request``: input items, client-run kinds
of calls and their output items, native tools). Response: ``decode_body`` for a JSON body,
``StreamDecoder`` for an event stream (see ``openai_responses_stream``); output items are
read by ``openai_responses_items``. Pure: no I/O, no trio, no httpx.
"""

from __future__ import annotations

import msgspec

from ..events import Event, Finish, ResponseStart
from ..model import normalize_finish
from ._base import malformed, nothing
from .openai_responses_items import (
    PROTOCOL,
    OutputFolder,
    ResponseHead,
    error_event,
    finish_reason,
    item_of,
    terminal_error,
    usage_events,
)
from .openai_responses_request import ENCRYPTED_REASONING, encode_request
from .openai_responses_stream import StreamDecoder

__all__ = [
    "ENCRYPTED_REASONING",
    "PROTOCOL",
    "StreamDecoder",
    "decode_body",
    "encode_request",
    "headers",
    "url",
]

_BODY = msgspec.json.Decoder(ResponseHead)


def url(base_url: str) -> str:
    """``{base_url}/responses``: the base URL already ends in ``/v1``."""
    return base_url.rstrip("/") + "/responses"


def headers(api_key: str | None) -> dict[str, str]:
    h = {"content-type": "application/json"}
    if api_key:
        h["authorization"] = f"Bearer {api_key}"
    return h


# -- response --------------------------------------------------------------------------


def decode_body(body: bytes) -> list[Event]:
    """A non-streamed response body as ``ResponseStart, ..., UsageEvent?, Finish`` (or an
    ``ErrorEvent`` last when the body reports an error)."""
    try:
        head = _BODY.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise malformed(f"Responses body is not a response object: {exc}",
                        details=body.decode("utf-8", "replace")) from exc
    if head.output is None:
        if head.error is not None:
            return [error_event({"error": head.error})]
        raise malformed("Responses body has no output list",
                        details=body.decode("utf-8", "replace"))
    events: list[Event] = [ResponseStart(id=head.id, model=head.model)]
    folder = OutputFolder()
    for oi, raw in enumerate(head.output):
        events.extend(folder.item_done(oi, *item_of(raw)))
    events.extend(usage_events(head.usage))
    failure = terminal_error(head)
    if failure is not None:
        events.append(failure)
        return events
    reason = finish_reason(head)
    if reason is None and not folder.content:
        raise nothing("Responses body")
    events.append(Finish(reason, normalize_finish(reason, folder.has_calls)))
    return events
