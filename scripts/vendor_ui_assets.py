"""Vendor the dashboard's front-end libraries from the npm registry into the package.

``flowcraft ui`` loads nothing from another host: every script it serves lies in
``src/flowcraft/ui/static/vendor/``. This script fills that folder from
``VENDORED.json`` there: for each package it runs ``npm pack NAME@VERSION``, checks the
tarball against the pinned ``integrity`` (npm's SHA-512, as ``npm view NAME@VERSION
dist.integrity`` prints it), and copies the listed files and the package's licence.
The manifest then records each copied file's SHA-256; ``tests/ui/test_assets.py``
checks the committed files against it.

Usage: ``python scripts/vendor_ui_assets.py`` (needs ``npm``). To upgrade, change the
version and integrity in ``VENDORED.json`` and run it again.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENDOR = ROOT / "src" / "flowcraft" / "ui" / "static" / "vendor"
MANIFEST = VENDOR / "VENDORED.json"


def pack(name: str, version: str, integrity: str, folder: Path) -> Path:
    """``npm pack`` one package into ``folder``; the tarball, checked against ``integrity``."""
    npm = shutil.which("npm")
    if npm is None:
        sys.exit("vendor_ui_assets: `npm` is not installed (apt-get install npm)")
    subprocess.run(
        [npm, "pack", f"{name}@{version}", "--pack-destination", str(folder), "--silent"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    tarball = next(folder.glob("*.tgz"))
    digest = "sha512-" + base64.b64encode(hashlib.sha512(tarball.read_bytes()).digest()).decode()
    if digest != integrity:
        sys.exit(f"vendor_ui_assets: {tarball.name}: integrity {digest} is not the pinned {integrity}")
    return tarball


def main() -> int:
    manifest = json.loads(MANIFEST.read_text())
    for entry in manifest["packages"]:
        with tempfile.TemporaryDirectory() as tmp:
            tarball = pack(entry["name"], entry["version"], entry["integrity"], Path(tmp))
            hashes = {}
            with tarfile.open(tarball) as tar:
                for source, target in {**entry["files"], entry["license"]: entry["license_file"]}.items():
                    member = tar.extractfile(f"package/{source}")
                    if member is None:
                        sys.exit(f"vendor_ui_assets: {entry['name']} has no {source}")
                    data = member.read()
                    (VENDOR / target).write_bytes(data)
                    hashes[target] = hashlib.sha256(data).hexdigest()
            entry["sha256"] = hashes
            print(f"{entry['name']}@{entry['version']}: {', '.join(sorted(hashes))}")
    MANIFEST.write_text(json.dumps(manifest, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
