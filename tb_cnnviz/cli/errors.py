"""The command line's one error: bad input, told in one line that says what to do (exit status 2)."""


class CommandError(Exception):
    """Input the command cannot use; its message names the file or option and what to give."""
