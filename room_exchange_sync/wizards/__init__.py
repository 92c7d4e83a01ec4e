"""Transient models: the bulk export wizard."""

from . import room_exchange_export
