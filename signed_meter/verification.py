"""The verdict on one signed value: read it, pick the key, check the signature. Never raises.

Which key decides (issue 25, Deliver 2):

1. Keys registered for the charge point (the connector's, then the station's) are tried in order; the
   first that holds gives ``verified``. If none holds, the value is ``invalid`` - even when the frame
   carries a key that would hold: a key in the frame is the sender's word, the registry the operator's.
2. With no registered key, a key the frame carries (2.0.1 ``publicKey``, the OCA document's, or the one
   inside an Alfen record) is used: ``verified_with_frame_key`` if it holds, ``invalid`` if not.
3. With neither, ``key_unknown``.

A record whose algorithm is not one this package verifies is ``unsupported`` whatever the keys; data
that is not a record of a known format is ``unparsable``. Flags say why (``signed_curve_mismatch``,
``signed_signature_malformed``, ``signed_frame_key_mismatch``, …).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from signed_meter.arrival import SignedValue
from signed_meter.errors import SignedMeterError, UnparsableSignedData, UnsupportedSignedData, UnusablePublicKey
from signed_meter.keys import MeterKey, decode_public_key
from signed_meter.limits import DEFAULT_LIMITS, SignedDataLimits
from signed_meter.model import TX_BEGIN, TX_END, KeySource, SignatureStatus, SignedFlag, SignedRecord
from signed_meter.record import read_record
from signed_meter.registry import RegisteredKey
from signed_meter.signature import Outcome, check

BEGIN_CONTEXT = "Transaction.Begin"
END_CONTEXT = "Transaction.End"


@dataclass(frozen=True, slots=True)
class RecordVerdict:
    """One signed value, what it was read as, and how its signature fared."""

    value: SignedValue
    record: SignedRecord | None  # None: unparsable or unsupported before any reading
    status: SignatureStatus
    key: MeterKey | None = None  # the key that decided (held, or failed as the one that counts)
    key_source: KeySource | None = None
    flags: frozenset[SignedFlag] = frozenset()
    detail: str = ""  # a sentence for the operator / auditor


def verify_signed_value(
    value: SignedValue,
    registered: Sequence[RegisteredKey] = (),
    limits: SignedDataLimits = DEFAULT_LIMITS,
) -> RecordVerdict:
    """Read ``value`` and verify it with the ``registered`` keys of its charge point, else its frame key."""
    if value.problem is not None:
        return RecordVerdict(value, None, SignatureStatus.UNPARSABLE, flags=frozenset({value.problem}),
                             detail="the OCPP transport of the signed value could not be read")
    try:
        record = read_record(value.signed_data, limits)
    except UnsupportedSignedData as e:
        return RecordVerdict(value, None, SignatureStatus.UNSUPPORTED, flags=frozenset({e.flag}), detail=str(e))
    except SignedMeterError as e:
        return RecordVerdict(value, None, SignatureStatus.UNPARSABLE, flags=frozenset({e.flag}), detail=str(e))
    flags = _record_flags(value, record)
    if record.method.curve is None or record.method.hash_name is None:
        return RecordVerdict(value, record, SignatureStatus.UNSUPPORTED, flags=flags | {SignedFlag.ALGORITHM_UNSUPPORTED},
                             detail=f"signature algorithm {record.method.declared!r} is not verified here")
    frame_key_text = value.public_key or record.embedded_public_key
    if registered:
        return _with_registered(value, record, registered, frame_key_text, flags)
    if frame_key_text is None:
        return RecordVerdict(value, record, SignatureStatus.KEY_UNKNOWN, flags=flags,
                             detail="no key registered for the charge point and none in the frame")
    try:
        key = decode_public_key(frame_key_text, record.method.curve, max_chars=limits.max_key_chars)
    except UnusablePublicKey as e:
        return RecordVerdict(value, record, SignatureStatus.KEY_UNKNOWN, flags=flags | {e.flag}, detail=str(e))
    outcome = check(record, key)
    if outcome is Outcome.HOLDS:
        return RecordVerdict(value, record, SignatureStatus.VERIFIED_WITH_FRAME_KEY, key, KeySource.FRAME, flags,
                             "holds with the key the frame carried (no key registered)")
    return RecordVerdict(value, record, SignatureStatus.INVALID, key, KeySource.FRAME, flags | _outcome_flags([outcome]),
                         f"does not hold with the key the frame carried ({outcome})")


def _with_registered(
    value: SignedValue,
    record: SignedRecord,
    registered: Sequence[RegisteredKey],
    frame_key_text: str | None,
    flags: frozenset[SignedFlag],
) -> RecordVerdict:
    outcomes: list[Outcome] = []
    first_key: MeterKey | None = None
    for entry in registered:
        try:
            key = entry.decode(record.method.curve)
        except UnusablePublicKey:  # a bare point that is not on the record's curve
            outcomes.append(Outcome.CURVE_MISMATCH)
            continue
        first_key = first_key or key
        outcome = check(record, key)
        if outcome is Outcome.HOLDS:
            if frame_key_text is not None and _decodes_to_other(frame_key_text, record, key):
                flags = flags | {SignedFlag.FRAME_KEY_MISMATCH}
            return RecordVerdict(value, record, SignatureStatus.VERIFIED, key, KeySource.REGISTRY, flags,
                                 f"holds with the key registered for {entry.charge_point_id}")
        outcomes.append(outcome)
    if frame_key_text is not None and first_key is not None and _decodes_to_other(frame_key_text, record, first_key):
        flags = flags | {SignedFlag.FRAME_KEY_MISMATCH}
    return RecordVerdict(value, record, SignatureStatus.INVALID, first_key, KeySource.REGISTRY,
                         flags | _outcome_flags(outcomes),
                         f"holds with none of the {len(registered)} key(s) registered ({', '.join(sorted(set(outcomes)))})")


def _decodes_to_other(frame_key_text: str, record: SignedRecord, key: MeterKey) -> bool:
    try:
        return decode_public_key(frame_key_text, record.method.curve) != key
    except UnusablePublicKey:
        return True


def _outcome_flags(outcomes: Sequence[Outcome]) -> frozenset[SignedFlag]:
    out = set()
    if Outcome.MALFORMED in outcomes:
        out.add(SignedFlag.SIGNATURE_MALFORMED)
    if outcomes and all(o is Outcome.CURVE_MISMATCH for o in outcomes):
        out.add(SignedFlag.CURVE_MISMATCH)
    return frozenset(out)


def _record_flags(value: SignedValue, record: SignedRecord) -> frozenset[SignedFlag]:
    flags = set()
    if not record.payload_readable:
        flags.add(SignedFlag.PAYLOAD_NONCONFORMING)
    if record.meter_error:
        flags.add(SignedFlag.METER_ERROR)
    if record.payload_readable and (
        (value.context == BEGIN_CONTEXT and not record.has_tx(TX_BEGIN))
        or (value.context == END_CONTEXT and not record.has_tx(TX_END))
    ):
        flags.add(SignedFlag.CONTEXT_MISMATCH)
    return frozenset(flags)


def verify_text(signed_data: str, registered: Sequence[RegisteredKey] = (), *, public_key: str | None = None,
                context: str | None = None, limits: SignedDataLimits = DEFAULT_LIMITS) -> RecordVerdict:
    """Verify a signed record given as text (an export, a file, the CLI): as if a 1.6 frame carried it."""
    if not isinstance(signed_data, str):
        try:
            signed_data = bytes(signed_data).decode("utf-8")
        except (TypeError, ValueError):
            value = SignedValue(repr(signed_data)[: limits.max_chars], "", "", context, problem=UnparsableSignedData.flag)
            return verify_signed_value(value, registered, limits)
    value = SignedValue(signed_data, signed_data, "", context, public_key=public_key)
    return verify_signed_value(value, registered, limits)
