"""The exception family of Citizen Helpdesk.

Every package raises a subclass of :class:`HelpdeskError` carrying the context a person
needs to act (a file and key, a chat id, a report reference), so the CLI and the web app
can show a clear message instead of a traceback.
"""


class HelpdeskError(Exception):
    """Base of every error this project raises on purpose."""


class ContentError(HelpdeskError):
    """A file under ``content/`` does not match what the loader expects.

    Args:
        path: the file, as the editor knows it (relative to the content folder).
        key: where in the file, as a dotted path such as ``questions[2].choices``.
        problem: what was found and what was expected.
    """

    def __init__(self, path: str, key: str, problem: str) -> None:
        self.path = path
        self.key = key
        self.problem = problem
        super().__init__(f"{path}: {key}: {problem}")
