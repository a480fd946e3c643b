"""The demo writes its token (and its logs) to files readable by their owner only; it keeps no server passwords
in files since it provisions its cluster through the API (dbpilot keeps those encrypted)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

DEMO = Path(__file__).resolve().parents[2] / "scripts" / "demo.sh"


def _lines() -> list[str]:
    return DEMO.read_text().splitlines()


def test_the_umask_is_set_before_anything_is_written():
    lines = _lines()
    umask = next(i for i, line in enumerate(lines) if line.strip() == "umask 077")
    first_write = next(i for i, line in enumerate(lines) if re.search(r'>\s*"\$RUN/', line))
    assert umask < first_write


def test_the_secret_files_are_created_owner_only_even_when_they_exist(tmp_path):
    """Run the demo's own lines that create the secret files, on files left world-readable by an older run."""
    lines = [
        line.strip()
        for line in _lines()
        if line.strip().startswith(("umask ", "install -m 600 /dev/null", 'chmod 700 "$RUN"'))
    ]
    assert any("token" in line for line in lines)
    for name in ("token",):
        (tmp_path / name).write_text("old")
        (tmp_path / name).chmod(0o644)
    script = "\n".join(
        [f'RUN="{tmp_path}"', *lines, 'echo secret > "$RUN/token"', 'echo log > "$RUN/web.log"']
    )
    subprocess.run(["bash", "-euo", "pipefail", "-c", script], check=True)
    for name in ("token", "web.log"):
        assert oct(os.stat(tmp_path / name).st_mode & 0o777) == oct(0o600)
    assert oct(os.stat(tmp_path).st_mode & 0o777) == oct(0o700)
