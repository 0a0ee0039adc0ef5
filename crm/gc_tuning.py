"""The garbage collector of the long-running processes: web and websockets (uvicorn),
the webhook drainer and Celery workers.

CPython collects its young generation every 700 net new container objects. A Django request
leaves a few hundred objects in reference cycles (querysets, compilers, expressions), so an
API page triggered a collection every one or two requests, and every 400–800 requests a full
collection that walked the ~195,000 objects Django and the app build at start-up: the
process (and with it every request it was serving) stopped for 120–185 ms.

`tune()` moves what start-up built out of the collector's sight (`gc.freeze()`: never
scanned again) and collects the young generation every GC_THRESHOLD[0] net allocations.
Measured in process on the benchmark's 100k-conversation / 2M-message inbox (800 list and
thread API requests per run, arms alternated; `bench/gc_probe.py`): the longest request
123–195 → 25–32 ms (no full collection any more), the collector's time per 800 requests
322–683 → 187–221 ms. Medians and p95 moved within this machine's noise (one probe 9.0–10.5
→ 7.1–7.5 ms p50, the next 5.4–7.6 vs 6.0–6.1), and so did the real-path `reads` shape.
"""

import gc

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

PYTHON_DEFAULTS = "python"


def thresholds(value: str) -> tuple[int, int, int] | None:
    """GC_THRESHOLD parsed: three positive integers, or None for CPython's own settings."""
    if value.strip() == PYTHON_DEFAULTS:
        return None
    try:
        parsed = tuple(int(part) for part in value.split(","))
    except ValueError:
        parsed = ()
    if len(parsed) != 3 or min(parsed) <= 0:
        raise ImproperlyConfigured(
            f"GC_THRESHOLD must be three positive integers such as '10000,10,10', or "
            f"'{PYTHON_DEFAULTS}' for CPython's defaults; got {value!r}"
        )
    return parsed


def tune() -> bool:
    """Call once the process has built what it keeps (app loaded, URLs imported). Returns
    False when GC_THRESHOLD asks for CPython's defaults (nothing frozen, nothing changed)."""
    wanted = thresholds(settings.GC_THRESHOLD)
    if wanted is None:
        return False
    gc.collect()  # start-up's own garbage is not frozen with the rest
    gc.freeze()
    gc.set_threshold(*wanted)
    return True
