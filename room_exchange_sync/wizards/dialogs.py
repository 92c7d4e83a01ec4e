# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""What a wizard returns to show itself (again) as a dialog."""


def dialog_action(wizard, name, size="large"):
    """The form of ``wizard`` in a dialog titled ``name``; an empty ``wizard`` (a
    model) opens a new record."""
    action = {
        "type": "ir.actions.act_window",
        "name": name,
        "res_model": wizard._name,
        "view_mode": "form",
        "views": [(False, "form")],
        "target": "new",
        "context": {"dialog_size": size},
    }
    if wizard:
        action["res_id"] = wizard.id
    return action
