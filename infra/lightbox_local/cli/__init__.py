"""`lightbox`, the command line: the laptop's way in (it is not part of any Lambda layer)."""

from lightbox_local.cli.main import main

__all__ = ["main"]
