"""``--include`` / ``--exclude`` rules: glob patterns on relative names, first match wins.

Invariants (the rclone filter model, documented in the README):
- Rules are tried in the order given on the command line; the first rule whose pattern
  matches decides.  When no rule matches, the name is included unless at least one
  ``--include`` rule was given (then everything not included is excluded).
- Patterns match the ``/``-separated name relative to SRC/DST: ``*`` matches within one
  path segment, ``**`` across segments, ``?`` one character other than ``/``, ``[abc]`` /
  ``[!abc]`` a character class.  A pattern starting with ``/`` is anchored at the root;
  otherwise it may match the whole name or any tail starting after a ``/`` (so ``*.tmp``
  matches ``a/b.tmp``).  A pattern ending in ``/`` matches everything below that directory.
- Excluded names are neither copied nor compared nor deleted, on either side.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Iterator, Sequence

from resumable_media.bulk.listing import Entry

__all__ = ["Filters", "Rule", "glob_to_regex"]


def _char_class(pattern: str, start: int) -> tuple[str, int]:
    """Translate ``[...]`` at ``start``; return the regex and the index after it."""
    end = pattern.find(
        "]", start + 2 if pattern[start + 1 : start + 2] in ("!", "^") else start + 1
    )
    if end < 0:
        return re.escape("["), start + 1
    body = pattern[start + 1 : end]
    negate = body[:1] in ("!", "^")
    if negate:
        body = body[1:]
    body = body.replace("\\", "\\\\")
    return (f"[^/{body}]" if negate else f"[{body}]"), end + 1


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Compile one filter glob (see the module docstring for its syntax).

    Raises:
        ValueError: When the pattern is empty.
    """
    if not pattern:
        raise ValueError("an empty filter pattern matches nothing; give a glob such as '*.tmp'")
    anchored = pattern.startswith("/")
    text = pattern.lstrip("/")
    if text.endswith("/"):
        text += "**"
    out: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if text.startswith("**", index):
            out.append(".*")
            index += 2
        elif char == "*":
            out.append("[^/]*")
            index += 1
        elif char == "?":
            out.append("[^/]")
            index += 1
        elif char == "[":
            regex, index = _char_class(text, index)
            out.append(regex)
        else:
            out.append(re.escape(char))
            index += 1
    body = "".join(out)
    return re.compile(body if anchored else f"(?:.*/)?{body}", re.S)


@dataclasses.dataclass(frozen=True, slots=True)
class Rule:
    """One ``--include`` (``include=True``) or ``--exclude`` rule."""

    include: bool
    pattern: str


class Filters:
    """An ordered rule list deciding which relative names take part in a sync.

    Args:
        rules: The rules in command-line order.

    Raises:
        ValueError: When a pattern is empty.
    """

    def __init__(self, rules: Sequence[Rule] = ()) -> None:
        self.rules = tuple(rules)
        self._compiled = [(rule.include, glob_to_regex(rule.pattern)) for rule in self.rules]
        self._default = not any(rule.include for rule in self.rules)

    def __bool__(self) -> bool:
        return bool(self.rules)

    def included(self, name: str) -> bool:
        """True when ``name`` (relative, ``/``-separated) takes part."""
        for include, regex in self._compiled:
            if regex.fullmatch(name):
                return include
        return self._default

    def apply(self, entries: Iterable[Entry]) -> Iterator[Entry]:
        """The entries whose names are included (streamed)."""
        if not self._compiled:
            yield from entries
            return
        for entry in entries:
            if self.included(entry.name):
                yield entry
