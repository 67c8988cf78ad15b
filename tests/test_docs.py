"""The docs stay true: links resolve, examples compile and match the code, references are whole."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from vidtt import PipelineConfig
from vidtt.cli import build_parser

ROOT = Path(__file__).parent.parent
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
