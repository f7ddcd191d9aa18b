"""Developer tooling, not shipped with the package: smoke scripts against real providers
(``smoke_*.py`` on ``_smoke.py`` and ``_capture.py``), the local-model launcher
(``local_model.py``, ``serve_local_model.py``) and benchmarks (``bench_*.py``).

Run them as ``python scripts/<name>.py``; tests import the helpers as ``scripts.<module>``.
"""
