"""A small HTML page of the emulator where a person books a room "in Outlook".

``GET /_emulator/outlook`` shows a form (person, room, subject, start, end, time zone)
and the room calendars' upcoming meetings; ``POST /_emulator/outlook`` (form-encoded)
calls ``Emulator.book_room`` and shows the page again with the result. Meant for people
trying the addon (``scripts/demo.py``); scripts should use the JSON admin API
(``POST /_emulator/outlook/book``). Element ids are stable for browser tests:
``#person``, ``#room``, ``#subject``, ``#start``, ``#end``, ``#time_zone``, ``#book``,
``#result`` (``.ok`` or ``.error``) and ``#meetings``.
"""

from __future__ import annotations

import datetime as dt
import html
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request, Response

if TYPE_CHECKING:
    from .app import Emulator

PATH = "/_emulator/outlook"
DEFAULT_TIME_ZONE = "Europe/Brussels"

_STYLE = """
body{font-family:"Segoe UI",system-ui,sans-serif;margin:0;background:#f3f2f1;
color:#201f1e}
header{background:#0f6cbd;color:#fff;padding:12px 24px;font-size:18px}
main{display:flex;gap:24px;padding:24px;flex-wrap:wrap}
section{background:#fff;border-radius:6px;box-shadow:0 1px 3px #0002;padding:16px 20px}
form.booking{width:340px}
label{display:block;margin:10px 0 4px;font-size:13px;font-weight:600}
input,select{width:100%;box-sizing:border-box;padding:6px;font-size:14px}
button{margin-top:16px;background:#0f6cbd;color:#fff;border:0;border-radius:4px;
padding:8px 20px;font-size:14px;cursor:pointer}
.ok{background:#dff6dd;padding:8px;border-radius:4px}
.error{background:#fde7e9;padding:8px;border-radius:4px}
table{border-collapse:collapse;font-size:13px}
td,th{padding:4px 10px;border-bottom:1px solid #edebe9;text-align:left}
small{color:#605e5c}
"""


def _esc(value: Any) -> str:
    return html.escape(str(value if value is not None else ""), quote=True)


def _local_input(value: str) -> str:
    """``2026-11-24T10:00`` (datetime-local) -> ``2026-11-24T10:00:00``."""
    value = (value or "").strip()
    if len(value) == 16:
        value += ":00"
    dt.datetime.fromisoformat(value)  # ValueError on garbage
    return value


def _default_times() -> tuple[str, str]:
    start = dt.datetime.now().replace(minute=0, second=0, microsecond=0)
    start += dt.timedelta(hours=2)
    end = start + dt.timedelta(hours=1)
    return start.strftime("%Y-%m-%dT%H:%M"), end.strftime("%Y-%m-%dT%H:%M")


def _book(emulator: Emulator, form: Any) -> tuple[str, str, dict[str, str]]:
    values = {
        key: (form.get(key) or "").strip()
        for key in ("person", "room", "subject", "start", "end", "time_zone")
    }
    try:
        start = _local_input(values["start"])
        end = _local_input(values["end"])
        if end <= start:
            raise ValueError("the end must come after the start")
        event = emulator.book_room(
            values["person"],
            values["room"],
            values["subject"] or "Meeting",
            start,
            end,
            time_zone=values["time_zone"] or DEFAULT_TIME_ZONE,
        )
    except (ValueError, LookupError, TypeError) as exc:
        return "error", f"Not booked: {exc}", values
    except Exception as exc:  # a Graph error from the store (bad zone, ...)
        message = getattr(exc, "message", None) or str(exc)
        return "error", f"Not booked: {message}", values
    text = (
        f"Booked \u201c{event.get('subject')}\u201d in "
        f"{(event.get('location') or {}).get('displayName', values['room'])} "
        f"(event id {event.get('id')})."
    )
    return "ok", text, values


def _meetings(emulator: Emulator) -> str:
    rows = []
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None).isoformat()
    for room in emulator.scenario.rooms:
        try:
            items = emulator.store.snapshot(room.email)
        except Exception:  # a room without a mailbox
            continue
        for item in items:
            end = ((item.get("end") or {}).get("dateTime") or "")[:19]
            if item.get("isCancelled") or end < now[:19]:
                continue
            organizer = ((item.get("organizer") or {}).get("emailAddress") or {}).get(
                "name", ""
            )
            start = ((item.get("start") or {}).get("dateTime") or "")[:16]
            rows.append((start, room.display_name, item.get("subject"), organizer))
    rows.sort()
    if not rows:
        return "<p><small>No upcoming meetings.</small></p>"
    body = "".join(
        f"<tr><td>{_esc(start.replace('T', ' '))}</td><td>{_esc(room)}</td>"
        f"<td>{_esc(subject)}</td><td>{_esc(organizer)}</td></tr>"
        for start, room, subject, organizer in rows[:50]
    )
    return (
        "<table><tr><th>start (UTC)</th><th>room</th><th>subject</th>"
        f"<th>organizer</th></tr>{body}</table>"
    )


def _options(items: list[tuple[str, str]], selected: str) -> str:
    return "".join(
        f'<option value="{_esc(value)}"{" selected" if value == selected else ""}>'
        f"{_esc(label)}</option>"
        for value, label in items
    )


def handle(emulator: Emulator, request: Request) -> Response:
    """Serve ``GET``/``POST /_emulator/outlook``."""
    if request.method not in ("GET", "POST"):
        return Response(
            "Method not allowed", status=405, headers={"Allow": "GET, POST"}
        )
    result_html = ""
    start, end = _default_times()
    values = {"subject": "Team meeting", "start": start, "end": end}
    if request.method == "POST":
        kind, text, values = _book(emulator, request.form)
        result_html = f'<p id="result" class="{kind}">{_esc(text)}</p>'
    scenario = emulator.scenario
    people = [(u.upn, f"{u.display_name} ({u.upn})") for u in scenario.users]
    rooms = [(r.email, f"{r.display_name} \u2014 {r.email}") for r in scenario.rooms]
    person = values.get("person") or (people[0][0] if people else "")
    room = values.get("room") or (rooms[0][0] if rooms else "")
    time_zone = values.get("time_zone") or DEFAULT_TIME_ZONE
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Outlook (emulator)</title>
<style>{_STYLE}</style></head>
<body><header>Outlook <small style="color:#cfe4fa">\u2014 Microsoft emulator</small>
</header><main>
<section><form class="booking" method="post" action="{PATH}">
<h2>New meeting with a room</h2>
{result_html}
<label for="person">Organizer</label>
<select id="person" name="person">{_options(people, person)}</select>
<label for="room">Room</label>
<select id="room" name="room">{_options(rooms, room)}</select>
<label for="subject">Subject</label>
<input id="subject" name="subject" value="{_esc(values.get("subject"))}">
<label for="start">Start</label>
<input id="start" name="start" type="datetime-local"
 value="{_esc(values.get("start"))}">
<label for="end">End</label>
<input id="end" name="end" type="datetime-local" value="{_esc(values.get("end"))}">
<label for="time_zone">Time zone</label>
<input id="time_zone" name="time_zone" value="{_esc(time_zone)}">
<button id="book" type="submit">Book</button>
<p><small>The room calendar gets the meeting with the organizer as organizer and the
room as accepted resource attendee; the room's processing options apply.</small></p>
</form></section>
<section id="meetings"><h2>Upcoming meetings in the rooms</h2>{_meetings(emulator)}
</section></main></body></html>"""
    return Response(page, content_type="text/html; charset=utf-8")
