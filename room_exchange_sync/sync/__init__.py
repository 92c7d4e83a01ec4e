# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""The sync round of one room, between Odoo's records and Exchange (Odoo layer).

Where to look (docs/architecture.md draws it):

- :mod:`.round`: ``SyncRound``, a round's orchestration: read both sides, ask the
  engine, carry out its plan, flag overlaps, record the outcome on the room;
- :mod:`.options`: ``RoundOptions`` (what a round is asked to do, frozen) and
  ``RoomSettings`` (what it knows of its room from the start);
- :mod:`.remote`: reading Exchange into the engine's items (``read_changes``,
  ``ExchangeRead``), unreadable items listed on the room (:mod:`.problems`);
- :mod:`.exchange`: the Graph work that runs in worker threads, free functions
  with no ``env`` (``read_delta``, ``read_events``, ``send_writes``,
  ``MAILBOX_BUDGET``);
- :mod:`.local`: reading Odoo (``read_window``, ``LocalWindow``, ``Payloads``,
  ``SYNC_CONTEXT``);
- :mod:`.mapping`: what of a booking its event shows (``EXPORTED``, ``snapshot``);
- :mod:`.executors` and :mod:`.execution`: one executor per kind of action
  (``EXECUTORS``, mirroring the engine's table), and carrying out a plan;
- :mod:`.history`: each booking's chatter and the room's summary line;
- :mod:`.overlaps`: Outlook meetings and Odoo bookings holding the room at once;
- :mod:`.steps`: several rooms' Graph work side by side, their database work one
  at a time; :mod:`.read_ahead`: the bulk export's first delta pages, read in the
  background;
- :mod:`.seams`: the named points where tests step in.
"""

from .exchange import MAILBOX_BUDGET
from .history import log_notes
from .local import SYNC_CONTEXT
from .options import RoundOptions
from .round import SyncRound
from .steps import run_in_background, run_inline, run_side_by_side, worker_pool

__all__ = [
    "MAILBOX_BUDGET",
    "SYNC_CONTEXT",
    "RoundOptions",
    "SyncRound",
    "log_notes",
    "run_in_background",
    "run_inline",
    "run_side_by_side",
    "worker_pool",
]
