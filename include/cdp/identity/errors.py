"""The dedupe's own errors, shared by runs, merges and the review queue."""


class DedupeError(RuntimeError):
    """A dedupe action that cannot be done as asked (the message says why)."""


class DuplicateRateSpike(RuntimeError):  # noqa: N818 - the alert's name in Slack
    """The run's duplicate rate jumped against recent runs: an import may have gone wrong."""
