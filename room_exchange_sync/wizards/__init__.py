"""Transient models: the bulk export wizard, Rooms from Microsoft 365."""

from . import room_exchange_export
from . import room_exchange_directory
from . import room_exchange_directory_listing
from . import room_exchange_directory_room
from . import room_exchange_directory_mapping
