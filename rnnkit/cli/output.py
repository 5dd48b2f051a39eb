"""What the commands print: the result line."""

from __future__ import annotations

import json
import math
import sys


def result_line(result: dict) -> str:
    """The result line, always valid JSON: a metric that is not finite is null (and said so)."""
    bad = [key for key, value in result.items() if isinstance(value, float) and not math.isfinite(value)]
    if bad:
        print(f"rnnkit: warning: {', '.join(bad)} not finite (written as null)", file=sys.stderr)
    return json.dumps({k: (None if k in bad else v) for k, v in result.items()})
