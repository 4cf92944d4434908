"""Schemathesis hooks for userd's API test.

The fuzzer learns ids from responses (a search lists every user), and userd lets an
IAM_OWNER lock, deactivate, delete or demote itself, so a run could lock itself out and
spend the rest of its time on 401s. The account whose token drives the run is therefore
never the target of a generated request.
"""

import os

import schemathesis

PROTECTED = {v for v in os.environ.get("USERD_PROTECTED_USER_IDS", "").split(",") if v}
STAND_IN = "schemathesis-stand-in"


@schemathesis.hook
def before_call(context, case, **kwargs):
    parameters = case.path_parameters or {}
    for name in ("id", "userId"):
        if _protected(parameters.get(name)):
            parameters[name] = STAND_IN
    if isinstance(case.body, dict) and _protected(case.body.get("userId")):
        case.body["userId"] = STAND_IN


def _protected(value):
    # Negative cases put any JSON value there, not only strings.
    return isinstance(value, str) and value in PROTECTED
