"""The content categories a scan scores and the decisions it reaches, ordered by severity
(no NumPy here: configuration, reports and front ends import it)."""

from __future__ import annotations

from enum import Enum

#: The categories framescan reports, in report order.
CATEGORIES = ("sexual", "violence", "hate", "bullying", "extremism")


class Decision(str, Enum):
    """``allow`` < ``review`` < ``block``. A ``str`` (``Decision.BLOCK == "block"``, written to
    JSON as the plain string) that compares by severity, also with a plain decision string."""

    ALLOW = "allow"
    REVIEW = "review"
    BLOCK = "block"

    # a plain string wherever it is written or hashed (as ``enum.StrEnum``, which needs 3.11)
    __str__ = str.__str__
    __format__ = str.__format__
    __hash__ = str.__hash__

    @property
    def severity(self) -> int:
        return _SEVERITY[self]

    def __lt__(self, other: object) -> bool:
        return self.severity < Decision(other).severity

    def __le__(self, other: object) -> bool:
        return self.severity <= Decision(other).severity

    def __gt__(self, other: object) -> bool:
        return self.severity > Decision(other).severity

    def __ge__(self, other: object) -> bool:
        return self.severity >= Decision(other).severity


_SEVERITY = {d: i for i, d in enumerate(Decision)}
