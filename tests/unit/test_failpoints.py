"""Failpoint specs (ERPSYNC_FAILPOINTS): what is accepted and the error for what is not."""

import pytest

from erpsync.errors import ConfigError
from erpsync.failpoints import Action, parse

VALID = [
    ("", {}),
    ("push.after=kill", {"push.after": Action()}),
    ("push.after=kill:0.02, confirm.after=kill-once",
     {"push.after": Action(probability=0.02), "confirm.after": Action(once=True)}),
]
INVALID = [
    ("push.aftr=kill", "unknown failpoint 'push.aftr'"),
    ("push.after=explode", "push.after: unknown action 'explode'"),
    ("push.after=kill:0", "kill:P needs a probability above 0"),
    ("push.after=kill:often", "kill:P needs a probability above 0"),
    ("push.after=kill:1.5", "kill:P needs a probability above 0"),
]


@pytest.mark.parametrize("spec, expected", VALID)
def test_valid_specs(spec, expected):
    assert parse(spec) == expected


@pytest.mark.parametrize("spec, message", INVALID)
def test_invalid_specs_name_the_problem(spec, message):
    with pytest.raises(ConfigError, match=message):
        parse(spec)
