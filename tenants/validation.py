"""Validation of names that reach URLs, proxy configs and commands."""
import re

from django.core.exceptions import ValidationError

NAME_PATTERN = re.compile(r"\A[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\Z")


def validate_name(value: str, what: str = "name") -> None:
    if not NAME_PATTERN.fullmatch(value or ""):
        raise ValidationError(
            f"{what} {value!r} is invalid: use 1-63 lowercase letters, digits and dashes, "
            "starting and ending with a letter or digit."
        )
