# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""19.0.2.0.0: the export became a model of its own (room.exchange.export.run).

Before the module is loaded, the export's columns of room_exchange_calendar are
copied aside, one row per room calendar with export data; post-migrate.py makes
them export runs. Odoo drops the old columns itself once the upgrade is done (their
fields are gone).
"""

from odoo.tools import SQL

LEGACY_TABLE = "room_exchange_export_run_legacy"
COLUMNS = (
    "export_state",
    "export_start",
    "export_end",
    "export_horizon",
    "export_total",
    "export_already",
    "export_done",
    "export_failed",
    "export_summary",
    "export_user_id",
    "export_round_failures",
    "export_retry_date",
)


def migrate(cr, version):
    if not version:
        return
    cr.execute(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_name = 'room_exchange_calendar' AND column_name = ANY(%s)",
        [list(COLUMNS)],
    )
    if {row[0] for row in cr.fetchall()} != set(COLUMNS):
        return  # migrated already, or never had them
    legacy = SQL.identifier(LEGACY_TABLE)
    cr.execute(SQL("DROP TABLE IF EXISTS %s", legacy))
    cr.execute(
        SQL(
            """
            CREATE TABLE %s AS
            SELECT id AS calendar_id, %s
              FROM room_exchange_calendar
             WHERE coalesce(export_state, 'none') != 'none'
                OR export_horizon IS NOT NULL
                OR export_summary IS NOT NULL
            """,
            legacy,
            SQL(", ").join(SQL.identifier(column) for column in COLUMNS),
        )
    )
