# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""One sync round of one room calendar: read Exchange, plan, execute.

The engine decides (``engine.plan``); this module only adapts records into engine items,
and carries out the actions: Graph writes in ``$batch`` requests, Odoo writes with the
sync context. A failure of one item is recorded on its binding and never stops the room.
"""

import logging
from datetime import datetime, time, timedelta

from odoo import fields
from odoo.tools import SQL, html_sanitize

from .. import engine
from ..graph import (
    BatchRequest,
    BookingSnapshot,
    EventDataError,
    GraphConflict,
    GraphError,
    GraphNotFound,
    GraphPermissionError,
    SyncStateExpired,
    booking_payload,
    parse_event,
)
from .resource_booking import SYNC_CONTEXT

_logger = logging.getLogger(__name__)

POLICIES = {
    "origin": engine.ConflictPolicy.ORIGIN,
    "odoo": engine.ConflictPolicy.ODOO,
    "exchange": engine.ConflictPolicy.EXCHANGE,
}


class SyncRound:
    """Sync one room calendar once. ``run()`` returns the engine's plan.

    Raises GraphError (the round could not read Exchange; nothing was written) and
    engine.StorageEmpty (the safety rail refused the round).
    """

    def __init__(self, calendar, *, full=False, confirm_cancellations=False):
        self.calendar = calendar.sudo().with_context(active_test=False, **SYNC_CONTEXT)
        self.env = self.calendar.env
        self.connection = self.calendar.connection_id
        self.room = self.calendar.room_id
        self.mailbox = self.calendar.mailbox
        self.full = full
        self.confirm_cancellations = confirm_cancellations
        self.now = fields.Datetime.now()
        self.database_uuid = (
            self.env["ir.config_parameter"].get_param("database.uuid") or ""
        )
        self.invalid_events = 0
        self.imported = {}
        self.payloads = {}

    def run(self):
        client = self.calendar._graph_client()
        start, end = self._window()
        round_kind, remote, delta_link = self._read_exchange(client, start, end)
        local = self._local_items(start, end)
        status = self._status_entries()
        options = engine.Options(
            database_uuid=self.database_uuid,
            confirm_mass_cancel=self.confirm_cancellations,
            force_delete=self.confirm_cancellations,
        )
        plan = engine.plan(
            local,
            remote.values(),
            status,
            round_kind=round_kind,
            policy=POLICIES[self.connection.conflict_policy],
            options=options,
            now=self.now,
        )
        plan.raise_for_fatal()
        self._execute(client, plan, remote)
        self._flag_overlaps(start, end)
        values = {
            "delta_link": delta_link,
            "window_start": start,
            "window_end": end,
            "last_sync_date": self.now,
            "last_sync_summary": self._summary(plan),
            "cancellation_pending": (
                plan.count(engine.ActionKind.CANCEL_LOCAL)
                if plan.needs_confirmation
                else 0
            ),
        }
        if round_kind == engine.RoundKind.FULL:
            values["last_full_sync_date"] = self.now
        self.calendar.write(values)
        _logger.info(
            "Exchange sync of room calendar %s: %s",
            self.calendar.id,
            values["last_sync_summary"],
        )
        return plan

    # Reading Exchange

    def _window(self):
        """[today - days back, today + days ahead), re-anchored every day."""
        today = datetime.combine(fields.Date.context_today(self.calendar), time())
        return (
            today - timedelta(days=self.connection.sync_past_days),
            today + timedelta(days=self.connection.sync_future_days),
        )

    def _read_exchange(self, client, start, end):
        """Return (round kind, {event id: RemoteItem}, new delta link)."""
        calendar = self.calendar
        incremental = (
            not self.full
            and calendar.delta_link
            and calendar.window_start == start
            and calendar.window_end == end
        )
        try:
            events, removed, link = self._delta_round(
                client, start, end, calendar.delta_link if incremental else None
            )
        except SyncStateExpired:
            _logger.info(
                "Room calendar %s: delta token expired, full round", calendar.id
            )
            incremental = False
            events, removed, link = self._delta_round(client, start, end, None)
        except GraphPermissionError:
            if incremental or calendar.auth_mode != "delegated":
                raise
            # Exchange has been reported to refuse delta paging on room calendars
            # reached through a delegated share (403 on the nextLink): list the window
            # page by page instead, without a delta link.
            _logger.warning(
                "Room calendar %s: delta refused, listing the window", calendar.id
            )
            events = list(client.iter_calendar_view(self.mailbox, start, end))
            removed, link = [], False
        remote = {}
        for event in events:
            item = self._remote_item(event)
            if item is not None:
                remote[item.event_id] = item
        for event_id in removed:
            remote[event_id] = engine.RemoteItem.removal(event_id)
        kind = engine.RoundKind.INCREMENTAL if incremental else engine.RoundKind.FULL
        return kind, remote, link

    def _delta_round(self, client, start, end, delta_link):
        events, removed, link = [], [], None
        pages = client.iter_delta(
            self.mailbox, start=start, end=end, delta_link=delta_link
        )
        for page in pages:
            events.extend(page.events)
            removed.extend(page.removed_ids)
            link = page.delta_link or link
        return events, removed, link

    def _remote_item(self, event):
        if event.get("type") == "seriesMaster":
            return None
        try:
            imported = parse_event(
                event,
                room_time_zone=self.room.tz or "UTC",
                private_subject=self.env._("Private meeting"),
            )
        except EventDataError as error:
            self.invalid_events += 1
            _logger.warning(
                "Room calendar %s: Exchange event skipped, %s is invalid (%s)",
                self.calendar.id,
                error.field,
                error.reason,
            )
            return None
        self.imported[imported.event_id] = imported
        return engine.RemoteItem(
            event_id=imported.event_id,
            change_key=imported.change_key,
            start=imported.start,
            stop=imported.stop,
            subject=imported.subject,
            is_private=imported.is_private,
            is_cancelled=imported.is_cancelled,
            ical_uid=imported.ical_uid or None,
            series_master_id=imported.series_master_id or None,
            transaction_id=imported.transaction_id or None,
            marker=imported.marker or None,
        )

    # The Odoo side

    def _room_bookings(self, start, end):
        bound = self.calendar.binding_ids.booking_id
        in_window = self.env["resource.booking"].search(
            [
                ("combination_id.resource_ids", "in", self.room.ids),
                ("start", "<", end),
                ("stop", ">", start),
            ]
        )
        return (bound | in_window).exists()

    def _local_items(self, start, end):
        items = []
        for booking in self._room_bookings(start, end):
            live = (
                booking.active
                and bool(booking.start)
                and self.room in (booking.combination_id.resource_ids)
            )
            payload = self._payload(booking)
            self.payloads[booking.id] = payload
            items.append(
                engine.LocalItem(
                    booking_id=booking.id,
                    payload_hash=engine.payload_hash(payload),
                    start=booking.start or None,
                    stop=booking.stop or None,
                    subject=payload.get("subject") or "",
                    is_private=payload.get("sensitivity") == "private",
                    active=live,
                    origin=engine.Origin(booking.exchange_origin),
                )
            )
        return items

    def _payload(self, booking):
        snapshot = BookingSnapshot(
            booking_id=booking.id,
            start=booking.start or self.now,
            stop=booking.stop or self.now,
            subject=booking.name or booking.display_name or "",
            description_html=str(booking.description or ""),
            location=booking.location or "",
            organizer_name=booking.user_id.name or "",
            organizer_email=booking.user_id.email or "",
            is_private=booking.meeting_id.privacy == "private",
        )
        return booking_payload(
            snapshot,
            room_time_zone=self.room.tz or "UTC",
            privacy=self.calendar.privacy_mode,
            include_organizer_email=self.calendar.include_organizer_email,
            time_zone_names=self.connection.time_zone_names,
            marker=engine.make_marker(self.database_uuid, booking.id),
        )

    def _status_entries(self):
        entries = []
        for binding in self.calendar.binding_ids:
            entries.append(
                engine.StatusEntry(
                    binding_id=binding.id,
                    booking_id=binding.booking_id.id or None,
                    event_id=binding.external_id or None,
                    change_key=binding.remote_etag or None,
                    exported_hash=binding.local_hash or None,
                    origin=engine.Origin(binding.origin),
                    state=engine.SyncState(binding.sync_state),
                    ical_uid=binding.ical_uid or None,
                    series_master_id=binding.series_master_id or None,
                    error=binding.sync_error or None,
                    attempts=binding.sync_attempts,
                    next_retry=binding.next_retry_date or None,
                )
            )
        return entries

    # Executing the plan

    def _execute(self, client, plan, remote):
        remote_actions = []
        for action in plan.actions:
            kind = action.kind
            if kind == engine.ActionKind.CANCEL_LOCAL and plan.needs_confirmation:
                continue
            if kind in (
                engine.ActionKind.CREATE_REMOTE,
                engine.ActionKind.UPDATE_REMOTE,
                engine.ActionKind.ADOPT_REMOTE,
                engine.ActionKind.DELETE_REMOTE,
            ):
                remote_actions.append(action)
                continue
            with self.env.cr.savepoint():
                try:
                    self._execute_local(action)
                except Exception as error:  # noqa: BLE001 - recorded on the binding
                    _logger.warning(
                        "Room calendar %s: %s failed: %s",
                        self.calendar.id,
                        kind.value,
                        type(error).__name__,
                    )
                    self._record_failure(action, error)
        self._execute_remote(client, remote_actions)

    def _execute_local(self, action):
        kind = action.kind
        Binding = self.env["room.exchange.binding"]
        binding = (
            Binding.browse(action.binding_id).exists() if action.status else Binding
        )
        if kind == engine.ActionKind.FORGET:
            binding.unlink()
        elif kind == engine.ActionKind.MARK_SYNCED:
            binding.write(self._synced_values(action, binding))
        elif kind == engine.ActionKind.CONFLICT:
            binding.write(
                {
                    "sync_state": "conflict",
                    "sync_error": self._changes_text(action),
                }
            )
        elif kind == engine.ActionKind.CREATE_LOCAL:
            self._import(action)
        elif kind == engine.ActionKind.UPDATE_LOCAL:
            self._update_booking(action, binding)
        elif kind == engine.ActionKind.CANCEL_LOCAL:
            self._cancel_booking(action, binding)

    def _binding(self, action):
        """The binding an action is about (empty when it has none yet)."""
        Binding = self.env["room.exchange.binding"]
        return Binding.browse(action.binding_id).exists() if action.status else Binding

    def _synced_values(self, action, binding, booking=None):
        values = {
            "sync_state": "synced",
            "sync_error": False,
            "sync_attempts": 0,
            "next_retry_date": False,
            "sync_date": self.now,
        }
        if action.remote is not None:
            values.update(
                external_id=action.remote.event_id,
                remote_etag=action.remote.change_key or binding.remote_etag,
                ical_uid=action.remote.ical_uid or binding.ical_uid,
                series_master_id=action.remote.series_master_id
                or binding.series_master_id,
            )
        booking = booking or binding.booking_id
        if booking and booking.id in self.payloads:
            values["local_hash"] = engine.payload_hash(self.payloads[booking.id])
        elif action.local is not None:
            values["local_hash"] = action.local.payload_hash
        return values

    def _import(self, action):
        imported = self.imported[action.remote.event_id]
        calendar = self.calendar
        body = "" if imported.is_private else html_sanitize(imported.body_html or "")
        values = {
            "name": imported.subject,
            "description": body,
            "type_id": calendar.booking_type_id.id,
            "partner_ids": [fields.Command.set(calendar.partner_id.ids)],
            "combination_id": calendar.combination_id.id,
            "combination_auto_assign": False,
            "start": imported.start,
            "duration": (imported.stop - imported.start).total_seconds() / 3600,
            "exchange_origin": "exchange",
            "exchange_organizer_name": imported.organizer_name,
            "location": self.room.name,
        }
        if calendar.include_organizer_email:
            values["exchange_organizer_email"] = imported.organizer_email
        booking = self.env["resource.booking"].create(values)
        if booking.meeting_id and imported.is_private:
            booking.meeting_id.privacy = "private"
        self.payloads[booking.id] = self._payload(booking)
        binding = self.env["room.exchange.binding"].create(
            {
                "calendar_id": calendar.id,
                "booking_id": booking.id,
                "origin": "exchange",
            }
        )
        binding.write(self._synced_values(action, binding, booking))

    def _update_booking(self, action, binding):
        booking = binding.booking_id
        values = {}
        changes = {change.field: change.new for change in action.changes}
        if "start" in changes or "stop" in changes:
            start = changes.get("start") or booking.start
            stop = changes.get("stop") or booking.stop
            values.update(start=start, duration=(stop - start).total_seconds() / 3600)
        own_subject = booking.exchange_origin == "exchange" or (
            self.calendar.privacy_mode == "full"
        )
        if "subject" in changes and own_subject:
            values["name"] = changes["subject"]
        if "is_private" in changes and booking.meeting_id:
            booking.meeting_id.privacy = "private" if changes["is_private"] else False
        if values:
            booking.write(values)
        self.payloads[booking.id] = self._payload(booking)
        binding.write(self._synced_values(action, binding))
        if action.conflict:
            self._post(booking, self._conflict_message(action, winner="Exchange"))

    def _cancel_booking(self, action, binding):
        booking = binding.booking_id
        if booking.active:
            booking.action_cancel()
            if booking.exchange_origin == "odoo":
                self._post(
                    booking,
                    self.env._(
                        "Cancelled because the meeting was removed from the Exchange "
                        "calendar of %(room)s.",
                        room=self.room.display_name,
                    ),
                )
        binding.unlink()

    def _execute_remote(self, client, actions):
        if not actions:
            return
        requests_by_id = {}
        for index, action in enumerate(actions):
            request = self._batch_request(str(index), action)
            requests_by_id[request.id] = (request, action)
        results = client.batch(
            [request for request, _action in requests_by_id.values()]
        )
        for result in results:
            request, action = requests_by_id[result.id]
            with self.env.cr.savepoint():
                try:
                    self._apply_remote_result(client, action, result)
                except Exception as error:  # noqa: BLE001 - recorded on the binding
                    _logger.warning(
                        "Room calendar %s: recording %s failed: %s",
                        self.calendar.id,
                        action.kind.value,
                        type(error).__name__,
                    )
                    self._record_failure(action, error)

    def _batch_request(self, request_id, action):
        base = f"/users/{self.mailbox}"
        kind = action.kind
        if kind == engine.ActionKind.DELETE_REMOTE:
            return BatchRequest(
                request_id, "DELETE", f"{base}/events/{action.event_id}"
            )
        payload = dict(self.payloads[action.booking_id])
        if kind == engine.ActionKind.CREATE_REMOTE:
            payload["transactionId"] = action.transaction_id
            return BatchRequest(request_id, "POST", f"{base}/calendar/events", payload)
        headers = None
        if kind == engine.ActionKind.UPDATE_REMOTE:
            # The marker was written with the event; an adoption writes it again.
            payload.pop("singleValueExtendedProperties", None)
            change_key = action.status.change_key if action.status else None
            if change_key and not action.conflict:
                headers = {"If-Match": f'W/"{change_key}"'}
        event_id = action.remote.event_id if action.remote else action.event_id
        return BatchRequest(
            request_id, "PATCH", f"{base}/events/{event_id}", payload, headers
        )

    def _apply_remote_result(self, client, action, result):
        kind = action.kind
        Binding = self.env["room.exchange.binding"]
        binding = self._binding(action)
        if result.error is not None:
            if kind == engine.ActionKind.DELETE_REMOTE and isinstance(
                result.error, GraphNotFound
            ):
                binding.unlink()
                return
            raise result.error
        if kind == engine.ActionKind.DELETE_REMOTE:
            binding.unlink()
            return
        booking = self.env["resource.booking"].browse(action.booking_id)
        if not binding:
            binding = Binding.search(
                [
                    ("calendar_id", "=", self.calendar.id),
                    ("booking_id", "=", booking.id),
                ],
                limit=1,
            ) or Binding.create(
                {
                    "calendar_id": self.calendar.id,
                    "booking_id": booking.id,
                    "origin": booking.exchange_origin,
                }
            )
        event = result.body or {}
        remote = engine.RemoteItem(
            event_id=event.get("id") or action.event_id,
            change_key=event.get("changeKey"),
            ical_uid=event.get("iCalUId"),
            series_master_id=event.get("seriesMasterId"),
        )
        values = self._synced_values(
            engine.Action(kind=kind, reason=action.reason, remote=remote),
            binding,
            booking,
        )
        first_export = not binding.external_id
        binding.write(values)
        if first_export and kind == engine.ActionKind.CREATE_REMOTE:
            self._post(
                booking,
                self.env._(
                    "Added to the Exchange calendar of %(room)s.",
                    room=self.room.display_name,
                ),
            )
        if action.conflict:
            self._post(booking, self._conflict_message(action, winner="Odoo"))

    def _record_failure(self, action, error):
        """A failed item waits for its retry; nothing else of the room is affected."""
        Binding = self.env["room.exchange.binding"]
        binding = (
            Binding.browse(action.binding_id).exists() if action.status else Binding
        )
        if isinstance(error, GraphConflict):
            message = self.env._(
                "The event changed in Exchange while Odoo updated it; it is read "
                "again at the next sync."
            )
        elif isinstance(error, GraphError):
            message = self.connection._graph_error_message(error)
        else:
            message = str(error)
        if not binding and action.booking_id:
            binding = Binding.create(
                {
                    "calendar_id": self.calendar.id,
                    "booking_id": action.booking_id,
                    "origin": "odoo",
                }
            )
        if not binding:
            return
        attempts = binding.sync_attempts + 1
        binding.write(
            {
                "sync_state": "error",
                "sync_error": message,
                "sync_attempts": attempts,
                "next_retry_date": self.now + engine.next_retry_delay(attempts),
            }
        )
        if isinstance(error, GraphConflict):
            binding.remote_etag = False

    # Reporting

    def _flag_overlaps(self, start, end):
        """Keep Outlook meetings and Odoo bookings that hold the room at the same time,
        and flag both so that someone decides (Conflicts view)."""
        bookings = self.env["resource.booking"].search(
            [
                ("combination_id.resource_ids", "in", self.room.ids),
                ("start", "<", end),
                ("stop", ">", start),
                ("active", "=", True),
            ]
        )
        intervals = [
            engine.Interval(
                key=booking.id,
                start=booking.start,
                stop=booking.stop,
                origin=engine.Origin(booking.exchange_origin),
            )
            for booking in bookings
        ]
        flagged = set()
        for overlap in engine.find_overlaps(intervals):
            if overlap.is_cross_origin:
                flagged.update((overlap.first.key, overlap.second.key))
        changed = bookings.filtered(lambda b: b.exchange_conflict != (b.id in flagged))
        if not changed:
            return
        # A plain column update: resource.booking.write() would re-validate the Odoo
        # booking's schedule, which the overlapping Exchange meeting now fails
        # (booking_platform.md §2.4), and refuse the flag that reports it.
        self.env.cr.execute(
            SQL(
                "UPDATE resource_booking SET exchange_conflict = id = ANY(%s)"
                " WHERE id = ANY(%s)",
                list(flagged),
                changed.ids,
            )
        )
        changed.invalidate_recordset(["exchange_conflict"])

    def _summary(self, plan):
        summary = plan.summary()
        if self.invalid_events:
            summary += f", invalid events skipped={self.invalid_events}"
        return summary[:250]

    def _changes_text(self, action):
        return "\n".join(
            f"{change.field}: {change.old} → {change.new}" for change in action.changes
        )

    def _conflict_message(self, action, winner):
        return self.env._(
            "Changed both in Odoo and in Exchange since the last sync; the "
            "%(winner)s version was kept. Overwritten: %(changes)s",
            winner=winner,
            changes=self._changes_text(action) or "-",
        )

    def _post(self, booking, message):
        booking.with_context(mail_notrack=True).message_post(
            body=message, message_type="comment", subtype_xmlid="mail.mt_note"
        )
