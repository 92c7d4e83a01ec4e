# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Overlaps: an Outlook meeting and an Odoo booking that hold the room at the same
time are both kept, and both flagged so that someone decides (the Overlaps view)."""

from odoo.tools import SQL

from .. import engine


def flag_overlaps(env, room, window, start, end) -> bool:
    """Flag the bookings of ``window`` (a LocalWindow) that overlap one of the other
    origin in [start, end), clear the others' flag; returns whether a flag changed."""
    rows = window.live_rows(start, end)
    intervals = [
        engine.Interval(
            key=row["id"],
            start=row["start"],
            stop=row["stop"],
            origin=engine.Origin(row["exchange_origin"]),
        )
        for row in rows
    ]
    flagged = set()
    for overlap in engine.find_overlaps(intervals):
        if overlap.is_cross_origin:
            flagged.update((overlap.first.key, overlap.second.key))
    losing_flag = [
        row for row in rows if row["exchange_overlap"] and row["id"] not in flagged
    ]
    flagged |= _flagged_in_other_rooms(env, room, losing_flag)
    changed = [
        row["id"]
        for row in rows
        if bool(row["exchange_overlap"]) != (row["id"] in flagged)
    ]
    if not changed:
        return False
    # A plain column update: resource.booking.write() would re-validate the Odoo
    # booking's schedule, which the overlapping Exchange meeting now fails
    # (docs/resource_booking.md#overlapping-bookings-are-frozen), and refuse the
    # flag that reports it.
    env.cr.execute(
        SQL(
            "UPDATE resource_booking SET exchange_overlap = id = ANY(%s)"
            " WHERE id = ANY(%s)",
            list(flagged),
            changed,
        )
    )
    env["resource.booking"].browse(changed).invalidate_recordset(["exchange_overlap"])
    return True


def _flagged_in_other_rooms(env, room, rows) -> set:
    """Of these bookings, the ids that still overlap a meeting of the other origin
    in another room they hold: this room's round must not clear their flag."""
    Booking = env["resource.booking"]
    still = set()
    for row in rows:
        booking = Booking.browse(row["id"])
        others = booking.combination_id.resource_ids - room
        if others and Booking.search_count(
            [
                ("id", "!=", row["id"]),
                ("combination_id.resource_ids", "in", others.ids),
                ("exchange_origin", "!=", row["exchange_origin"]),
                ("start", "<", row["stop"]),
                ("stop", ">", row["start"]),
            ],
            limit=1,
        ):
            still.add(row["id"])
    return still
