"""A person signing in at the emulator's pages, without a browser.

Public API: ``sign_in(session, auth_uri, username, password, *, consent=True)`` follows
the authorize URL through the sign-in and consent pages exactly as a browser user would
(a GET, then the pages' own forms) and returns ``(redirect_url, fields)``: where the
page would send the browser and the fields it would post (``response_mode=form_post``)
or put in the query string.
"""

from urllib.parse import parse_qsl, urljoin, urlsplit

import requests
from lxml import html


def _form(page: requests.Response, form_id: str):
    forms = html.fromstring(page.text).xpath(f"//form[@id='{form_id}']")
    return forms[0] if forms else None


def _fields(form) -> dict[str, str]:
    return {
        element.get("name"): element.get("value") or ""
        for element in form.xpath(".//input[@name]")
    }


def _answer(page: requests.Response) -> tuple[str, dict[str, str]] | None:
    """The redirect a finished page carries: form_post form or a 302."""
    if page.is_redirect:
        location = page.headers["Location"]
        parts = urlsplit(location)
        return location.split("?")[0], dict(parse_qsl(parts.query))
    form = _form(page, "form-post")
    if form is not None:
        return form.get("action"), _fields(form)
    return None


def sign_in(
    session: requests.Session,
    auth_uri: str,
    username: str,
    password: str,
    *,
    consent: bool = True,
) -> tuple[str, dict[str, str]]:
    """Sign in and answer the consent page; raise AssertionError on an error page."""
    page = session.get(auth_uri, allow_redirects=False, timeout=30)
    answer = _answer(page)
    if answer:
        return answer
    form = _form(page, "sign-in-form")
    if form is None:
        raise AssertionError(f"no sign-in page at the authorize URL: {page.text[:300]}")
    fields = _fields(form) | {"username": username, "password": password}
    page = session.post(
        urljoin(page.url, form.get("action") or page.url),
        data=fields,
        allow_redirects=False,
        timeout=30,
    )
    answer = _answer(page)
    if answer:
        return answer
    form = _form(page, "consent-form")
    if form is None:
        raise AssertionError(f"no consent page after signing in: {page.text[:300]}")
    fields = _fields(form) | {"action": "accept" if consent else "cancel"}
    page = session.post(
        urljoin(page.url, form.get("action") or page.url),
        data=fields,
        allow_redirects=False,
        timeout=30,
    )
    answer = _answer(page)
    if answer is None:
        raise AssertionError(f"the consent page led nowhere: {page.text[:300]}")
    return answer
