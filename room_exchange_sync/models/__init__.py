from . import room_exchange_connection
from . import room_exchange_account
from . import room_exchange_calendar
from . import room_exchange_auth_flow
from . import room_exchange_binding
from . import resource_resource
from . import res_config_settings
