# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Carrying out a round's plan: one executor per kind of action, in a table that
mirrors the engine's (``EXECUTORS``), so that "what does CREATE_REMOTE do" has one
answer.

Local executors write Odoo (with the sync context); remote ones make the request of
their action (sent in ``$batch`` requests, in a worker thread) and record its
answer. A failure of one item is recorded on its binding and never stops the room:
items are carried out together in a savepoint, and one by one when that fails.
"""

from .. import engine
from ..graph import (
    BatchRequest,
    create_event_request,
    decline_event_request,
    delete_event_request,
    update_event_request,
    weak_etag,
)
from . import seams

Kind = engine.ActionKind


class Executor:
    """What the shell does for one kind of action (in Odoo only, by default)."""

    remote = False
    # A remote action that ends a link rather than write an event's payload.
    ending = False

    def run(self, execution, action, binding) -> None:
        """Carry out ``action`` in Odoo (``binding``: its link, or none)."""
        raise NotImplementedError


class ForgetLink(Executor):
    def run(self, execution, action, binding) -> None:
        binding._forget()


class MarkSynced(Executor):
    def run(self, execution, action, binding) -> None:
        binding.write(execution.synced_values(action, binding))


class FlagConflict(Executor):
    def run(self, execution, action, binding) -> None:
        binding._mark_conflict(execution.history.changes_text(action))


class ImportMeeting(Executor):
    """A meeting booked in Outlook becomes a booking (a batch: one ``create``)."""

    def run(self, execution, action, binding) -> None:
        self.run_batch(execution, [action])

    def run_batch(self, execution, actions) -> None:
        env = execution.env
        calendar = execution.calendar
        Booking = env["resource.booking"]
        events = [execution.read.imported[action.remote.event_id] for action in actions]
        vals_list = [
            Booking._exchange_values_from_event(event, calendar) for event in events
        ]
        seams.reach(seams.MEETING_IMPORTING, vals_list=vals_list)
        bookings = (
            Booking.with_context(room_exchange_import=True)
            .create(vals_list)
            .with_context(room_exchange_import=False)
        )
        private = env["calendar.event"]
        for booking, event in zip(bookings, events, strict=True):
            if event.is_private:
                private |= booking.meeting_id
        if private:
            private.privacy = "private"
        Binding = env["room.exchange.binding"]
        synced = []
        for booking, action in zip(bookings, actions, strict=True):
            execution.history.note(
                booking.id,
                env._(
                    "Imported from the Exchange calendar of %(room)s (booked in "
                    "Outlook).",
                    room=execution.history.room_name,
                ),
            )
            execution.payloads.of_record(booking)
            synced.append(execution.synced_values(action, Binding, booking.id))
        Binding._bind(
            calendar, [(booking.id, "exchange") for booking in bookings], synced
        )


class UpdateBooking(Executor):
    """A meeting changed in Outlook: its booking follows."""

    def run(self, execution, action, binding) -> None:
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
            execution.calendar.privacy_mode != "busy"
        )
        if "subject" in changes and own_subject:
            values["name"] = changes["subject"]
        if "is_private" in changes and booking.meeting_id:
            booking.meeting_id.privacy = "private" if changes["is_private"] else False
        if values:
            booking.write(values)
        execution.payloads.of_record(booking)
        binding.write(execution.synced_values(action, binding))
        history = execution.history
        if action.conflict:
            history.note(booking.id, history.conflict_message(action, "Exchange"))
        else:
            history.note(
                booking.id,
                execution.env._(
                    "Updated from the Exchange calendar of %(room)s: %(changes)s.",
                    room=history.room_name,
                    changes=", ".join(history.change_labels(action)),
                ),
            )


class CancelBooking(Executor):
    """A meeting cancelled or removed in Outlook: its booking is cancelled."""

    def run(self, execution, action, binding) -> None:
        booking = binding.booking_id
        if booking.active:
            booking.action_cancel()
            execution.history.note(
                booking.id,
                execution.env._(
                    "Cancelled because the meeting was cancelled or removed in the "
                    "Exchange calendar of %(room)s.",
                    room=execution.history.room_name,
                ),
            )
        binding._forget()


class WriteEvent(Executor):
    """A write of a booking's event to Exchange; its answer links them."""

    remote = True

    def request(self, execution, request_id, action) -> BatchRequest:
        raise NotImplementedError

    def answered(self, execution, action, result, binding) -> None:
        """Record Exchange's answer (``binding``: the link, or none yet)."""
        booking_id = action.booking_id
        if not binding:
            Binding = execution.env["room.exchange.binding"]
            binding = Binding.search(
                [
                    ("calendar_id", "=", execution.calendar.id),
                    ("booking_id", "=", booking_id),
                ],
                limit=1,
            ) or Binding._bind(
                execution.calendar, [(booking_id, execution.origin_of(booking_id))]
            )
        binding.write(execution.answer_values(action, result, binding))
        execution.history.note_remote(action)


class CreateEvent(WriteEvent):
    def request(self, execution, request_id, action) -> BatchRequest:
        return create_event_request(
            execution.settings.mailbox,
            execution.payloads.of(action.booking_id),
            transaction_id=action.transaction_id,
            marker=action.marker,
            request_id=request_id,
        )


class UpdateEvent(WriteEvent):
    def request(self, execution, request_id, action) -> BatchRequest:
        # The marker was written with the event (the engine gives an update none).
        etag = None
        change_key = action.status.change_key if action.status else None
        if change_key and not action.conflict:
            etag = weak_etag(change_key)
        return _patch(execution, request_id, action, etag)


class AdoptEvent(WriteEvent):
    def request(self, execution, request_id, action) -> BatchRequest:
        # An adoption writes the engine's marker again.
        return _patch(execution, request_id, action, None)


def _patch(execution, request_id, action, etag) -> BatchRequest:
    return update_event_request(
        execution.settings.mailbox,
        action.remote.event_id if action.remote else action.event_id,
        execution.payloads.of(action.booking_id),
        etag=etag,
        marker=action.marker,
        request_id=request_id,
    )


class DeleteEvent(WriteEvent):
    ending = True

    def request(self, execution, request_id, action) -> BatchRequest:
        return delete_event_request(
            execution.settings.mailbox, action.event_id, request_id=request_id
        )

    def answered(self, execution, action, result, binding) -> None:
        binding._forget()
        execution.history.note_remote(action)


class DeclineMeeting(WriteEvent):
    """A meeting booked in Outlook was cancelled in Odoo: the room declines it,
    telling its organizer."""

    ending = True

    def request(self, execution, request_id, action) -> BatchRequest:
        return decline_event_request(
            execution.settings.mailbox,
            action.event_id,
            comment=execution.env._(
                "The booking of room %(room)s was cancelled in Odoo.",
                room=execution.history.room_name,
            ),
            request_id=request_id,
        )

    def answered(self, execution, action, result, binding) -> None:
        binding._mark_declined(execution.settings.now)
        execution.history.note_remote(action)


EXECUTORS = {
    Kind.FORGET: ForgetLink(),
    Kind.MARK_SYNCED: MarkSynced(),
    Kind.CONFLICT: FlagConflict(),
    Kind.DELETE_REMOTE: DeleteEvent(),
    Kind.DECLINE_REMOTE: DeclineMeeting(),
    Kind.CANCEL_LOCAL: CancelBooking(),
    Kind.UPDATE_REMOTE: UpdateEvent(),
    Kind.UPDATE_LOCAL: UpdateBooking(),
    Kind.ADOPT_REMOTE: AdoptEvent(),
    Kind.CREATE_REMOTE: CreateEvent(),
    Kind.CREATE_LOCAL: ImportMeeting(),
}
REMOTE_KINDS = frozenset(
    kind for kind, executor in EXECUTORS.items() if executor.remote
)
