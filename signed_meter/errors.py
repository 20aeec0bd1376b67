"""The errors of the signed-meter package, one base and what each means.

::

    SignedMeterError                 base; ``problem`` names the flag it becomes in a verdict
    ├── UnparsableSignedData         the signed data is not a record of a known format (or too large)
    ├── UnsupportedSignedData        a recognised record whose algorithm or format cannot be verified here
    └── UnusablePublicKey            a public key that cannot be decoded into a point of a known curve
        (also raised by :class:`signed_meter.registry.KeyRegistry` when a key is registered)

They are raised inside the package and caught at its boundary: reading and verifying turn every one of
them into a verdict with a flag (:mod:`signed_meter.verification`), never into an exception for the
caller. Only registering a key (an operator's action, answered with a clear message) lets
:class:`UnusablePublicKey` reach the caller.
"""

from __future__ import annotations

from signed_meter.model import SignedFlag


class SignedMeterError(Exception):
    """Base of the package's errors; ``flag`` is what the error becomes in a verdict."""

    flag: SignedFlag = SignedFlag.DATA_UNPARSABLE

    def __init__(self, message: str, flag: SignedFlag | None = None) -> None:
        super().__init__(message)
        if flag is not None:
            self.flag = flag


class UnparsableSignedData(SignedMeterError):
    flag = SignedFlag.DATA_UNPARSABLE


class UnsupportedSignedData(SignedMeterError):
    flag = SignedFlag.ALGORITHM_UNSUPPORTED


class UnusablePublicKey(SignedMeterError):
    flag = SignedFlag.KEY_UNUSABLE
