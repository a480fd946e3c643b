"""Validation of names that reach URLs, proxy configs and commands."""

import re
import unicodedata

from django.core.exceptions import ValidationError

NAME_PATTERN = re.compile(r"\A[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\Z")


def validate_name(value: str, what: str = "name") -> None:
    if not NAME_PATTERN.fullmatch(value or ""):
        raise ValidationError(
            f"{what} {value!r} is invalid: use 1-63 lowercase letters, digits and dashes, "
            "starting and ending with a letter or digit."
        )


def has_control_characters(value: str) -> bool:
    """Newlines, tabs, NUL and other control characters, and unicode line and paragraph separators."""
    return any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") for ch in value)


def validate_one_line(value: str) -> None:
    """Free text shown in lists and logs (token names...): one line, no control characters."""
    if has_control_characters(value or ""):
        raise ValidationError("must be one line of text without control characters (newlines, tabs, NUL)")
