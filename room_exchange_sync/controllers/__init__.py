"""HTTP endpoints of the addon: the OAuth callback and Graph change notifications."""

from . import main
from . import notifications
