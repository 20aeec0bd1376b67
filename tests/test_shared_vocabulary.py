"""The vocabularies the worker and the reports share live once, in ``schemas`` (flags: :mod:`schemas.flags`; attempt
failures: :mod:`schemas.attempt_failure`). The worker's modules that held them before (``processors/flags.py``,
``processors/attempts.py``: issue 24 part A's files) must say exactly the same until they import them from there;
these tests then hold trivially."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from processors import attempts
from processors.flags import Flag as WorkerFlag
from schemas.attempt_failure import OK_STOP_REASONS, AttemptFailure, transaction_failure
from schemas.flags import Flag


def test_the_workers_flags_are_the_contracts() -> None:
    assert {m.name: m.value for m in WorkerFlag} == {m.name: m.value for m in Flag}


def test_the_workers_failure_codes_are_the_contracts() -> None:
    assert attempts.OK_STOP_REASONS == OK_STOP_REASONS
    assert (attempts.NO_ENERGY, attempts.FAULTED, attempts.STOP_MISSING) == (
        AttemptFailure.NO_ENERGY, AttemptFailure.FAULTED, AttemptFailure.STOP_MISSING)
    assert (attempts.AUTHORIZE_REJECTED, attempts.AUTHORIZE_NO_START, attempts.PLUGIN_NO_START) == (
        AttemptFailure.AUTHORIZE_REJECTED, AttemptFailure.AUTHORIZE_NO_START, AttemptFailure.PLUGIN_NO_START)


@given(delivered=st.booleans(), into_faulted=st.booleans(), stopped=st.booleans(),
       reason=st.sampled_from(["", "Local", "Remote", "EVDisconnected", "StoppedByEV", "EmergencyStop", "Other",
                               "PowerLoss", "EVDeparted"]) | st.text(max_size=60))
def test_the_workers_failure_rule_is_the_contracts(delivered: bool, into_faulted: bool, stopped: bool,
                                                    reason: str) -> None:
    args = {"delivered": delivered, "into_faulted": into_faulted, "stopped": stopped, "reason": reason}
    assert attempts.transaction_failure(**args) == transaction_failure(**args)
