"""Reading the operator's Events as a person reads them: which condition transitions a Normal Event tells.

One status write's good transitions make one Normal Event (controller/context.py `transition_events`,
DESIGN §2), named after the most telling of them, whose message names the others:
`Ready: The tenant is admitted and provisioned. (also now: Admitted, Provisioned, RolesBound)`.
"""

from __future__ import annotations

import re

_ALSO = re.compile(r"\(also now: ([A-Za-z]+(?:, [A-Za-z]+)*)\)$")


def told(message: str) -> list[str]:
    """The condition types whose transition a Normal Event's message tells: its own, then the others."""
    own = message.split(":", 1)[0]
    also = _ALSO.search(message)
    return [own, *(also.group(1).split(", ") if also else [])]
