"""Shell-style brace expansion for shard patterns (``train-{0000..0099}.tar``, ``{a,b}.tar``),
so shard lists need neither a shell nor the webdataset package."""
from __future__ import annotations

import re
from typing import List

from vistok.errors import InputError

_RANGE = re.compile(r"^(-?\d+)\.\.(-?\d+)$")


def _matching_brace(text: str, start: int) -> int:
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
    raise InputError(f"unbalanced '{{' in pattern {text!r}")


def _split_top_level(body: str) -> List[str]:
    parts, depth, last = [], 0, 0
    for i, ch in enumerate(body):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(body[last:i])
            last = i + 1
    parts.append(body[last:])
    return parts


def _alternatives(body: str) -> List[str]:
    match = _RANGE.match(body)
    if match:
        a, b = match.groups()
        lo, hi = int(a), int(b)
        padded = any(len(s.lstrip("-")) > 1 and s.lstrip("-").startswith("0") for s in (a, b))
        width = max(len(a), len(b)) if padded else 0
        step = 1 if hi >= lo else -1
        return [str(n).zfill(width) for n in range(lo, hi + step, step)]
    parts = _split_top_level(body)
    if len(parts) == 1:  # "{x}" is not an expansion, as in bash
        return ["{" + alt + "}" for alt in expand_braces(body)]
    return [alt for part in parts for alt in expand_braces(part)]


def expand_braces(pattern: str) -> List[str]:
    """Expand every brace group in ``pattern``, left to right, like bash:
    ``{0000..0003}`` -> 0000 0001 0002 0003 (zero-padded when either end is; descending ranges
    count down), ``{a,b}`` -> a b, nested and repeated groups multiply out.
    A ``}`` without its ``{`` is kept as text; a ``{`` without its ``}`` raises ValueError."""
    start = pattern.find("{")
    if start < 0:
        return [pattern]
    end = _matching_brace(pattern, start)
    head, body, tail = pattern[:start], pattern[start + 1:end], pattern[end + 1:]
    tails = expand_braces(tail)
    return [head + alt + rest for alt in _alternatives(body) for rest in tails]
