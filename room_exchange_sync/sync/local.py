# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Reading the Odoo side of a round: the room's bindings and bookings in a few
queries, as plain rows, and the event payloads made of them."""

import collections
import dataclasses

from odoo.tools import SQL

from .. import engine
from ..graph import booking_payload
from . import mapping, seams

# Writes made by the sync itself: no mail to anyone, no chatter noise, no export of what
# was just imported, and no push to personal Outlook/Google calendars
# (docs/resource_booking.md#writes-made-by-the-sync).
SYNC_CONTEXT = {
    "room_exchange_no_export": True,
    "exchange_sync": True,
    "no_mail_to_attendees": True,
    "tracking_disable": True,
    "mail_create_nolog": True,
    "mail_create_nosubscribe": True,
    "mail_notrack": True,
    "no_calendar_sync": True,
}
# What a round reads of its room's bindings: plain rows of one query, not records (a
# room's window may hold thousands, and a round looks at each of them).
BindingRow = collections.namedtuple(
    "BindingRow",
    [
        "id",
        "booking_id",
        "external_id",
        "remote_etag",
        "local_hash",
        "origin",
        "sync_state",
        "ical_uid",
        "series_master_id",
        "sync_error",
        "sync_attempts",
        "next_retry_date",
    ],
)


def in_room(env, room_id) -> SQL:
    """SQL: the booking (``booking``) holds the room ``room_id`` (SQL or an id)."""
    rel_field = env["resource.booking.combination"]._fields["resource_ids"]
    return SQL(
        "EXISTS(SELECT 1 FROM %s rel WHERE rel.%s = booking.combination_id"
        " AND rel.%s = %s)",
        SQL.identifier(rel_field.relation),
        SQL.identifier(rel_field.column1),
        SQL.identifier(rel_field.column2),
        room_id,
    )


@dataclasses.dataclass(frozen=True)
class LocalWindow:
    """The Odoo side of a room as one round read it.

    ``bindings``: the room's bindings (BindingRow); ``rows``: {booking id: the
    mapping's values and ``active``, ``exchange_origin``, ``exchange_overlap``,
    ``in_room``} of its bookings in the window and of the bound ones."""

    bindings: list
    rows: dict
    room_tz: str

    def live_rows(self, start, end) -> list:
        """The rows of the bookings that hold the room in [start, end)."""
        return [
            row
            for row in self.rows.values()
            if row["active"]
            and row["in_room"]
            and row["start"]
            and row["start"] < end
            and row["stop"] > start
        ]


def read_window(env, calendar, start, end, subset=None) -> LocalWindow:
    """What a round needs of the Odoo side, in two queries: the room's bindings, and
    the bookings in the window and the bound ones.

    ``subset`` (an export step's): (the bookings to create next, the ids of the
    events Exchange reported): only those bookings, the bindings of those events
    and the bindings not in sync are read, with their bookings."""
    env.flush_all()
    columns = SQL(", ").join(map(SQL.identifier, BindingRow._fields))
    query = SQL(
        "SELECT %s FROM room_exchange_binding WHERE calendar_id = %s",
        columns,
        calendar.id,
    )
    if subset is not None:
        # Two indexed reads (the links not in sync have an index of their own),
        # not a filter over all the room's links.
        query = SQL(
            "%s AND sync_state != 'synced' UNION %s AND external_id = ANY(%s)",
            query,
            query,
            list(subset[1]),
        )
    env.cr.execute(SQL("%s ORDER BY id DESC", query))
    bindings = [BindingRow._make(row) for row in env.cr.fetchall()]
    bound_ids = [b.booking_id for b in bindings if b.booking_id]
    holds_room = in_room(env, SQL("room.id"))
    in_window = SQL(
        "(booking.start < %s AND booking.stop > %s AND %s)", end, start, holds_room
    )
    if subset is not None:
        in_window = SQL("booking.id = ANY(%s)", subset[0])
    values = SQL(", ").join(
        SQL("%s AS %s", SQL(entry.sql), SQL.identifier(entry.key))
        for entry in env["resource.booking"]._exchange_exported()
    )
    env.cr.execute(
        SQL(
            """
            SELECT room.tz AS room_tz, booking.*
              FROM resource_resource room
         LEFT JOIN LATERAL (
                SELECT booking.id, booking.active, booking.exchange_origin,
                       booking.exchange_overlap, %(in_room)s AS in_room, %(values)s
                  FROM resource_booking booking
             LEFT JOIN res_users users ON users.id = booking.user_id
             LEFT JOIN res_partner partner ON partner.id = users.partner_id
             LEFT JOIN calendar_event meeting ON meeting.id = booking.meeting_id
                 WHERE booking.id = ANY(%(bound)s) OR %(in_window)s
              ) booking ON TRUE
             WHERE room.id = %(room)s
          ORDER BY booking.id
            """,
            in_room=holds_room,
            values=values,
            bound=bound_ids,
            in_window=in_window,
            room=calendar.room_id.id,
        )
    )
    rows = env.cr.dictfetchall()
    room_tz = (rows[0]["room_tz"] if rows else None) or "UTC"
    window = LocalWindow(
        bindings, {row["id"]: row for row in rows if row["id"]}, room_tz
    )
    seams.reach(
        seams.WINDOW_LOADED, calendar=calendar, subset=subset, rows=len(window.rows)
    )
    return window


def export_subset(env, calendar, start, end, limit) -> list:
    """The ids of the room's next ``limit`` bookings made in Odoo that have no event
    yet (an export step's creations), in the order they start.

    They are looked for from the earliest start of those the room's last step
    linked (by their links' creation, indexed), not from the window's start: the
    bookings before are linked already, and walking past them in every step would
    make the export quadratic. A booking added before them meanwhile is exported by
    the step that reads the whole window."""
    env.flush_all()
    env.cr.execute(
        SQL(
            """
            SELECT booking.id FROM resource_booking booking
             WHERE booking.active AND booking.exchange_origin = 'odoo'
               AND booking.start < %(end)s AND booking.stop > %(start)s
               AND booking.start >= COALESCE((
                    SELECT min((SELECT last.start FROM resource_booking last
                                 WHERE last.id = bound.booking_id))
                      FROM room_exchange_binding bound
                     WHERE bound.calendar_id = %(calendar)s
                       AND bound.origin = 'odoo'
                       AND bound.create_date = (
                            SELECT create_date FROM room_exchange_binding
                             WHERE calendar_id = %(calendar)s AND origin = 'odoo'
                          ORDER BY create_date DESC LIMIT 1)), '-infinity')
               AND %(in_room)s
               AND NOT EXISTS (
                    SELECT 1 FROM room_exchange_binding binding
                     WHERE binding.calendar_id = %(calendar)s
                       AND binding.booking_id = booking.id)
          ORDER BY booking.start, booking.id
             LIMIT %(limit)s
            """,
            start=start,
            end=end,
            in_room=in_room(env, calendar.room_id.id),
            calendar=calendar.id,
            limit=limit,
        )
    )
    return [row[0] for row in env.cr.fetchall()]


def live_bookings(env, room, booking_ids) -> set:
    """Of ``booking_ids``, those that are active, scheduled and hold ``room``."""
    env.cr.execute(
        SQL(
            "SELECT booking.id FROM resource_booking booking"
            " WHERE booking.id = ANY(%s) AND booking.active"
            " AND booking.start IS NOT NULL AND %s",
            list(booking_ids),
            in_room(env, room.id),
        )
    )
    return {booking_id for (booking_id,) in env.cr.fetchall()}


class Payloads:
    """The event JSON of a round's bookings, each built once per round when needed,
    from the round's rows (or a record for a booking it did not read)."""

    def __init__(self, env, settings, rows, now, origins=None) -> None:
        self.env = env
        self.settings = settings
        self.rows = rows
        self.now = now
        self.exported = env["resource.booking"]._exchange_exported()
        self.built = {}
        self.origins = origins or {}

    def _snapshot(self, values, origin) -> mapping.Snapshot:
        Booking = self.env["resource.booking"]
        return mapping.snapshot(
            values,
            origin,
            self.exported,
            self.now,
            lambda booking_id: Booking.browse(booking_id).display_name,
        )

    def _payload(self, snap) -> dict:
        return self.env["resource.booking"]._exchange_event_payload(snap, self.settings)

    def summary(self, row) -> tuple:
        """(payload hash, subject, private) of a row's event, from the process's
        cache when the row and the room's settings are what they were: a round looks
        at every booking of its window, and most have not changed since the last."""
        snap = self._snapshot(row, row["exchange_origin"])
        key = None
        if row["start"] and row["stop"]:
            key = mapping.summary_key(self.settings, snap)
            cached = mapping.SUMMARIES.get(key)
            if cached is not None:
                return cached
        payload = self.built.get(row["id"]) or self._payload(snap)
        self.built[row["id"]] = payload
        summary = (
            engine.payload_hash(payload),
            payload.get("subject") or "",
            payload.get("sensitivity") == "private",
        )
        if key is not None:
            mapping.SUMMARIES.put(key, summary)
        return summary

    def of(self, booking_id) -> dict:
        """The event JSON of a booking."""
        payload = self.built.get(booking_id)
        if payload is None:
            row = self.rows.get(booking_id)
            if row is not None:
                payload = self._payload(self._snapshot(row, row["exchange_origin"]))
                self.built[booking_id] = payload
            else:
                payload = self.of_record(
                    self.env["resource.booking"].browse(booking_id)
                )
        return payload

    def of_record(self, booking) -> dict:
        """The event JSON of a booking record as it is now (after the round changed
        it)."""
        values = mapping.record_values(booking, self.exported)
        payload = self._payload(self._snapshot(values, booking.exchange_origin))
        self.built[booking.id] = payload
        return payload

    def origin(self, booking) -> str:
        """Where a booking was made, from the round's rows (read with the others)."""
        row = self.rows.get(booking.id)
        if row:
            return row["exchange_origin"]
        return self.origins.get(booking.id) or booking.exchange_origin

    def released(self, booking_ids) -> "Payloads":
        """These payloads only, built now, without the rows: what the writes of a
        round need while they wait for Microsoft beside other rooms' rounds."""
        built = {booking_id: self.of(booking_id) for booking_id in booking_ids}
        origins = {
            booking_id: self.rows[booking_id]["exchange_origin"]
            for booking_id in built
            if booking_id in self.rows
        }
        kept = Payloads(self.env, self.settings, {}, self.now, origins)
        kept.built = built
        return kept


def event_payload(snap: mapping.Snapshot, settings: mapping.PayloadSettings) -> dict:
    """The Graph event JSON of a snapshot (what Odoo's own mapping sends)."""
    # What the room shows of the bookings made in Odoo (privacy mode, booker's
    # e-mail) is no part of a meeting booked in Outlook: changing it must not
    # rewrite those meetings.
    own = snap.origin != "exchange"
    return booking_payload(
        snap.booking,
        room_time_zone=settings.room_tz,
        privacy=settings.privacy_mode if own else "full",
        include_organizer_email=own and settings.include_organizer_email,
        time_zone_names=settings.time_zone_names,
        marker=engine.make_marker(settings.database_uuid, snap.booking.booking_id),
    )


def in_round(binding, window, payloads, start, end) -> bool:
    """Whether a binding takes part in a round over [start, end).

    Exchange lists only the window, so a booking outside it (moved far ahead, or
    in the past as the window moves on every day) is absent from a full round
    without being removed. Tombstones and cancelled or unscheduled bookings
    always take part: their events must go.
    """
    row = window.rows.get(binding.booking_id)
    if not row or not row["active"] or not row["start"]:
        return True
    if row["start"] < end and row["stop"] > start:
        return True
    # Outside the window, a booking takes part only when it changed since its
    # event was written (moved out of the window in Odoo): the event follows it.
    return payloads.summary(row)[0] != (binding.local_hash or "")


def local_items(window, payloads, start, end, bindings, sitting_out) -> list:
    """The engine's items of the bookings that take part in the round (the
    bound ones, and those holding the room in the window whose links do not sit
    the round out)."""
    bound = {binding.booking_id for binding in bindings}
    items = []
    for booking_id, row in window.rows.items():
        if booking_id not in bound and (
            booking_id in sitting_out
            or not (
                row["in_room"]
                and row["start"]
                and row["start"] < end
                and row["stop"] > start
            )
        ):
            continue
        live = row["active"] and bool(row["start"]) and row["in_room"]
        payload_hash, subject, is_private = payloads.summary(row)
        items.append(
            engine.LocalItem(
                booking_id=row["id"],
                payload_hash=payload_hash,
                start=row["start"] or None,
                stop=row["stop"] or None,
                subject=subject,
                is_private=is_private,
                active=live,
                origin=engine.Origin(row["exchange_origin"]),
            )
        )
    return items


def status_entry(binding) -> engine.StatusEntry:
    """The engine's view of a link (a BindingRow)."""
    return engine.StatusEntry(
        binding_id=binding.id,
        booking_id=binding.booking_id or None,
        event_id=binding.external_id or None,
        change_key=binding.remote_etag or None,
        exported_hash=binding.local_hash or None,
        origin=engine.Origin(binding.origin),
        state=engine.SyncState(binding.sync_state),
        ical_uid=binding.ical_uid or None,
        series_master_id=binding.series_master_id or None,
        error=binding.sync_error or None,
        attempts=binding.sync_attempts or 0,
        next_retry=binding.next_retry_date or None,
    )
