"""Every data-quality flag the processors set, in one place (DESIGN.md: "every fallback and every
doubt becomes a flag, never a silent guess").

A flag is a short, stable code in the ``flags`` column of ``sessions``, ``fault_events``,
``connector_status`` and ``frames`` (and in the topic records). Values are the wire strings, so a
member compares equal to its code. The comment beside each member says what it means and the
module that sets it. Gateway flags (``schema_violation`` and ``schema:<field>:<rule>``, set by the
gateway when it let a transaction message through despite its schema) travel in the envelope and
are copied onto the rows they concern; so does a connection event's ``close_code:<n>`` (:func:`close_code`).

The flags are part of the rows' contract, so they live here, below the processors that set them and the
reports and views that read them (``kpi/``, :mod:`schemas.tables`).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class Flag(StrEnum):
    # --- timestamps (processors.timestamps) ---------------------------------------------------------
    TIMESTAMP_MISSING = "timestamp_missing"  # no charger timestamp where one was expected
    TIMESTAMP_UNREADABLE = "timestamp_unreadable"  # not RFC 3339, or outside what DateTime64(3) holds
    TIMESTAMP_WITHOUT_ZONE = "timestamp_without_zone"  # read as UTC
    CLOCK_SKEW = "clock_skew"  # the charger's clock off by more than the skew limit, as its frames show (processors.clock)
    STALE_TIMESTAMP = "stale_timestamp"  # a status timestamp far in the past (replayed after reboot)
    DURATION_FROM_GATEWAY_CLOCK = "duration_from_gateway_clock"  # charger clock unusable for a duration

    # --- identifiers (processors.ocpp16) ------------------------------------------------------------
    TRANSACTION_ID_INVALID = "transaction_id_invalid"  # -1, 0, not an integer: no transaction named
    TRANSACTION_ID_UNKNOWN = "transaction_id_unknown"  # a valid id the correlator never saw start
    TRANSACTION_ID_MATCHED_OPEN_SESSION = "transaction_id_matched_open_session"  # an invalid-id stop matched to the one session it can be
    TRANSACTION_ID_REUSED = "transaction_id_reused"  # a new start got an id an earlier session had
    CONNECTOR_ID_INVALID = "connector_id_invalid"  # missing, negative, not an integer or out of range
    CONNECTOR_INFERRED = "connector_inferred"  # a stop without a known start: connector from the status timeline
    CONNECTOR_FROM_METER_VALUES = "connector_from_meter_values"  # connector of an unknown transaction, from its MeterValues
    OFFLINE_EVENT = "offline_event"  # a 2.0.1 TransactionEvent sent from the charger's offline queue
    SEQ_NO_REPEATED = "seq_no_repeated"  # a 2.0.1 TransactionEvent whose seqNo its transaction had already passed (a resend, a replay)
    SEQ_NO_GAP = "seq_no_gap"  # seqNo jumped: events of this transaction are missing (processors.seq_no)
    EVENT_AFTER_ENDED = "event_after_ended"  # a 2.0.1 TransactionEvent after the transaction's Ended (a replay): the Ended stands
    TRANSACTION_EVSE_AMBIGUOUS = "transaction_evse_ambiguous"  # an event without evse, its id open on several EVSEs: the oldest's
    TRIGGER_REASON_MISSING = "trigger_reason_missing"  # a 2.0.1 TransactionEvent without triggerReason (MicroOcpp #405)
    CONNECTOR_UNKNOWN = "connector_unknown"  # the connector of the session could not be found
    ERROR_CODE_MISSING = "error_code_missing"  # StatusNotification without errorCode: read as NoError
    ERROR_CODE_UNKNOWN = "error_code_unknown"  # a 2.0.1 EVSE Faulted with no problem to name it (processors.evse_faults)

    # --- session life (processors.correlator) -------------------------------------------------------
    DUPLICATE_START = "duplicate_start"  # the same StartTransaction answered twice
    DUPLICATE_STOP_CONFLICT = "duplicate_stop_conflict"  # a second, different stop for a stopped session
    STOP_WITHOUT_START = "stop_without_start"  # the session's start was never seen
    STOP_BEFORE_START = "stop_before_start"  # the stop's timestamp is before the start's
    STOP_MISSING = "stop_missing"  # closed without a StopTransaction (closed_by says why)
    LATE_STOP = "late_stop"  # emitted first closed on a guess; this revision has the real stop
    STATUS_TRANSITION_MISSING = "status_transition_missing"  # no status out of Charging within the window
    NO_CHARGING_STATUS = "no_charging_status"  # the connector never reported Charging for it
    AVAILABLE_THEN_RESUMED = "available_then_resumed"  # Available mid-session, then the transaction went on
    CHARGER_REBOOTED = "charger_rebooted"  # a BootNotification came while the session was open
    METER_VALUES_AFTER_STOP = "meter_values_after_stop"  # samples after StopTransaction, within the window
    FAULTED_AT_STOP = "faulted_at_stop"  # the connector reported Faulted at the stop, or within the window after it (before Available)
    LATE_METER_VALUES = "late_meter_values"  # samples for the transaction after it was emitted (a revision)
    TRANSACTION_DATA_TRUNCATED = "transaction_data_truncated"  # over 500 register samples in a stop: the middle ones dropped

    # --- meter values (processors.meter) ------------------------------------------------------------
    METER_VALUES_UNREADABLE = "meter_values_unreadable"
    SAMPLE_VALUE_UNREADABLE = "sample_value_unreadable"
    SAMPLE_VALUE_NOT_STRING = "sample_value_not_string"  # a JSON number where the spec wants a string
    SAMPLE_VALUE_NEGATIVE = "sample_value_negative"  # a register below zero: skipped
    SAMPLE_UNIT_UNKNOWN = "sample_unit_unknown"
    SIGNED_DATA_SKIPPED = "signed_data_skipped"
    INCOMPLETE_PHASES = "incomplete_phases"  # some phases of a register, no total: not summed
    ENERGY_SUMMED_FROM_PHASES = "energy_summed_from_phases"
    ENERGY_FROM_SINGLE_PHASE = "energy_from_single_phase"  # a register reported only on L1: taken as the total
    POWER_SUMMED_FROM_PHASES = "power_summed_from_phases"

    # --- signed meter values (issue 25: signed_meter's SignedFlag, one member each; processors.signed_samples) --
    SIGNED_DATA_TOO_LARGE = "signed_data_too_large"  # a signed value over the size cap: not parsed (unparsable)
    SIGNED_DATA_UNPARSABLE = "signed_data_unparsable"  # not a record of a known format: truncated, garbled
    SIGNED_PAYLOAD_NONCONFORMING = "signed_payload_nonconforming"  # signature checked, readings unreadable
    SIGNED_SIGNATURE_MALFORMED = "signed_signature_malformed"  # signature not hex/base64, not DER, wrong length
    SIGNED_CURVE_MISMATCH = "signed_curve_mismatch"  # no key to check with is on the curve the record names
    SIGNED_ALGORITHM_UNSUPPORTED = "signed_algorithm_unsupported"  # an algorithm or format not verified here
    SIGNED_KEY_UNUSABLE = "signed_key_unusable"  # a key in the frame that decodes to no point of a known curve
    SIGNED_FRAME_KEY_MISMATCH = "signed_frame_key_mismatch"  # the frame carried a key other than the registered one
    SIGNED_CONTEXT_MISMATCH = "signed_context_mismatch"  # OCPP said Transaction.Begin/End, the record signs no such reading
    SIGNED_METER_ERROR = "signed_meter_error"  # the meter signed an error status
    SIGNED_BEGIN_WITHOUT_END = "signed_begin_without_end"  # a signed Begin and no signed End (yet)
    SIGNED_END_WITHOUT_BEGIN = "signed_end_without_begin"  # a signed End and no signed Begin
    SIGNED_BEGIN_REPEATED = "signed_begin_repeated"  # two different signed Begin records in one session
    SIGNED_END_REPEATED = "signed_end_repeated"  # two different signed End records in one session
    SIGNED_METER_SERIAL_CHANGED = "signed_meter_serial_changed"  # the session's records name different meters
    SIGNED_PAGINATION_GAP = "signed_pagination_gap"  # the records' pagination counters are not consecutive
    SIGNED_REGISTER_MISMATCH = "signed_register_mismatch"  # Begin and End sign no common energy register
    SIGNED_ENERGY_NEGATIVE = "signed_energy_negative"  # the End register is below the Begin register
    SIGNED_ENERGY_MISMATCH = "signed_energy_mismatch"  # the session's energy differs from the signed energy by a step or more
    SIGNED_VALUES_DROPPED = "signed_values_dropped"  # over the per-frame or per-session cap: kept in frames only

    # --- energy (processors.energy) -----------------------------------------------------------------
    METER_START_INVALID = "meter_start_invalid"
    METER_STOP_UNKNOWN = "meter_stop_unknown"  # meterStop -1
    METER_STOP_MISSING = "meter_stop_missing"
    METER_STOP_INVALID = "meter_stop_invalid"
    METER_VALUE_NOT_INTEGER = "meter_value_not_integer"
    METER_STOP_BELOW_START = "meter_stop_below_start"
    METER_RESET = "meter_reset"  # the register restarted near zero: what it counted since is added
    METER_REBASED = "meter_rebased"  # the register jumped down (not to zero) and stayed: nothing counted across
    METER_DROPOUT = "meter_dropout"  # one sample far below its neighbours: ignored
    METER_DIP_IGNORED = "meter_dip_ignored"  # a drop within the register's rounding: ignored
    METER_TRAILING_DROP = "meter_trailing_drop"
    METER_INTERRUPTION = "meter_interruption"  # the register moved across an Interruption.Begin / .End pair: not counted
    METER_SAMPLE_OUT_OF_ORDER = "meter_sample_out_of_order"
    ENERGY_MISMATCH = "energy_mismatch"  # meterStop - meterStart disagrees with the samples
    ENERGY_IMPLAUSIBLE = "energy_implausible"  # a source beyond max power x duration: not used

    # --- faults (processors.faults) -----------------------------------------------------------------
    SUPERSEDED_BY_OTHER_ERROR = "superseded_by_other_error"
    BEGAN_STALE = "began_stale"
    # A fault reported with a status other than Faulted (an ABB's Finishing with an errorCode): one member per
    # OCPP 1.6 ChargePointStatus but Faulted, ``error_code_while_`` + the status in lower case (:func:`error_code_while`).
    ERROR_CODE_WHILE_AVAILABLE = "error_code_while_available"
    ERROR_CODE_WHILE_PREPARING = "error_code_while_preparing"
    ERROR_CODE_WHILE_CHARGING = "error_code_while_charging"
    ERROR_CODE_WHILE_SUSPENDEDEVSE = "error_code_while_suspendedevse"
    ERROR_CODE_WHILE_SUSPENDEDEV = "error_code_while_suspendedev"
    ERROR_CODE_WHILE_FINISHING = "error_code_while_finishing"
    ERROR_CODE_WHILE_RESERVED = "error_code_while_reserved"
    ERROR_CODE_WHILE_UNAVAILABLE = "error_code_while_unavailable"
    ERROR_CODE_WHILE_UNKNOWN = "error_code_while_unknown"  # a status empty, or none OCPP 1.6 defines

    # --- rows and records (processors.pipeline, schemas.storable) -----------------------------------
    INVALID_ENVELOPE = "invalid_envelope"  # a record on the frames topic that is not an envelope
    TOMBSTONE = "tombstone"  # a record without a value on the frames topic
    PROCESSING_FAILED = "processing_failed"  # the correlator raised on this frame: skipped, state rolled back
    VALUE_NOT_STORABLE = "value_not_storable"  # a value outside its column's range: stored as null or clamped
    # A connection event's frames row (KPIS.md): which event, and ``close_code:<n>`` beside a disconnect.
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"


ERROR_CODE_WHILE_PREFIX: Final = "error_code_while_"
_ERROR_CODE_WHILE = {flag.value.removeprefix(ERROR_CODE_WHILE_PREFIX): flag for flag in Flag
                     if flag.value.startswith(ERROR_CODE_WHILE_PREFIX) and flag is not Flag.ERROR_CODE_WHILE_UNKNOWN}


def error_code_while(status: str) -> Flag:
    """The flag of a fault reported with ``status`` (not Faulted): its member of the ``error_code_while_<status>``
    family, the status compared in lower case; ``error_code_while_unknown`` for an empty status or one no OCPP 1.6
    charger may send (the code stays one of a closed set, whatever a charger sends)."""
    return _ERROR_CODE_WHILE.get(status.lower(), Flag.ERROR_CODE_WHILE_UNKNOWN)


def close_code(code: int) -> str:
    """The flag of a ``disconnected`` event's frames row that names its WebSocket close code: ``close_code:<n>``
    (like the gateway's ``schema:<field>:<rule>``, a family with a value in it)."""
    return f"close_code:{code}"
