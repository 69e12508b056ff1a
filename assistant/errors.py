"""The base of every error meant for the person at the keyboard: `assistant`'s `main()` prints it to stderr as
`error: ...` and exits with status 2. Its message says what is wrong, where (file, line, field) and how to fix it."""


class AssistantError(Exception):
    """A problem the user can fix (bad input, a missing file, a refused setting), not a bug."""
