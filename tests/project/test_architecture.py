"""docs/architecture.md is held to the code: it names every module of the core and the built-in
plugins, and every `vidtt.` name it writes is a module or a name a module has."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "architecture.md"
FOLDERS = {  # folder: its import name (pyproject's package-dir)
    "core": "vidtt",
    "samplers": "vidtt.samplers",
    "formatters": "vidtt.formatters",
    "backends": "vidtt.backends",
    "transcribers": "vidtt.transcribers",
    "embedders": "vidtt.embedders",
}
NAME = re.compile(r"(?<![\w.])vidtt(?:\.[A-Za-z_]\w*)+")


def code_modules() -> set[str]:
    """Every module and package in the folders, by import name (`vidtt` itself left out)."""
    found = set()
    for folder, package in FOLDERS.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if "__pycache__" in parts:
                continue
            if parts[-1] == "__init__":
                parts.pop()
            found.add(".".join([package, *parts]))
    return found - {"vidtt"}


def doc_names() -> set[str]:
    return set(NAME.findall(DOC.read_text(encoding="utf-8")))


def resolves(name: str, modules: set[str]) -> bool:
    """`name` is a module, or its longest module prefix has the rest as attributes."""
    if name in modules:
        return True
    parts = name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        owner = ".".join(parts[:cut])
        if owner in modules or owner == "vidtt":
            value: object = importlib.import_module(owner)
            for attr in parts[cut:]:
                if not hasattr(value, attr):
                    return False
                value = getattr(value, attr)
            return True
    return False


def test_the_walk_finds_the_modules_it_should() -> None:
    modules = code_modules()
    assert {"vidtt.pipeline.core", "vidtt.media.live", "vidtt.samplers.uniform"} <= modules
    assert "vidtt.transcribers.whisper" in modules and "vidtt" not in modules


def test_every_module_is_named_in_the_architecture_doc() -> None:
    missing = sorted(code_modules() - doc_names())
    assert not missing, f"docs/architecture.md does not name these modules: {missing}"


def test_every_name_the_doc_writes_is_in_the_code() -> None:
    modules = code_modules()
    stale = sorted(name for name in doc_names() if not resolves(name, modules))
    assert not stale, f"docs/architecture.md names what the code lacks: {stale}"


def test_a_stale_name_is_caught() -> None:
    modules = code_modules()
    assert resolves("vidtt.budget.plan", modules) and resolves("vidtt.Pipeline", modules)
    assert not resolves("vidtt.server", modules)
    assert not resolves("vidtt.media.no_such_module", modules)
