"""The base of retrieval's errors meant for the user (a bad index, a malformed evaluation folder, a missing
encoder). The retrieval layer depends on nothing above it, so its base is its own; `assistant`'s `main()` prints
these like `AssistantError`s: to stderr, exit status 2."""


class RetrievalError(Exception):
    """A retrieval problem the user can fix."""
