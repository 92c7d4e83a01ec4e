# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""What a round tells people: each booking's sync history (its chatter, one note per
round) and the room's one-line summary."""

import collections
import dataclasses
import functools

from markupsafe import Markup

from odoo.tools import SQL
from odoo.tools.mail import generate_tracking_message_id

from .. import engine
from .problems import NO_LENGTH, NOT_IMPORTED, UNREADABLE


@dataclasses.dataclass
class RoundReport:
    """What the round (and its follow-up) did, to report only that: actions done by
    kind, the ids of actions not done, failures recorded on bindings, the creations
    an export step kept and left, and whether the next round must be a full one."""

    done: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    undone: set = dataclasses.field(default_factory=set)
    failures: int = 0
    kept_creates: int = 0
    deferred_creates: set = dataclasses.field(default_factory=set)
    needs_full_round: bool = False

    def count_done(self, actions) -> None:
        for action in actions:
            if id(action) not in self.undone:
                self.done[action.kind] += 1


class History:
    """The notes a round writes in its bookings' chatter: {booking id: [text]}."""

    def __init__(self, env, room) -> None:
        self.env = env
        self.room = room
        self.notes = {}

    @functools.cached_property
    def room_name(self) -> str:
        return self.room.display_name

    def note(self, booking_id, text) -> None:
        self.notes.setdefault(booking_id, []).append(text)

    def snapshot(self) -> dict:
        return {key: list(texts) for key, texts in self.notes.items()}

    def restore(self, snapshot) -> None:
        self.notes = snapshot

    @functools.cached_property
    def remote_texts(self) -> dict:
        return {
            engine.ActionKind.CREATE_REMOTE: self.env._(
                "Added to the Exchange calendar of %(room)s."
            ),
            engine.ActionKind.UPDATE_REMOTE: self.env._(
                "Changes sent to the Exchange calendar of %(room)s."
            ),
            engine.ActionKind.ADOPT_REMOTE: self.env._(
                "Linked to its event already in the Exchange calendar of %(room)s."
            ),
            engine.ActionKind.DELETE_REMOTE: self.env._(
                "Removed from the Exchange calendar of %(room)s."
            ),
            engine.ActionKind.DECLINE_REMOTE: self.env._(
                "Declined in the Exchange calendar of %(room)s: its organizer was "
                "told that the room is no longer booked."
            ),
        }

    def note_remote(self, action) -> None:
        """What a write to Exchange did, in the words of its booking's chatter."""
        if action.conflict:
            self.note(action.booking_id, self.conflict_message(action, "Odoo"))
            return
        if action.booking_id and action.kind in self.remote_texts:
            text = self.remote_texts[action.kind] % {"room": self.room_name}
            self.note(action.booking_id, text)

    def change_labels(self, action) -> list:
        labels = {
            "start": self.env._("start"),
            "stop": self.env._("end"),
            "subject": self.env._("title"),
            "is_private": self.env._("privacy"),
        }
        return [labels.get(change.field, change.field) for change in action.changes]

    def changes_text(self, action) -> str:
        return "\n".join(
            f"{label}: {change.old} → {change.new}"
            for label, change in zip(
                self.change_labels(action), action.changes, strict=True
            )
        )

    def conflict_message(self, action, winner) -> str:
        return self.env._(
            "Changed both in Odoo and in Exchange since the last sync; the "
            "%(winner)s version was kept. Overwritten: %(changes)s",
            winner=winner,
            changes=self.changes_text(action) or "-",
        )

    def save(self) -> None:
        """One log note per booking the round touched, all in one INSERT."""
        if not self.notes:
            return
        bookings = self.env["resource.booking"].browse(list(self.notes)).exists()
        if bookings:
            log_notes(
                bookings,
                {
                    booking.id: Markup("<p>%s</p>")
                    % Markup("<br/>").join(self.notes[booking.id])
                    for booking in bookings
                },
            )
        self.notes = {}


def round_summary(env, plan, report, problems) -> str:
    """The round in a line an admin can read (translated; the engine's own summary
    goes to the log): what was done, not what was planned."""
    kinds = engine.ActionKind
    done = report.done
    held = plan.count(kinds.CANCEL_LOCAL) if plan.needs_confirmation else 0
    kept = collections.Counter(problem["kind"] for problem in problems.kept().values())
    counted = [
        (done[kinds.CREATE_REMOTE], env._("%(n)s added to Exchange")),
        (done[kinds.UPDATE_REMOTE], env._("%(n)s changed in Exchange")),
        (done[kinds.ADOPT_REMOTE], env._("%(n)s linked to existing events")),
        (done[kinds.DELETE_REMOTE], env._("%(n)s removed from Exchange")),
        (done[kinds.DECLINE_REMOTE], env._("%(n)s declined in Exchange")),
        (done[kinds.CREATE_LOCAL], env._("%(n)s imported from Outlook")),
        (done[kinds.UPDATE_LOCAL], env._("%(n)s updated from Outlook")),
        (done[kinds.CANCEL_LOCAL], env._("%(n)s cancelled from Outlook")),
        (held, env._("%(n)s cancellations from Outlook wait for confirmation")),
        (done[kinds.CONFLICT], env._("%(n)s conflicts")),
        (report.failures, env._("%(n)s could not be synced (tried again later)")),
        (len(plan.skipped), env._("%(n)s waiting for a retry")),
        (len(report.deferred_creates), env._("%(n)s left for the next export step")),
        (
            kept[NOT_IMPORTED],
            env._("%(n)s Outlook meetings not imported yet (see the room)"),
        ),
        (
            kept[UNREADABLE] + kept[NO_LENGTH],
            env._("%(n)s Outlook items cannot be synced (see the room)"),
        ),
    ]
    parts = [text % {"n": number} for number, text in counted if number]
    return (", ".join(parts) or env._("Nothing to do"))[:250]


def log_notes(records, bodies) -> None:
    """What ``records._message_log_batch(bodies)`` stores (internal notes that notify
    nobody, by the current user), written with one INSERT: a bulk export notes
    thousands of bookings, and ``mail.message.create`` spends about half a
    millisecond on each in generic inverse-field and sanitizing code. ``bodies``
    ({record id: Markup}) are our own texts, their parameters escaped."""
    env = records.env
    author_id, email_from = records._message_compute_author(None, None)
    reply_to = env["mail.thread"]._notify_get_reply_to(
        default=email_from, author_id=author_id
    )[False]
    now = env.cr.now()
    env.cr.execute(
        SQL(
            """
            INSERT INTO mail_message (
                model, res_id, body, message_type, subtype_id, is_internal,
                author_id, email_from, reply_to, message_id, email_add_signature,
                date, create_uid, create_date, write_uid, write_date)
            SELECT %(model)s, note.res_id, note.body, 'notification', %(subtype)s,
                   TRUE, %(author)s, %(email_from)s, %(reply_to)s, %(message_id)s,
                   FALSE, %(now)s, %(uid)s, %(now)s, %(uid)s, %(now)s
              FROM unnest(%(res_ids)s::int[], %(bodies)s::text[]) AS note(res_id, body)
            """,
            model=records._name,
            subtype=env["ir.model.data"]._xmlid_to_res_id("mail.mt_note"),
            author=author_id or None,
            email_from=email_from or None,
            reply_to=reply_to or None,
            message_id=generate_tracking_message_id("message-notify"),
            now=now,
            uid=env.uid,
            res_ids=records.ids,
            bodies=[str(bodies[record_id]) for record_id in records.ids],
        )
    )
    records.invalidate_recordset(
        ["message_ids", "message_needaction", "message_needaction_counter"]
    )
