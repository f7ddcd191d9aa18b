"""The provider kinds table: the one place that lists kinds, true to the documented contract,
and read by everything that needs a kind's properties."""

from __future__ import annotations

import ast
import re
import typing
from pathlib import Path

import httpx
import pytest
import trio

from runtime.config import ProviderConfig
from runtime.model import Request, Response, TextPart, Usage
from runtime.providers import HTTPProvider, ProviderSpec, Timeouts
from runtime.providers.kinds import KINDS, KindName
from runtime.testing import open_fake_server
from runtime.wire import codec_for
from runtime.wire.openai_chat_request import DIALECTS

ROOT = Path(__file__).resolve().parent.parent
PROTOCOLS = {k.protocol for k in KINDS.values() if k.protocol}
# kinds whose name is not also the name of a wire protocol: a collection holding one of them
# is a list of kinds (a list of protocols is the codecs' vocabulary, not a kind list)
KIND_ONLY = set(KINDS) - PROTOCOLS
ROUTES = {"openai-chat": "/v1/chat/completions", "openai-responses": "/v1/responses",
          "anthropic": "/v1/messages"}


def test_the_schema_literal_is_the_table() -> None:
    """`providers.<name>.kind` accepts exactly the kinds of the table, in its order."""
    assert typing.get_args(KindName) == tuple(KINDS)
    assert typing.get_type_hints(ProviderConfig)["kind"] is KindName
    assert all(name == kind.name for name, kind in KINDS.items())


def test_the_table_keeps_the_documented_contract() -> None:
    """Base URLs follow each vendor's SDK (the OpenAI kinds include /v1, anthropic does
    not); every wire kind has a codec and a dialect that codec knows, and names the variable
    its key is kept in."""
    for kind in KINDS.values():
        if kind.in_process:
            assert kind.base_url is None and not kind.key_required and kind.free
            continue
        assert kind.protocol is not None and kind.base_url is not None
        codec_for(kind.protocol)
        assert kind.openai_base == kind.base_url.endswith("/v1"), kind.name
        assert kind.openai_base == (kind.protocol != "anthropic"), kind.name
        if kind.dialect is not None:
            assert kind.protocol == "openai-chat" and kind.dialect in DIALECTS
        assert kind.key_env is not None and re.fullmatch(r"[A-Z_]+", kind.key_env)
    assert KINDS["anthropic"].base_url == "https://api.anthropic.com"


def test_the_readme_schema_lists_the_kinds() -> None:
    """The README's agent.yaml schema names every kind of the table, in order."""
    text = (ROOT / "README.md").read_text("utf-8")
    found = re.search(r"kind: \w[\w-]*\s+# ([\w| -]+)\n", text)
    assert found is not None, "README.md lost the kind comment of its schema"
    assert [k.strip() for k in found[1].split("|")] == list(KINDS)


def _kind_lists(path: Path) -> list[tuple[int, list[str]]]:
    """Collection literals (tuple, list, set, dict keys) of ``path`` holding a kind-only
    name, with their line."""
    found = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            elts = list(node.elts)
        elif isinstance(node, ast.Dict):
            elts = [k for k in node.keys if k is not None]
        else:
            continue
        names = {e.value for e in elts if isinstance(e, ast.Constant)
                 and isinstance(e.value, str)}
        if names & KIND_ONLY:
            found.append((node.lineno, sorted(names & set(KINDS))))
    return found


def test_no_other_module_spells_a_kind_list() -> None:
    """Outside the table, no module of the package or of scripts/ writes a collection of
    kinds: each reads the table (runtime/wire/ is exempt: its dialect names, such as
    ``openrouter``, are the codecs' own vocabulary, which the table maps kinds onto)."""
    table = ROOT / "runtime" / "providers" / "kinds.py"
    assert _kind_lists(table), "the scan must recognise the table itself"
    files = [*ROOT.glob("runtime/**/*.py"), *ROOT.glob("scripts/*.py"), ROOT / "main.py"]
    offenders = {str(p.relative_to(ROOT)): hits for p in files
                 if p != table and "wire" not in p.relative_to(ROOT).parts[:2]
                 and (hits := _kind_lists(p))}
    assert offenders == {}


def test_the_scan_sees_a_kind_list(tmp_path: Path) -> None:
    """The scan flags the shapes kind lists took before the table (a membership test against
    a one-kind tuple, a dict keyed by kind) and lets a list of protocols pass."""
    sample = tmp_path / "sample.py"
    sample.write_text('if kind not in ("local",):\n    pass\nX = {"openrouter": 1, '
                      '"anthropic": 2}\nPROTOCOLS = ["openai-chat", "anthropic"]\n', "utf-8")
    assert sorted(line for line, _ in _kind_lists(sample)) == [1, 3]


@pytest.mark.parametrize("kind", [k for k, v in KINDS.items() if not v.in_process])
async def test_every_http_kind_reaches_its_protocol(kind: str) -> None:
    """A request of each HTTP kind, with the fake server's base URL for that kind, arrives on
    its protocol's route over loopback and its answer decodes."""
    answer = Response("r1", "m", [TextPart("hi")], "stop", "stop", Usage(3, 1))
    with trio.fail_after(20):
        async with open_fake_server([answer]) as server, httpx.AsyncClient() as client:
            spec = ProviderSpec("p", kind, server.base_url(kind), "m", api_key="k",
                                timeouts=Timeouts(5, 10, 20))
            provider = HTTPProvider(spec, client)
            resp = await provider.attempt(Request("m"), stream=True)
            (seen,) = server.requests
    assert resp.text == "hi"
    assert seen.protocol == KINDS[kind].protocol
    assert seen.path == ROUTES[seen.protocol]
    assert (provider.protocol, provider.dialect) == (KINDS[kind].protocol, KINDS[kind].dialect)
