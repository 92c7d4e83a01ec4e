from . import test_connection
from . import test_access
from . import test_room_exchange_tab
from . import test_oauth
from . import test_app_only
from . import test_browser
from . import test_sync
from . import test_notifications
