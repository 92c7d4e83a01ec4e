# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Rooms from the Microsoft 365 directory (Graph Places): what the concept shares.

Where it lives:

- ``resource.resource`` (models/resource_resource.py): the room's capacity,
  building, floor and equipment, and where they come from (``room_attribute_source``),
  refreshed from the directory by models/resource_resource_directory.py;
- ``room.exchange.calendar`` (models/room_exchange_calendar_directory.py): whether
  its mailbox is still in the directory and within reach (``directory_state``,
  flagged on the rooms overview), and the daily job ``_cron_directory_refresh``
  (data/ir_cron_directory_data.xml);
- ``room.exchange.connection`` (models/room_exchange_connection_directory.py):
  its directory, and the button that opens *Rooms from Microsoft 365*
  (wizards/room_exchange_directory.py), which maps many rooms at once;
- the capacity where a room is chosen: models/resource_booking_combination.py,
  models/resource_booking_type.py, models/resource_booking.py.
"""

from datetime import timedelta

from odoo.exceptions import AccessError

MANAGER = "room_exchange_sync.room_exchange_sync_group_manager"
# Rooms checked per committed step of the daily refresh.
REFRESH_CHUNK = 100
# A room checked less than this long ago is not checked again by the daily job.
REFRESH_AGE = timedelta(hours=20)
DIRECTORY_STATES = [
    ("unknown", "Not checked"),
    ("listed", "In the directory"),
    ("removed", "Not in the directory"),
    ("out_of_reach", "Out of reach"),
]


def check_manager(env):
    """Only Exchange sync managers list and map directory rooms."""
    if not env.user.has_group(MANAGER):
        raise AccessError(
            env._("Only Exchange sync managers can connect rooms from Microsoft 365.")
        )
