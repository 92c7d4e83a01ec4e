"""Errors of the sync planner.

The planner is total: for any input it returns a ``Plan``. The only refusal is a safety
rail, reported as ``Plan.fatal`` (and raised by ``Plan.raise_for_fatal()``)::

    SyncPlanError              # the planner refuses to plan this round
      StorageEmpty             # a FULL round listed nothing while the room has bindings

Public API: ``SyncPlanError``, ``StorageEmpty``.

The engine imports nothing from ``graph/``; the shell may catch ``SyncPlanError`` next
to the Graph error tree, which has its own root.
"""

from __future__ import annotations


class SyncPlanError(Exception):
    """The planner refuses to produce actions for this round."""


class StorageEmpty(SyncPlanError):
    """A FULL round returned no remote event although the room has bound events.

    A wrong mailbox, a revoked share or a mis-scoped application access policy all look
    like an empty calendar to Graph; mirroring that emptiness would cancel every booking
    of the room. Re-run with ``Options(force_delete=True)`` once an administrator has
    confirmed that the room calendar really is empty.
    """

    def __init__(self, bound_count: int) -> None:
        super().__init__(
            f"full round returned no events while {bound_count} events are bound; "
            "refusing to treat them as deleted"
        )
        self.bound_count = bound_count
