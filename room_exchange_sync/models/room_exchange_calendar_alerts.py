# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Alerts to the Exchange sync managers: the daily health check
(``_cron_health_check``) keeps one to-do per problem of a room or a connection and
manager while the problem lasts, and marks it done once the problem is gone."""

from odoo import api, fields, models


class RoomExchangeCalendarAlerts(models.Model):
    _inherit = "room.exchange.calendar"  # pylint: disable=consider-merging-classes-inherited

    @api.model
    def _alert_recipients(self, company=None) -> models.Model:
        """The people Exchange alerts about a record of ``company`` go to: the
        active Exchange sync managers who work in that company (all of them for a
        record shared by every company)."""
        return (
            self.env.ref("room_exchange_sync.room_exchange_sync_group_manager")
            .sudo()
            .all_user_ids.filtered(
                lambda user: not user.share
                and user.active
                and (not company or company in user.company_ids)
            )
        ) - self.env.ref("base.user_root")

    @api.model
    def _cron_health_check(self) -> None:
        """Refresh every room's health and keep one to-do per problem and Exchange
        manager: created once, marked done when the problem is gone."""
        calendars = self.sudo().search([])
        self.env.add_to_compute(self._fields["health"], calendars)
        calendars.flush_recordset(["health"])
        connections = (
            self.env["room.exchange.connection"]
            .sudo()
            .with_context(active_test=False)
            .search([])
        )
        for connection in connections:
            for summary, note, deadline in connection._health_problems():
                self._health_set_alert(
                    connection,
                    summary,
                    note,
                    self._alert_recipients(connection.company_id),
                    deadline,
                )
        for calendar in calendars:
            for summary, note, deadline in calendar._health_problems():
                self._health_set_alert(
                    calendar,
                    summary,
                    note,
                    self._alert_recipients(calendar.company_id),
                    deadline,
                )

    def _health_problems(self) -> list[tuple]:
        """(summary, note or False, deadline) of each problem the health check
        watches on this room; a False note means the problem is absent."""
        self.ensure_one()
        room = self.room_id.display_name
        today = fields.Date.context_today(self)
        stale_before = fields.Datetime.now() - self._health_stale_delay()
        stale_note = self._health_is_stale(stale_before) and self.env._(
            "Room %(room)s has not synced successfully with Exchange since %(date)s. "
            "Open the rooms overview, check its last error and click Sync now.",
            room=room,
            date=self.last_sync_date or self.create_date,
        )
        overlaps = self.overlap_count
        overlap_note = overlaps and self.env._(
            "%(count)s bookings of room %(room)s overlap an Outlook meeting: open "
            "them from the rooms overview (Open overlaps) and move or cancel one "
            "side.",
            count=overlaps,
            room=room,
        )
        return [
            (
                self.env._("Room %(room)s does not sync", room=room),
                stale_note,
                today,
            ),
            (
                self.env._("Overlaps with Outlook in room %(room)s", room=room),
                overlap_note,
                today,
            ),
            (
                self.env._("Room %(room)s left the directory", room=room),
                self._directory_problem(),
                today,
            ),
        ]

    @api.model
    def _health_set_alert(
        self, record, summary, note, users, deadline, feedback=None
    ) -> None:
        """Keep one open to-do per user about one problem of ``record`` while
        ``note`` describes it; mark them done once the problem is gone.

        Activities are created directly (not through activity_schedule) so that
        records without the activity mixin, such as connections, get them too."""
        Activity = self.env["mail.activity"].sudo()
        open_activities = Activity.search(
            [
                ("res_model", "=", record._name),
                ("res_id", "=", record.id),
                ("summary", "=", summary),
            ]
        )
        if not note:
            open_activities.action_feedback(
                feedback=feedback
                or self.env._("Solved: found fixed by the daily health check.")
            )
            return
        missing = users - open_activities.user_id
        if missing:
            Activity.create(
                [
                    {
                        "res_model_id": self.env["ir.model"]._get_id(record._name),
                        "res_id": record.id,
                        "activity_type_id": self.env.ref(
                            "mail.mail_activity_data_todo"
                        ).id,
                        "summary": summary,
                        "note": note,
                        "date_deadline": deadline,
                        "user_id": user.id,
                    }
                    for user in missing
                ]
            )
