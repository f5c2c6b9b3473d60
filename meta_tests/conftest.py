"""Meta-tests start convcheck in subprocesses; those runs draw from the derandomised ``ci`` profile
(seed 0) unless a test names another profile or seed itself, so a meta-test's verdict never rests
on the luck of a random seed. Tests about randomness pass ``--profile``/``--seed`` explicitly.
The suite's own profile, chosen when pytest starts, is not affected."""

import os
from collections.abc import Iterator

import pytest

from convcheck.options import PROFILE_ENV


@pytest.fixture(autouse=True, scope="session")
def _subprocesses_draw_from_the_ci_profile() -> Iterator[None]:
    before = os.environ.get(PROFILE_ENV)
    os.environ.setdefault(PROFILE_ENV, "ci")
    yield
    if before is None:
        os.environ.pop(PROFILE_ENV, None)
