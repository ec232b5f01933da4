"""JSON as the command line prints it: every number finite, ``null`` where there is none.

Python's ``json`` writes NaN and ±inf as ``NaN`` and ``Infinity``, which are not JSON: strict
readers (``jq``, JavaScript, most other languages) refuse the whole document. The toolkit's
convention is ``null`` for a value that has no number (an unstable floor, a passage that did not
finish); :func:`json_text` applies it to whatever a result's ``to_dict`` left non-finite.
"""

from __future__ import annotations

import json
import math
from typing import Any


def finite_or_null(document: Any) -> Any:
    """``document`` with every non-finite float (NaN, ±inf), at any depth of dicts, lists and
    tuples, replaced by None; NumPy scalars become Python numbers on the way."""
    if getattr(document, "ndim", None) == 0 and hasattr(document, "item"):
        document = document.item()
    if isinstance(document, float):
        return document if math.isfinite(document) else None
    if isinstance(document, dict):
        return {key: finite_or_null(value) for key, value in document.items()}
    if isinstance(document, (list, tuple)):
        return [finite_or_null(value) for value in document]
    return document


def json_text(document: Any, **options: Any) -> str:
    """``json.dumps(document, **options)`` with NaN and ±inf written as ``null`` (strict JSON)."""
    return json.dumps(finite_or_null(document), allow_nan=False, **options)
