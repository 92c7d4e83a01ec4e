# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""What the addon's screens say: plain, sentence-case labels (issue 16, item 8)."""

import re

from lxml import etree

from .common import RoomExchangeCase

# Words written with a capital inside a sentence: names and acronyms.
PROPER_NOUNS = {
    "API",
    "CA",
    "Entra",
    "Exchange",
    "GCC",
    "Graph",
    "High",  # "US Government GCC High", a cloud's name
    "DoD",
    "Government",
    "IANA",
    "ID",
    "Microsoft",
    "Odoo",
    "OAuth",
    "Outlook",
    "Places",
    "Settings",
    "URI",
    "URL",
    "US",
    "Windows",
    "365",
    "21Vianet",
}
# LibCal's names for its buttons, kept for admins who come from it (README).
LIBCAL_NAMES = {
    "Authorize with Microsoft Account",
    "Remove Authorization",
    "Run the Export",
    "Outlook/Exchange Bulk Export",
}
AUTOMATIC = {
    "id",
    "display_name",
    "create_uid",
    "create_date",
    "write_uid",
    "write_date",
}
LABELLED = ("field", "button", "filter", "group", "page", "separator", "setting")


def title_case_words(text):
    """The words of ``text`` after its first that start with a capital and are not
    names."""
    if not text or text in LIBCAL_NAMES:
        return []
    words = re.findall(r"[\w'/-]+", text)
    return [
        word
        for word in words[1:]
        if word[:1].isupper()
        and not any(part in PROPER_NOUNS for part in re.split(r"[/-]", word))
        and word not in LIBCAL_NAMES
    ]


class TestScreenText(RoomExchangeCase):
    def addon_views(self):
        data = self.env["ir.model.data"].search(
            [("module", "=", "room_exchange_sync"), ("model", "=", "ir.ui.view")]
        )
        return self.env["ir.ui.view"].browse(data.mapped("res_id")).exists()

    def test_field_labels_are_sentence_case(self):
        """Every field the addon defines, as its screens and filters name it."""
        odd = []
        for model in self.env.registry.values():
            for name, field in model._fields.items():
                if field._module != "room_exchange_sync" or name in AUTOMATIC:
                    continue
                words = title_case_words(field.string)
                if words:
                    odd.append(f"{model._name}.{name}: {field.string!r}")
                if field.type == "selection" and isinstance(field.selection, list):
                    for key, label in field.selection:
                        if title_case_words(label):
                            odd.append(f"{model._name}.{name}={key}: {label!r}")
        self.assertFalse(odd, "Title Case labels:\n" + "\n".join(sorted(odd)))

    def test_view_strings_are_sentence_case(self):
        """Every label, button, filter and group title written in the addon's
        views."""
        odd = []
        for view in self.addon_views():
            arch = etree.fromstring(view.arch_db.encode())
            for node in arch.iter(*LABELLED):
                for attribute in ("string", "title", "confirm-label"):
                    text = node.get(attribute)
                    if title_case_words(text):
                        odd.append(f"{view.xml_id}: {text!r}")
        self.assertFalse(odd, "Title Case labels:\n" + "\n".join(sorted(odd)))

    def test_actions_have_a_helper_for_empty_lists(self):
        """No list of the addon opens empty without saying why and what to do."""
        data = self.env["ir.model.data"].search(
            [
                ("module", "=", "room_exchange_sync"),
                ("model", "=", "ir.actions.act_window"),
            ]
        )
        actions = self.env["ir.actions.act_window"].browse(data.mapped("res_id"))
        missing = actions.filtered(
            lambda action: action.target != "new"
            and action.res_model != "res.config.settings"
            and not action.help
        )
        self.assertFalse(missing.mapped("name"))
