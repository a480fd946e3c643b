#!/usr/bin/env python
"""Django's command-line entry point for dbpilot."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as exc:  # a configuration mistake: say what to fix, no traceback
        print(f"dbpilot: configuration error: {exc}", file=sys.stderr)
        sys.exit(2)
