from . import room_exchange_calendar
