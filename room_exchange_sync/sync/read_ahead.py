# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""The export's read ahead: the first delta pages of a group of app-only rooms,
read in ``$batch`` envelopes in the background while their rounds run.

Nothing here holds an ``env``: the export run (models/room_exchange_export_run.py) gives
it Graph clients and plain ids, and what runs in a worker thread
(``_read_ahead_envelope``) only sends a ``$batch``.
"""

import functools
import logging
from contextlib import ExitStack

from ..graph import GraphError
from .exchange import MAILBOX_BUDGET
from .steps import run_in_background

_logger = logging.getLogger(__name__)


def _read_ahead_envelope(client, requests, mailboxes, budget, connection_id):
    """One $batch of first delta pages (in the background: no ORM); {request id:
    result}, or None when it failed."""
    try:
        with ExitStack() as spending:
            for mailbox in mailboxes if budget else ():
                spending.enter_context(
                    MAILBOX_BUDGET.spend(
                        mailbox, 1, budget=budget[0], seconds=budget[1]
                    )
                )
            return {result.id: result for result in client.batch(requests)}
    except GraphError as error:
        # Each step then reads on its own, and reports what goes wrong.
        _logger.info(
            "Export of connection %s: read ahead failed (%s)",
            connection_id,
            type(error).__name__,
        )
        return None


def _read_ahead_result(answer, request_id):
    """A room's read ahead page, once its envelope is answered (None: read it)."""
    results = answer.result()
    return results.get(request_id) if results else None


class ReadAhead:
    """First delta pages of a group of app-only rooms, read in the background:
    rooms report their request when it is known (for the next pass: once their
    writes are answered, so that the echoes are read while the rounds finish), and
    each connection's requests go in two $batch envelopes, one after the other: the
    first once half of its rooms have reported, the second once all have (or at
    ``flush()``). ``read_ahead``: {calendar id: (request, a callable that waits for
    its result, None when its envelope failed)}. Rooms reached with a person's
    sign-in each have their own token, and read on their own (they are not given).

    ``clients``: {connection id: GraphClient}; ``rooms``: {calendar id:
    (connection id, mailbox)} of the app-only rooms whose connection has a client;
    ``budget``: (requests, seconds) of the mailbox budget, or None."""

    def __init__(self, clients, rooms, budget):
        self.budget = budget
        self.read_ahead = {}
        self.clients = clients  # connection id: GraphClient
        self.connection_of = {}  # calendar id: connection id
        self.mailboxes = {}  # calendar id: mailbox
        self.unreported = {}  # connection id: {calendar id}
        self.sizes = {}  # connection id: how many rooms
        self.ready = {}  # connection id: [(calendar id, request)]
        self.previous = {}  # connection id: the future of its last envelope sent
        for calendar_id, (connection_id, mailbox) in rooms.items():
            if connection_id not in clients:
                continue
            self.connection_of[calendar_id] = connection_id
            self.mailboxes[calendar_id] = mailbox or ""
            self.unreported.setdefault(connection_id, set()).add(calendar_id)
            self.sizes[connection_id] = self.sizes.get(connection_id, 0) + 1
            self.ready.setdefault(connection_id, [])

    def client(self, calendar_id):
        return self.clients.get(self.connection_of.get(calendar_id))

    def report(self, calendar_id, request) -> None:
        """``request`` reads the room's first page next (None: nothing to read)."""
        connection_id = self.connection_of.get(calendar_id)
        unreported = self.unreported.get(connection_id)
        if unreported is None or calendar_id not in unreported:
            return
        unreported.discard(calendar_id)
        ready = self.ready[connection_id]
        if request is not None:
            ready.append((calendar_id, request))
        reported = self.sizes[connection_id] - len(unreported)
        if not unreported or (
            connection_id not in self.previous
            and ready
            and 2 * reported >= self.sizes[connection_id]
        ):
            self._send(connection_id)

    def flush(self) -> None:
        for connection_id in self.ready:
            self._send(connection_id)

    def _send(self, connection_id) -> None:
        ready, self.ready[connection_id] = self.ready[connection_id], []
        if not ready:
            return
        job = functools.partial(
            _read_ahead_envelope,
            self.clients[connection_id],
            [request for _calendar_id, request in ready],
            [self.mailboxes[calendar_id] for calendar_id, _request in ready],
            self.budget,
            connection_id,
        )
        # One envelope after the other: Graph prepares the first's pages first.
        (answer,) = run_in_background([job], after=self.previous.get(connection_id))
        self.previous[connection_id] = answer
        for calendar_id, request in ready:
            self.read_ahead[calendar_id] = (
                request,
                functools.partial(_read_ahead_result, answer, request.id),
            )
