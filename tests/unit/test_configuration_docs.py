"""Every environment variable the settings module reads is documented in docs/configuration.md."""

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]


def test_every_setting_is_documented():
    source = (ROOT / "controlplane" / "settings.py").read_text()
    names = set(
        re.findall(r'(?:env\.\w+|secret|_generated_secret|os\.environ\.get)\(\s*"([A-Z][A-Z0-9_]+)"', source)
    )
    docs = (ROOT / "docs" / "configuration.md").read_text()
    missing = sorted(n for n in names if f"`{n}" not in docs)
    assert names and not missing, f"document these in docs/configuration.md: {missing}"
