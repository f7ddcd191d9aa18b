"""Reading runs back: ``runs`` (one line per run) and ``report`` (one run, readable).

Pure rendering (records in, text out): ``runs`` (the run list), ``model`` (a run as
entries and per-turn numbers), ``markdown``, ``html`` and ``chart`` (inline SVG), which
write times, costs and durations alike through ``cells``. The one module that reads files
is ``folder`` (run folders, batch folders, ``summary.json``, ``errors/``); the command
line's ``runs`` and ``report`` commands are thin clients of these.
"""

from __future__ import annotations

__all__: list[str] = []
