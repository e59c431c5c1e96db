"""Feature flags: evaluate ConfigCat ``config_v6.json`` documents exactly as ConfigCat does.

>>> from aioconfig.flags import User, evaluate, parse_flags
>>> flags = parse_flags(document_bytes, source="config_v6.json")
>>> evaluate(flags, "newCheckout", False, User("42", country="HU")).value
True

Parsing does all the work that does not depend on the user, once per document; ``evaluate`` is
pure and cheap, so it can run on every request. The results (value, variation id, default value
and error) are those of ConfigCat's own Python SDK for the same document and user.
"""

from __future__ import annotations

from ._details import EvaluationDetails as EvaluationDetails
from ._evaluate import evaluate as evaluate
from ._limit import WarningLimit as WarningLimit
from ._model import FlagConfig as FlagConfig
from ._model import parse_flags as parse_flags
from ._user import User as User

__all__ = ("EvaluationDetails", "FlagConfig", "User", "WarningLimit", "evaluate", "parse_flags")
