# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""One sync round of one room calendar: read Exchange, plan, execute.

The engine decides (``engine.plan``); this module only adapts records into engine items,
and carries out the actions: Graph writes in ``$batch`` requests, Odoo writes with the
sync context. A failure of one item is recorded on its binding and never stops the room.
"""

import logging
import time as time_module
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
from ..graph.client import BATCH_LIMIT
from .resource_booking import SYNC_CONTEXT

_logger = logging.getLogger(__name__)

POLICIES = {
    "origin": engine.ConflictPolicy.ORIGIN,
    "odoo": engine.ConflictPolicy.ODOO,
    "exchange": engine.ConflictPolicy.EXCHANGE,
}

# When this process last sent a paced $batch to each mailbox (SyncRound.batch_interval
# holds across rounds, e.g. the chunks of an export).
LAST_BATCH_AT = {}


class SyncRound:
    """Sync one room calendar once. ``run()`` returns the engine's plan.

    Raises GraphError (the round could not read Exchange; nothing was written) and
    engine.StorageEmpty (the safety rail refused the round).
    """

    def __init__(
        self,
        calendar,
        *,
        full=False,
        confirm_cancellations=False,
        window_end=None,
        dry_run=False,
        max_creates=None,
        batch_interval=0.0,
    ):
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
        self.remote_writes = 0
        self.needs_full_round = False
        self.imported = {}
        self.payloads = {}
        # Bulk export (wizards/room_exchange_export.py): ``window_end`` reaches further
        # ahead than the sync window; ``dry_run`` plans without executing or storing
        # anything; ``max_creates`` leaves the creations beyond it for the next round;
        # ``batch_interval`` is the least time (s) between two $batch requests.
        self.window_end = window_end
        self.dry_run = dry_run
        self.max_creates = max_creates
        self.batch_interval = batch_interval
        self.kept_creates = 0
        self.deferred_creates = 0

    def run(self):
        client = self.calendar._graph_client()
        start, end = self._window()
        plan = self._round(client, start, end)
        if not self.dry_run and self.remote_writes and not self.needs_full_round:
            # Our own writes come back in the next delta round. Reading them now
            # (their change keys are stored: they are recognised as echoes) moves the
            # delta link past them, so that what Outlook does to them before the next
            # round, even deleting them, is reported then: Graph does not report an
            # item created and deleted between two delta rounds.
            self.full, self.remote_writes = False, 0
            self._round(client, start, end, summary=plan)
        return plan

    def _round(self, client, start, end, summary=None):
        round_kind, remote, delta_link = self._read_exchange(client, start, end)
        local = self._local_items(start, end)
        status = self._status_entries(start, end)
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
        if self.dry_run:
            return plan
        self._execute(client, plan, remote)
        self._flag_overlaps(start, end)
        if self._skipped_events_changed(plan, status, remote):
            self.needs_full_round = True
        values = {
            "delta_link": False if self.needs_full_round else delta_link,
            "window_start": start,
            "window_end": end,
            "last_sync_date": self.now,
            "last_sync_summary": self._summary(summary or plan),
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

    @staticmethod
    def _skipped_events_changed(plan, status, remote):
        """True when Exchange reported a change of an event whose binding waits for
        its retry: the delta link must not move past that change, so the next round
        lists the whole window and sees it."""
        waiting = {
            entry.event_id for entry in status if entry.binding_id in plan.skipped
        }
        return bool(waiting & remote.keys())

    # Reading Exchange

    def _window(self):
        """[today - days back, today + days ahead), re-anchored every day."""
        today = datetime.combine(fields.Date.context_today(self.calendar), time())
        end = today + timedelta(days=self.connection.sync_future_days)
        # An export's horizon stays in the window of later rounds: a bound event
        # outside the window of a full round would be taken for a removed one.
        horizons = (self.window_end, self.calendar.export_horizon)
        end = max([end, *(horizon for horizon in horizons if horizon)])
        return (today - timedelta(days=self.connection.sync_past_days), end)

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
            if calendar.auth_mode != "delegated":
                raise
            # Exchange has been reported to refuse delta paging on room calendars
            # reached through a delegated share (403 on the nextLink): list the window
            # page by page instead, without a delta link.
            _logger.warning(
                "Room calendar %s: delta refused, listing the window", calendar.id
            )
            events = list(client.iter_calendar_view(self.mailbox, start, end))
            removed, link, incremental = [], False, False
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

    def _in_round(self, binding, start, end):
        """Whether a binding takes part in a round over [start, end).

        Exchange lists only the window, so a booking outside it (moved far ahead, or
        in the past as the window moves on every day) is absent from a full round
        without being removed. Tombstones and cancelled or unscheduled bookings
        always take part: their events must go.
        """
        booking = binding.booking_id
        if not booking or not booking.active or not booking.start:
            return True
        return booking.start < end and booking.stop > start

    def _round_bindings(self, start, end):
        return self.calendar.binding_ids.filtered(
            lambda binding: self._in_round(binding, start, end)
        )

    def _room_bookings(self, start, end):
        bound = self._round_bindings(start, end).booking_id
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

    def _status_entries(self, start, end):
        entries = []
        for binding in self._round_bindings(start, end):
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
        self._execute_remote_paced(client, self._limit_creates(remote_actions))

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
        # Only "Busy only" hides the subject from Exchange; otherwise a rename in
        # Outlook is a rename of the booking.
        own_subject = booking.exchange_origin == "exchange" or (
            self.calendar.privacy_mode != "busy"
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
        self.remote_writes += len(actions)
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

    def _limit_creates(self, actions):
        """Keep at most ``max_creates`` first creations in this run; the others wait
        for the next run (their bookings stay unbound, so that it plans them again). A
        re-creation is never deferred: an incremental round would not see again that
        its event was removed."""
        if self.max_creates is None:
            return actions
        kept = []
        for action in actions:
            if action.kind == engine.ActionKind.CREATE_REMOTE and not (
                action.status and action.status.event_id
            ):
                if self.kept_creates >= self.max_creates:
                    self.deferred_creates += 1
                    continue
                self.kept_creates += 1
            kept.append(action)
        return kept

    def _execute_remote_paced(self, client, actions):
        """``_execute_remote`` one $batch at a time, ``batch_interval`` apart, so that
        a long export stays under the mailbox's request budget."""
        if not self.batch_interval:
            return self._execute_remote(client, actions)
        mailbox = (self.mailbox or "").lower()
        for offset in range(0, len(actions), BATCH_LIMIT):
            last = LAST_BATCH_AT.get(mailbox)
            if last is not None:
                wait = self.batch_interval - (time_module.monotonic() - last)
                if wait > 0:
                    time_module.sleep(wait)
            LAST_BATCH_AT[mailbox] = time_module.monotonic()
            self._execute_remote(client, actions[offset : offset + BATCH_LIMIT])

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
            if isinstance(result.error, GraphNotFound):
                self._event_gone(action, binding)
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

    def _event_gone(self, action, binding):
        """The event disappeared from Exchange although this round's read did not say
        so (deleted meanwhile). A deletion is then done; an update re-creates it in
        the next round, which the unbound booking asks for at once."""
        if action.kind == engine.ActionKind.DELETE_REMOTE:
            binding.unlink()
            return
        binding.write(
            {"external_id": False, "remote_etag": False, "sync_state": "pending"}
        )
        self.calendar._request_sync()

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
            # The event changed in Exchange after this round read it: the next full
            # round reads it again and the conflict policy decides.
            self.needs_full_round = True

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
