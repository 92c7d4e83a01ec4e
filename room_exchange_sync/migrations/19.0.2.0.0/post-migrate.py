# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""19.0.2.0.0: one export run per room calendar that had export data (copied aside
by pre-migrate.py), which becomes the calendar's latest export; the export's cron
job now runs on room.exchange.export.run."""

from odoo import SUPERUSER_ID, api
from odoo.tools import SQL

LEGACY_TABLE = "room_exchange_export_run_legacy"
STATES = ("queued", "running", "done", "failed")
CRON = "room_exchange_sync.ir_cron_room_exchange_export"


def migrate(cr, version):
    if not version:
        return
    env = api.Environment(cr, SUPERUSER_ID, {})
    _move_cron(env)
    cr.execute("SELECT to_regclass(%s)", [LEGACY_TABLE])
    if not cr.fetchone()[0]:
        return
    legacy = SQL.identifier(LEGACY_TABLE)
    cr.execute(
        SQL(
            """
        SELECT calendar_id, export_state, export_start, export_end, export_horizon,
               export_total, export_already, export_done, export_failed,
               export_summary, export_user_id, export_round_failures,
               export_retry_date
          FROM %s ORDER BY calendar_id
            """,
            legacy,
        )
    )
    Run = env["room.exchange.export.run"]
    for (
        calendar_id,
        state,
        start,
        end,
        horizon,
        total,
        already,
        done,
        failed,
        summary,
        user_id,
        round_failures,
        retry_date,
    ) in cr.fetchall():
        calendar = env["room.exchange.calendar"].browse(calendar_id)
        run = Run.create(
            {
                "calendar_id": calendar_id,
                "state": state if state in STATES else "done",
                "date_start": start,
                "date_end": end,
                "horizon": horizon,
                "total_count": total or 0,
                "already_count": already or 0,
                "exported_count": done or 0,
                "failed_count": failed or 0,
                "summary": summary,
                "user_id": user_id,
                "round_failure_count": round_failures or 0,
                "retry_date": retry_date,
            }
        )
        calendar.export_run_id = run
        if start:
            # Started when it was queued, not when the database was upgraded.
            cr.execute(
                "UPDATE room_exchange_export_run SET create_date = %s WHERE id = %s",
                [start, run.id],
            )
    cr.execute(SQL("DROP TABLE %s", legacy))


def _move_cron(env):
    """The cron record sits in data/ir_cron_data.xml now, with the other cron jobs
    (noupdate): point the existing one at the export runs."""
    cron = env.ref(CRON, raise_if_not_found=False)
    if not cron:
        return
    cron.write(
        {
            "model_id": env["ir.model"]._get_id("room.exchange.export.run"),
            "code": "model._cron_export()",
        }
    )
    env["ir.model.data"].search(
        [("module", "=", "room_exchange_sync"), ("name", "=", CRON.split(".")[1])]
    ).noupdate = True
