"""Validating a tool call's arguments before it runs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.tools.validate import (
    ArgumentsError,
    format_path,
    parse_arguments,
    validate_call,
    validator_for,
)

SCHEMA = {
    "type": "object",
    "properties": {
        "path": {"type": "string"},
        "count": {"type": "integer", "minimum": 1},
        "files": {"type": "array", "items": {"type": "object",
                                              "properties": {"name": {"type": "string"}},
                                              "required": ["name"]}},
    },
    "required": ["path"],
    "additionalProperties": False,
}
SCHEMAS = {"read": SCHEMA, "other": {"type": "object", "properties": {}}}


def test_valid_call_passes_with_parsed_arguments() -> None:
    """A call that fits the schema has no errors and carries the parsed object."""
    v = validate_call("read", '{"path": "a.txt", "count": 2}', SCHEMAS)
    assert v.ok and v.errors == []
    assert v.arguments == {"path": "a.txt", "count": 2}


def test_malformed_json_says_what_and_where() -> None:
    """Malformed JSON is rejected with the parser's complaint, line, column and nearby text."""
    v = validate_call("read", '{"path": "a.txt",\n "count": }', SCHEMAS)
    assert not v.ok and v.malformed and v.arguments is None
    (err,) = v.errors
    assert "not valid JSON" in err
    assert "line 2 column" in err
    assert "count" in err  # the text near the error


@pytest.mark.parametrize(("text", "kind"), [("[1, 2]", "array"), ('"x"', "string"),
                                            ("3", "number"), ("null", "null")])
def test_arguments_must_be_an_object(text: str, kind: str) -> None:
    """JSON that is not an object is rejected, naming what it was."""
    with pytest.raises(ArgumentsError, match=f"object, got {kind}"):
        parse_arguments(text)


def test_empty_text_means_no_arguments_and_nan_is_refused() -> None:
    """Empty argument text is {} (some providers send ""); NaN is not JSON."""
    assert parse_arguments("") == {} and parse_arguments("  ") == {}
    with pytest.raises(ArgumentsError, match="NaN"):
        parse_arguments('{"x": NaN}')


def test_all_errors_are_listed_with_json_paths() -> None:
    """Wrong type, missing required, extra property and a nested error are all reported."""
    v = validate_call("read", '{"count": "two", "mode": "x", "files": [{"name": 1}]}', SCHEMAS)
    assert not v.ok
    paths = {e.split(": ", 1)[0] for e in v.errors}
    assert paths == {"$.count", "$.path", "$.mode", "$.files[0].name"}
    by_path = dict(e.split(": ", 1) for e in v.errors)
    assert "integer" in by_path["$.count"]
    assert "required" in by_path["$.path"]
    assert "unexpected property 'mode'" in by_path["$.mode"]
    assert v.arguments == {"count": "two", "mode": "x", "files": [{"name": 1}]}
    assert v.message().startswith("Invalid arguments for read: ")


def test_missing_required_message_matches_the_model_facing_format() -> None:
    """A missing required property reads '$.path: 'path' is a required property'."""
    v = validate_call("read", "{}", SCHEMAS)
    assert v.message() == "Invalid arguments for read: $.path: 'path' is a required property"


def test_unknown_tool_lists_the_available_ones() -> None:
    """An unknown tool name is rejected with the list of available tools."""
    v = validate_call("delete_everything", "{}", SCHEMAS)
    assert not v.ok and v.unknown_tool
    assert "delete_everything" in v.errors[0]
    assert "Available tools: other, read" in v.errors[0]


def test_format_path_quotes_odd_keys() -> None:
    """Identifier keys use dots, other keys brackets, indexes [n]."""
    assert format_path([]) == "$"
    assert format_path(["a", 0, "b c"]) == '$.a[0]["b c"]'


def test_validators_are_cached_per_schema() -> None:
    """The same schema compiles once; an equal copy reuses the compiled validator."""
    assert validator_for(SCHEMA) is validator_for(dict(SCHEMA))
    assert validator_for(SCHEMA) is not validator_for(SCHEMAS["other"])


@given(st.text(max_size=40))
def test_any_text_gives_a_verdict_never_a_crash(text: str) -> None:
    """Whatever the model sends, validation answers with errors or arguments, never raises."""
    v = validate_call("read", text, SCHEMAS)
    assert v.ok == (not v.errors)
    if v.ok:
        assert isinstance(v.arguments, dict)
