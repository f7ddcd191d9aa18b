"""Context-window management: keep every request within the model's window.

The engine's side, once per provider entry: a ``WindowSource`` (``source``) says where the
entry's window comes from (``providers.<name>.context_window``, a llama.cpp server's
``/props``, the known-model table) and ``vendor_options`` what ``strategy: provider`` adds
to its requests. The conductor's side, per session (``runtime.session.context``)::

    manager = ContextManager(policy, window, provider=name, protocol=protocol,
                             ledger=conversation.ledger)
    manager.use(name, protocol, window, reserve_output=...)   # the entry of this request
    fit = manager.fit(messages, system=system, tools=tools)   # before every request
    if fit.status == "summary_needed":                        # strategy: summarize
        text = <send fit.summary.request(model, params), record it, count its cost>
        fit = fit.then(manager.apply_summary(messages, fit.summary, text))
    if fit.status == "over": fit = fit.then(manager.trim(messages, ...))   # last resort
    if fit.changed: record context_compacted with fit.record(turn, offset)
    if not fit.ok: fail the turn with fit.error(provider)
    <send the request>; manager.observe(usage.input_tokens)
    on a context_length error: manager.observe_refusal(text), fit(..., harder=True),
    retry once

Everything here is pure except ``fetch_props_window`` (``props``) and
``WindowSource.read_props``, which the engine calls for llama.cpp providers. Names load on
first use, so importing the package pulls in no HTTP client.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_WHERE = {
    "Calibration": "estimate",
    "message_tokens": "estimate",
    "request_tokens": "estimate",
    "tokenizer_for": "estimate",
    "NATIVE_PROTOCOLS": "fit",
    "ContextManager": "fit",
    "ContextPolicy": "fit",
    "Fit": "fit",
    "Strategy": "fit",
    "tokens_from_error": "fit",
    "ELIDED_PREFIX": "ledger",
    "Ledger": "ledger",
    "fetch_props_window": "props",
    "props_url": "props",
    "SUMMARY_PREFIX": "summary",
    "SummaryPlan": "summary",
    "PROPS_RETRY": "source",
    "WindowSource": "source",
    "VendorOptions": "vendor",
    "vendor_options": "vendor",
    "WINDOWS": "windows",
    "WindowTable": "windows",
    "context_window": "windows",
    "window_from_props": "windows",
}

__all__ = sorted(_WHERE)


__getattr__ = lazy_exports(__name__, _WHERE, globals())
