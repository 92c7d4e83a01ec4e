# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""19.0.2.0.0: the export became a model of its own (room.exchange.export.run), and a
booking's flag for a time clash with an Outlook meeting is an "overlap" (a
"conflict" is a booking edited on both sides).

The flag's column is renamed (resource_booking.exchange_conflict becomes
exchange_overlap), keeping every booking's flag, with its field; the addon's views
stored in the database take the new names before the new views load (an inherited
view still naming ``action_open_conflicts`` would fail the validation of the view it
extends).

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


# Old name -> new name, longest first (a name may contain a shorter one).
OVERLAP_NAMES = (
    ("_compute_exchange_conflict_with_id", "_compute_exchange_overlap_with_id"),
    ("exchange_conflict_with_", "exchange_overlap_with_"),
    ("exchange_conflict_alert", "exchange_overlap_alert"),
    (
        "resource_booking_action_exchange_conflicts",
        "resource_booking_action_exchange_overlaps",
    ),
    ("action_exchange_open_conflict", "action_exchange_open_overlap"),
    ("action_open_conflicts", "action_open_overlaps"),
    ("conflict_count", "overlap_count"),
    ("exchange_conflicts", "exchange_overlaps"),
    ("exchange_conflict", "exchange_overlap"),
)


def rename_overlap_flag(cr):
    """resource_booking.exchange_conflict becomes exchange_overlap (kept as is),
    and the addon's stored views say the new names."""
    arch = SQL("arch_db::text")
    for old, new in OVERLAP_NAMES:
        arch = SQL("replace(%s, %s, %s)", arch, old, new)
    cr.execute(
        SQL(
            """
            UPDATE ir_ui_view SET arch_db = %s::jsonb
             WHERE arch_db::text LIKE '%%conflict%%'
               AND id IN (SELECT res_id FROM ir_model_data
                           WHERE module = 'room_exchange_sync'
                             AND model = 'ir.ui.view')
            """,
            arch,
        )
    )
    cr.execute(
        "UPDATE ir_model_fields SET name = 'exchange_overlap'"
        " WHERE model = 'resource.booking' AND name = 'exchange_conflict'"
    )
    cr.execute(
        "UPDATE ir_model_data SET name = 'field_resource_booking__exchange_overlap'"
        " WHERE module = 'room_exchange_sync' AND model = 'ir.model.fields'"
        " AND name = 'field_resource_booking__exchange_conflict'"
    )
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
