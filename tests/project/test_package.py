"""Packaging: the wheel holds only `vidtt`, with its subpackages, entry points and py.typed."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_puts_only_vidtt_at_top_level(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    [wheel] = tmp_path.glob("vidtt-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names}
    assert {t for t in top if not t.endswith(".dist-info")} == {"vidtt"}
    for module in (
        "vidtt/__init__.py",
        "vidtt/py.typed",
        "vidtt/samplers/uniform.py",
        "vidtt/backends/cuda.py",
        "vidtt/formatters/__init__.py",
    ):
        assert module in names
    for page in ("index.html", "app.js", "style.css", "icon.svg"):  # the page at / of serve
        assert f"vidtt/serve/static/{page}" in names
    for folder, package in (("core", "vidtt"), ("samplers", "vidtt/samplers")):
        for source in (ROOT / folder).rglob("*.py"):  # every module ships
            assert f"{package}/{source.relative_to(ROOT / folder).as_posix()}" in names
    assert not any("tests/" in n or "benchmarks/" in n for n in names)
    [entry_points] = [n for n in names if n.endswith("entry_points.txt")]
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "[vidtt]" in text and "uniform = vidtt.samplers.uniform" in text
    assert "vidtt = vidtt.cli:main" in text
