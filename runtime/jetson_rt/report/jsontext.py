"""JSON from the outside world, as text every output can carry.

``json.loads`` turns a ``\\ud800`` escape into a lone surrogate, a string that no
UTF-8 file can hold: the report page and JUnit file would fail to encode it. Such
characters become U+FFFD here, before anything else sees them.
"""

from __future__ import annotations

import json
import re
from typing import Any

_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_clean(item) for item in value]
    if isinstance(value, dict):
        return {_clean(key): _clean(item) for key, item in value.items()}
    return value


def loads(text: str) -> Any:
    """``json.loads`` (NaN and Infinity included: callers judge them); lone surrogates
    replaced. Raises what ``json.loads`` raises, and RecursionError for deep nesting."""
    data = json.loads(text)
    if _SURROGATE_ESCAPE.search(text) is None:
        return data  # the common case: no walk over the data
    return _clean(data)
