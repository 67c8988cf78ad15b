"""The docs stay true: links resolve, examples compile and match the code, references are whole."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from vidtt import PipelineConfig
from vidtt.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def blocks(page: Path, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", page.read_text(), re.S)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_resolve(page: Path) -> None:
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
        if "://" not in target:
            assert (page.parent / target).exists(), f"{page.name}: broken link {target}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_python_examples_compile(page: Path) -> None:
    for number, code in enumerate(blocks(page, "python"), 1):
        compile(code, f"{page.name} example {number}", "exec")


def test_plugin_guide_shows_the_real_example_package() -> None:
    page = ROOT / "docs" / "plugins.md"
    example = ROOT / "docs" / "examples" / "vidtt-example"
    assert (example / "vidtt_example" / "__init__.py").read_text() in blocks(page, "python")
    assert (example / "pyproject.toml").read_text() in blocks(page, "toml")


def test_config_reference_lists_every_field() -> None:
    text = (ROOT / "docs" / "guide.md").read_text()
    table = text[text.index("## Config files") : text.index("## Command line")]
    documented = set(re.findall(r"^\| `(\w+)` \|", table, re.M))
    assert documented == set(PipelineConfig.model_fields)


def test_cli_reference_covers_every_command_and_option() -> None:
    text = (ROOT / "docs" / "guide.md").read_text()
    reference = text[text.index("## Command line") :]
    parser = build_parser()
    [commands] = [a for a in parser._actions if a.dest == "command"]
    for name, sub in commands.choices.items():
        assert f"vidtt {name}" in reference, name
        for action in sub._actions:
            for flag in action.option_strings:
                if flag.startswith("--") and flag != "--help":
                    assert flag in reference, f"vidtt {name} {flag} is not documented"


def test_readme_test_command_is_what_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    [command] = re.findall(r"```bash\n(pip install -e .*pytest.*)\n```", readme)
    assert command in (ROOT / ".ci" / "run").read_text()


def subparser(name: str) -> argparse.ArgumentParser:
    [commands] = [a for a in build_parser()._actions if a.dest == "command"]
    return commands.choices[name]  # type: ignore[no-any-return]


def test_serve_options_table_lists_every_server_flag() -> None:
    """Every flag of `vidtt serve`'s own group is a row of docs/serve.md's Options table (the
    shared model, sampling and generation flags are named under it, as `vidtt ask`'s)."""
    text = (ROOT / "docs" / "serve.md").read_text()
    table = text[text.index("## Options") : text.index("## Errors")]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    flagged = {flag for row in rows for flag in re.findall(r"`(--[a-z-]+)", row.split(" | ")[0])}
    [group] = [g for g in subparser("serve")._action_groups if g.title == "server"]
    flags = {f for a in group._group_actions for f in a.option_strings if f.startswith("--")}
    assert flags and flags <= flagged, f"not in the Options table: {sorted(flags - flagged)}"
    assert "Rows to add" not in text and "to be written" not in text


def exit_codes_in_code() -> set[int]:
    """Every exit status a command returns: `return N` in the commands, and the interrupt
    module's codes."""
    from vidtt.cli import interrupt

    found = {interrupt.EXIT_CODE, interrupt.TERMINATED_CODE}
    for module in (ROOT / "core" / "cli").glob("*.py"):
        source = module.read_text()
        found |= {int(n) for n in re.findall(r"^\s+return (\d+)\b", source, re.M)}
        found |= {int(n) for n in re.findall(r"return (\d+) if .* else (?:\d+)", source)}
    return found


def test_the_exit_statuses_documented_are_the_commands_own() -> None:
    """The guide's exit-status table holds every status a command returns and no other; each
    status named anywhere in the guide is one of them; the commands that return 1 are named in
    its row."""
    text = (ROOT / "docs" / "guide.md").read_text()
    table = text[text.index("The exit status, on every command:") :].split("\n\n")[1]
    rows = dict(re.findall(r"^\| (\d+) \| (.*) \|$", table, re.M))
    codes = exit_codes_in_code()
    assert {int(c) for c in rows} == codes, (sorted(rows), sorted(codes))
    named = {
        int(n) for n in re.findall(r"(?:exit status|exits with status|with status) (\d+)", text)
    }
    assert named <= codes, sorted(named - codes)
    for module in (ROOT / "core" / "cli").glob("*.py"):
        if re.search(r"^\s+return 1\b|return 1 if", module.read_text(), re.M):
            assert f"`vidtt {module.stem}`" in rows["1"], f"vidtt {module.stem} returns 1"


def test_the_cache_folder_has_one_name_in_the_docs() -> None:
    """`VIDTT_CACHE_DIR` in the README and the guides; the old `VIDTT_CACHE` only where it is
    called old (docs/environment.md lists it as such)."""
    for page in [ROOT / "README.md", *(ROOT / "docs" / n for n in ("guide.md", "serve.md"))]:
        for line in page.read_text().splitlines():
            if re.search(r"VIDTT_CACHE\b(?!_)", line):
                assert re.search(r"old|older|deprecated", line), f"{page.name}: {line}"
