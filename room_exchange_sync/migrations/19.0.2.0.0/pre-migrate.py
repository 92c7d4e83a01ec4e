# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""19.0.2.0.0: the export became a model of its own (room.exchange.export.run), and a
booking's flag for a time clash with an Outlook meeting is an "overlap" (a
"conflict" is a booking edited on both sides).

The flag's column is renamed (resource_booking.exchange_conflict becomes
exchange_overlap), keeping every booking's flag.

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
    rename_overlap_flag(cr)
    keep_export_columns(cr)


def rename_overlap_flag(cr):
    """resource_booking.exchange_conflict becomes exchange_overlap (kept as is)."""
    cr.execute(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_name = 'resource_booking'"
        " AND column_name IN ('exchange_conflict', 'exchange_overlap')"
    )
    if {row[0] for row in cr.fetchall()} == {"exchange_conflict"}:
        cr.execute(
            "ALTER TABLE resource_booking"
            " RENAME COLUMN exchange_conflict TO exchange_overlap"
        )


def keep_export_columns(cr):
    """The export's columns of the room calendars, copied aside for post-migrate."""
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
