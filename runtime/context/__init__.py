"""Context-window management: keep every request within the model's window.

The conductor's side of it, per session and provider entry::

    window = context_window(model, override=cfg.context_window, props=n_ctx,
                            headers=cfg.headers)          # once per provider
    manager = ContextManager(policy, window, provider=name, protocol=kind)
    ...
    fit = manager.fit(messages, system=system, tools=tools)   # before every request
    if fit.status == "summary_needed":                        # strategy: summarize
        text = <send fit.summary.request(model, params), record it, count its cost>
        fit = manager.apply_summary(messages, fit.summary, text)
    if fit.changed: record context_compacted with fit.record(turn)
    if not fit.ok: fail the turn with fit.error(provider)
    <send the request>; manager.observe(usage.input_tokens)
    on a context_length error: manager.fit(..., harder=True) and retry once

Everything here is pure except ``fetch_props_window`` (``props``), which the engine calls
once per llama.cpp provider.
"""

from .estimate import Calibration as Calibration
from .estimate import message_tokens as message_tokens
from .estimate import request_tokens as request_tokens
from .estimate import tokenizer_for as tokenizer_for
from .fit import NATIVE_PROTOCOLS as NATIVE_PROTOCOLS
from .fit import ContextManager as ContextManager
from .fit import ContextPolicy as ContextPolicy
from .fit import Fit as Fit
from .fit import Strategy as Strategy
from .fit import tokens_from_error as tokens_from_error
from .ledger import ELIDED_PREFIX as ELIDED_PREFIX
from .ledger import Ledger as Ledger
from .props import fetch_props_window as fetch_props_window
from .props import props_url as props_url
from .summary import SUMMARY_PREFIX as SUMMARY_PREFIX
from .summary import SummaryPlan as SummaryPlan
from .vendor import VendorOptions as VendorOptions
from .vendor import vendor_options as vendor_options
from .windows import WINDOWS as WINDOWS
from .windows import WindowTable as WindowTable
from .windows import context_window as context_window
from .windows import window_from_props as window_from_props

__all__ = [
    "ELIDED_PREFIX",
    "NATIVE_PROTOCOLS",
    "SUMMARY_PREFIX",
    "WINDOWS",
    "Calibration",
    "ContextManager",
    "ContextPolicy",
    "Fit",
    "Ledger",
    "Strategy",
    "SummaryPlan",
    "VendorOptions",
    "WindowTable",
    "context_window",
    "fetch_props_window",
    "message_tokens",
    "props_url",
    "request_tokens",
    "tokenizer_for",
    "tokens_from_error",
    "vendor_options",
    "window_from_props",
]
