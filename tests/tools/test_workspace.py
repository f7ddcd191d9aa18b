"""The file tools: normal use, and every way out of the workspace refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runtime.tools import Tool, ToolError, builtin_tools

SECRET = "top secret\n"


@pytest.fixture
def env(tmp_path: Path) -> tuple[Path, Path, dict[str, Tool]]:
    ws = tmp_path / "ws"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET)
    tools = {t.name: t for t in builtin_tools(ws, max_output_chars=200)}
    (ws / "sub").mkdir()
    (ws / "sub" / "a.txt").write_text("alpha\nbeta needle\n")
    (ws / "link_file").symlink_to(outside / "secret.txt")
    (ws / "link_dir").symlink_to(outside)
    (ws / "dangling").symlink_to(outside / "not_yet.txt")
    return ws, outside, tools


def outside_state(outside: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in outside.iterdir()}


async def test_read_write_list_search_inside(env: tuple[Path, Path, dict[str, Tool]]) -> None:
    """Normal use inside the workspace works and touches the real files."""
    ws, _, tools = env
    msg = await tools["write_file"].call({"path": "new/dir/b.txt", "content": "héllo needle"})
    assert "new/dir/b.txt" in msg
    assert (ws / "new" / "dir" / "b.txt").read_text() == "héllo needle"
    assert await tools["read_file"].call({"path": "new/dir/b.txt"}) == "héllo needle"
    assert await tools["read_file"].call({"path": "sub/../sub/a.txt"}) == "alpha\nbeta needle\n"
    listing = (await tools["list_dir"].call({})).splitlines()
    assert "sub/" in listing and "new/" in listing and "link_dir@" in listing
    found = (await tools["search_files"].call({"pattern": r"needle$"})).splitlines()
    assert sorted(found) == ["new/dir/b.txt:1: héllo needle", "sub/a.txt:2: beta needle"]
    only_sub = await tools["search_files"].call({"pattern": "needle", "path": "sub"})
    assert only_sub == "sub/a.txt:2: beta needle"


async def test_read_is_capped_and_errors_are_explained(
        env: tuple[Path, Path, dict[str, Tool]]) -> None:
    """A long file is cut with a note; missing files and directories give clear errors."""
    ws, _, tools = env
    (ws / "big.txt").write_text("x" * 1000)
    text = await tools["read_file"].call({"path": "big.txt"})
    assert "800 of 1000 characters cut" in text
    assert text.count("x") == 200
    with pytest.raises(ToolError, match="no such file"):
        await tools["read_file"].call({"path": "missing.txt"})
    with pytest.raises(ToolError, match="directory"):
        await tools["read_file"].call({"path": "sub"})
    with pytest.raises(ToolError, match="invalid regular expression"):
        await tools["search_files"].call({"pattern": "("})


ATTACKS = [
    ("../outside/secret.txt", "'..'"),
    ("sub/../../outside/secret.txt", "'..'"),
    ("/etc/passwd", "absolute"),
    ("link_file", "symlink"),
    ("link_dir/secret.txt", "symlink"),
    ("sub/x\x00.txt", "NUL"),
]


@pytest.mark.parametrize(("path", "rule"), ATTACKS)
async def test_read_attacks_are_refused(env: tuple[Path, Path, dict[str, Tool]], path: str,
                                        rule: str) -> None:
    """Every escape is refused with an error naming the rule; nothing outside is shown."""
    _, _, tools = env
    with pytest.raises(ToolError, match=rule) as info:
        await tools["read_file"].call({"path": path})
    assert "secret" not in str(info.value).replace("secret.txt", "")
    assert str(info.value).startswith("refused")


@pytest.mark.parametrize(("path", "rule"), [*ATTACKS, ("dangling", "symlink"),
                                            ("link_dir/new.txt", "symlink"),
                                            ("../escape.txt", "'..'")])
async def test_write_attacks_change_nothing_outside(env: tuple[Path, Path, dict[str, Tool]],
                                                    path: str, rule: str) -> None:
    """Writes that would leave the workspace are refused and the outside is untouched."""
    ws, outside, tools = env
    before = outside_state(outside)
    with pytest.raises(ToolError, match=rule):
        await tools["write_file"].call({"path": path, "content": "pwned"})
    assert outside_state(outside) == before
    assert not (ws.parent / "escape.txt").exists()
    assert (outside / "secret.txt").read_text() == SECRET


@pytest.mark.parametrize(("path", "rule"), [("..", "'..'"), ("/", "absolute"),
                                            ("link_dir", "symlink"), ("\x00", "NUL")])
async def test_list_and_search_attacks_are_refused(env: tuple[Path, Path, dict[str, Tool]],
                                                   path: str, rule: str) -> None:
    """list_dir and search_files refuse the same escapes."""
    _, _, tools = env
    with pytest.raises(ToolError, match=rule):
        await tools["list_dir"].call({"path": path})
    with pytest.raises(ToolError, match=rule):
        await tools["search_files"].call({"pattern": "secret", "path": path})


async def test_search_does_not_follow_symlinks_out(env: tuple[Path, Path, dict[str, Tool]]
                                                   ) -> None:
    """A search over the whole workspace never reads files behind symlinks."""
    _, _, tools = env
    result = await tools["search_files"].call({"pattern": "top secret"})
    assert result.startswith("no matches")


def test_unknown_builtin_is_refused(tmp_path: Path) -> None:
    """Asking for a built-in that does not exist names it and lists the real ones."""
    with pytest.raises(ValueError, match=r"nope.*available: read_file"):
        builtin_tools(tmp_path, ["read_file", "nope"])


def test_builtin_schemas_use_the_documented_argument_names(tmp_path: Path) -> None:
    """The tools and their arguments are the ones models are prompted with."""
    tools = {t.name: t for t in builtin_tools(tmp_path)}
    args = {n: set(t.parameters["properties"]) for n, t in tools.items()}
    assert args == {"read_file": {"path"}, "write_file": {"path", "content"},
                    "list_dir": {"path"}, "search_files": {"pattern", "path"},
                    "run_shell": {"command"}, "apply_patch": {"patch"}}
    required = {n: set(t.parameters.get("required", [])) for n, t in tools.items()}
    assert required["list_dir"] == set() and required["search_files"] == {"pattern"}
    assert tools["run_shell"].approval == "ask" and tools["apply_patch"].approval == "auto"
    assert os.path.isdir(tmp_path)


def test_workspace_that_is_a_file_is_a_config_error_naming_the_key(tmp_path: Path) -> None:
    """tools.workspace naming a file is a ConfigError on tools.workspace, before any tool."""
    from runtime.errors import ConfigError
    from runtime.tools.workspace import WorkspaceError, check_workspace

    file = tmp_path / "notes.txt"
    file.write_text("x")
    for attempt in (lambda: check_workspace(file), lambda: builtin_tools(file, ["read_file"])):
        with pytest.raises(WorkspaceError) as info:
            attempt()
        assert isinstance(info.value, ConfigError) and info.value.path == "tools.workspace"
        assert "is a file" in str(info.value) and str(file) in str(info.value)
    assert file.read_text() == "x"


def test_missing_workspace_is_created_only_under_an_existing_parent(tmp_path: Path) -> None:
    """A missing workspace whose parent exists is created; a typo'd tree is not."""
    from runtime.tools.workspace import WorkspaceError, check_workspace, prepare_workspace

    typo = tmp_path / "wrokspace" / "deep" / "ws"
    with pytest.raises(WorkspaceError, match=r"neither .* nor its parent folder .* exists") as info:
        builtin_tools(typo, ["read_file"])
    assert info.value.path == "tools.workspace"
    assert not (tmp_path / "wrokspace").exists()
    fresh = tmp_path / "fresh"
    assert check_workspace(fresh) == fresh and not fresh.exists()  # the check creates nothing
    assert prepare_workspace(fresh) == fresh and fresh.is_dir()
    assert prepare_workspace(fresh) == fresh  # an existing folder is fine
