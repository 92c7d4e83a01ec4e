from . import test_connection
from . import test_access
from . import test_room_exchange_tab
