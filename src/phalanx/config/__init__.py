"""Configuration: one immutable :class:`Settings`, built from defaults < file < env < flags."""

from phalanx.config.settings import OPTIONS, Settings, build_settings

__all__ = ["OPTIONS", "Settings", "build_settings"]
