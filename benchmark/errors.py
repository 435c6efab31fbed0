"""The one exception type that reaches a user as a single line.

Every mistake a user can make (a missing folder, a corrupt file, an unknown name, a bad config value)
is raised as :class:`UserError` with a message that names the offending file or value *and* the fix.
The CLI prints it as one line on stderr and exits with code 2; anything else is a bug and keeps its
traceback.
"""
from __future__ import annotations

EXIT_USER_ERROR = 2


class UserError(Exception):
    """A problem with the user's input, printed as one line and mapped to exit code 2."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))
