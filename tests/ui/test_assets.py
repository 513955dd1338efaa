"""The vendored front-end files are the ones the manifest pins, and no page loads
anything from another host."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import flowcraft.ui

UI = Path(flowcraft.ui.__file__).parent
VENDOR = UI / "static" / "vendor"


def test_vendored_files_match_their_manifest() -> None:
    manifest = json.loads((VENDOR / "VENDORED.json").read_text())
    listed = {"VENDORED.json"}
    for package in manifest["packages"]:
        assert package["integrity"].startswith("sha512-")
        assert package["license_file"] in package["sha256"]
        for name, digest in package["sha256"].items():
            assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, name
            listed.add(name)
    assert {path.name for path in VENDOR.iterdir()} == listed


def test_templates_and_scripts_load_nothing_from_another_host() -> None:
    for path in [*(UI / "templates").glob("*.html"), UI / "static" / "ui.js", UI / "static" / "ui.css"]:
        text = path.read_text()
        assert not re.search(r"(src|href)=\"(https?:)?//", text), path
        assert "http://" not in text and "https://" not in text, path
