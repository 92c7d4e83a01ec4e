# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
{
    "name": "Room Exchange Sync on the job queue",
    "summary": "Sync each due Exchange room as an OCA queue_job job, across workers "
    "and servers",
    "version": "19.0.1.0.0",
    "development_status": "Alpha",
    "category": "Productivity",
    "website": "https://github.com/room-exchange-sync/room_exchange_sync",
    "author": "room_exchange_sync contributors",
    "maintainers": ["room-exchange-sync"],
    "license": "AGPL-3",
    "application": False,
    "installable": True,
    "auto_install": True,
    "depends": ["room_exchange_sync", "queue_job"],
    "data": ["data/queue_job_data.xml"],
}
