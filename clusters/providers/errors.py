"""The one error type of the providers: its message says what went wrong and what to do about it."""


class SandboxError(RuntimeError):
    """Starting, controlling or removing local servers failed; the message tells the operator what to fix."""
