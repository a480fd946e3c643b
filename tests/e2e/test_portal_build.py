"""The committed portal build (controlplane/static/portal/) is what the sources in frontend/ build to,
so nobody ships a stale portal: after changing frontend/, run `npm run build` and commit the result."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from tests.e2e.portal_server import ROOT

pytestmark = pytest.mark.e2e

FRONTEND = ROOT / "frontend"
COMMITTED = ROOT / "controlplane" / "static" / "portal"


def test_committed_portal_build_matches_the_sources(tmp_path):
    vite = FRONTEND / "node_modules" / "vite" / "bin" / "vite.js"
    if shutil.which("node") is None or not vite.exists():
        pytest.fail("needs node and frontend/node_modules (cd frontend && npm ci)")
    out = tmp_path / "portal"
    proc = subprocess.run(
        ["node", str(vite), "build", "--outDir", str(out), "--emptyOutDir", "--logLevel", "error"],
        cwd=FRONTEND,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    built = json.loads((out / "manifest.json").read_text())
    committed = json.loads((COMMITTED / "manifest.json").read_text())
    assert built == committed, (
        "controlplane/static/portal/ is stale: run `npm run build` in frontend/ and commit it"
    )
    for path in sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file()):
        assert (COMMITTED / path).read_bytes() == (out / path).read_bytes(), (
            f"{path} differs from the sources' build"
        )
