"""Transient models: the bulk export wizard."""
