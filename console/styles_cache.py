"""Let go of what removed widgets drew (Textual issue #6665, open).

Textual 8.2 decorates the method ``StylesCache.get_inner_outer`` with
``functools.lru_cache(1024)``, so the cache's keys hold the ``StylesCache`` of up to
1,024 widgets after they are removed, and each of those holds the Strips its widget last
drew, with the Strips' own caches of derived Strips. Every detail view or dialog that
opens and closes adds its widgets to that pile: in the console, Enter/Esc on the detail
views kept about 36,000 Strips and 250,000 caches alive (+50 MB of RSS) before the
pile was full. This is the one place that works around it: when a screen closes and
the one below resumes, the cache is emptied; the live widgets refill it on their next
frame, which costs a few microseconds.
"""

from __future__ import annotations

from textual._styles_cache import StylesCache


def forget_removed_widgets() -> None:
    """Empty the class-wide cache that keeps removed widgets' StylesCaches alive."""
    cached = getattr(StylesCache, "get_inner_outer", None)
    cache_clear = getattr(cached, "cache_clear", None)
    if cache_clear is not None:  # a Textual that fixed #6665 may no longer cache here
        cache_clear()
