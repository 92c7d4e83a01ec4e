# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""The Exchange items of a room that cannot be synced, and what a round does with
them.

An item that exists in Exchange but cannot be read (a wrong type, an end before its
start, an unknown time zone, no id...) or cannot be mirrored (a meeting of no
length) never cancels or changes anything: its link, if it has one, sits out the
rounds, and the room lists it with the reason until it is readable. A meeting that
could not be imported is listed too, and read again at every round until it is.
The room keeps the list (``room.exchange.calendar.item_problems``) as
``{event id, or "#n" for an item without a usable id: {"kind", "reason"}}``.
"""

UNREADABLE = "unreadable"
NO_LENGTH = "no_length"
NOT_IMPORTED = "not_imported"
# Kinds whose links sit out the round (nothing is planned for them).
SITTING_OUT = (UNREADABLE, NO_LENGTH)


class ItemProblems:
    """One round's view of its room's problem items: what the room kept, what this
    round saw, and what the room keeps afterwards (``kept``)."""

    def __init__(self, stored: dict | None, full: bool) -> None:
        self.stored = dict(stored or {})
        self.full = full
        self.seen: dict[str, dict] = {}
        self.unkeyed: list[dict] = []
        self.fine: set[str] = set()

    def add(self, event_id: str | None, kind: str, reason: str) -> None:
        """Record a problem of this round (``event_id`` None: an item without a
        usable id)."""
        problem = {"kind": kind, "reason": reason}
        if event_id is None:
            self.unkeyed.append(problem)
        else:
            self.seen[event_id] = problem
            self.fine.discard(event_id)

    def readable(self, event_id: str) -> None:
        """``event_id`` was read this round (or reported removed): no problem now,
        unless this round records one later (a failed import)."""
        if event_id not in self.seen:
            self.fine.add(event_id)

    def retry_ids(self) -> set[str]:
        """Meetings whose import failed before: read again by an incremental round
        (their event did not change, so the delta does not list them)."""
        if self.full:
            return set()
        return {
            key
            for key, problem in self.stored.items()
            if problem["kind"] == NOT_IMPORTED and not key.startswith("#")
        }

    def absences_are_unknown(self) -> bool:
        """True when a full round listed an item without a usable id: it cannot
        tell which linked event that is, so an absent event is not a removed one."""
        return self.full and bool(self.unkeyed)

    def kept(self) -> dict:
        """What the room keeps after this round: a full round's problems, or the
        earlier ones still unsolved and this incremental round's."""
        kept = (
            {}
            if self.full
            else {
                key: problem
                for key, problem in self.stored.items()
                if key not in self.fine
            }
        )
        kept.update(self.seen)
        numbered = len([key for key in kept if key.startswith("#")])
        for index, problem in enumerate(self.unkeyed, start=numbered + 1):
            kept[f"#{index}"] = problem
        return kept

    def sitting_out(self) -> set[str]:
        """The events whose links sit out this round."""
        return {
            key
            for key, problem in self.kept().items()
            if problem["kind"] in SITTING_OUT and not key.startswith("#")
        }
