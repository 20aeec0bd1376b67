"""Reading Alfen's own signed format (Alfen chargers with an LMN adapter and a DZG meter; not OCMF).

``AP;<type>;3;<public key>;<data set>;<signature>[;]``: type ``0`` start, ``1`` stop, ``2`` other;
blob version ``3``; the adapter's secp192r1 public key as a compressed point, the 82-byte data set and
the raw ``r‖s`` signature (24 + 24 bytes), each RFC 4648 base32. The signature is ECDSA secp192r1 over
SHA-256 of the 82 bytes. Layout of the data set (little-endian numbers; after ChargyDesktopApp's
documentation of the format, checked against the real records in ``../shared/ocmf``):

======  ======  ===================================================================
offset  length  field
======  ======  ===================================================================
0       10      adapter id
10      4       adapter firmware version (ASCII)
14      2       adapter firmware checksum
16      10      meter id (server id: ``0A``, version, 3-letter FLAG id, 5-byte serial)
26      2       meter status (0: no error)
28      2       adapter status (bits 12/13 stop/start command; 0, 10, 14, 15 errors)
30      4       second index of the meter
34      4       time, Unix seconds (UTC)
38      6       OBIS id
44      1       unit (DLMS code; 30 = Wh)
45      1       scaler (signed power of ten)
46      8       meter value (signed)
54      20      UID (the driver's token, ASCII, NUL-padded)
74      4       internal session id
78      4       paging counter
======  ======  ===================================================================
"""

from __future__ import annotations

import base64
import binascii
import struct
from datetime import UTC, datetime
from decimal import Decimal

from signed_meter.errors import UnparsableSignedData, UnsupportedSignedData
from signed_meter.model import TX_BEGIN, TX_CHARGING, TX_END, SignedFormat, SignedReading, SignedRecord, SigningMethod
from signed_meter.ocmf import energy_wh

PREFIX = "AP;"
DATA_SET_LENGTH = 82
BLOB_VERSION = "3"
METHOD = SigningMethod("ECDSA-secp192r1-SHA256 (Alfen)", "secp192r1", "SHA256")
_TYPES = {"0": TX_BEGIN, "1": TX_END, "2": TX_CHARGING}
_DLMS_UNITS = {30: "Wh"}
_ADAPTER_ERRORS = (1 << 0) | (1 << 10) | (1 << 14) | (1 << 15)


def parse_alfen(text: str) -> SignedRecord:
    """Read an Alfen ``AP;…`` record; raise :class:`UnparsableSignedData` if it is not one."""
    fields = text.split(";")
    if fields[-1] == "":
        fields.pop()  # the trailing ';' most records carry
    if len(fields) != 6 or fields[0] != "AP":
        raise UnparsableSignedData(f"an Alfen record has 6 ';'-separated fields, this one {len(fields)}")
    if fields[2] != BLOB_VERSION:
        raise UnsupportedSignedData(f"Alfen blob version {fields[2]!r} (only {BLOB_VERSION} is known)")
    if fields[1] not in _TYPES:
        raise UnparsableSignedData(f"Alfen record type {fields[1]!r} (0 start, 1 stop, 2 other)")
    data, signature = _base32(fields[4], "data set"), _base32(fields[5], "signature")
    if len(data) != DATA_SET_LENGTH:
        raise UnparsableSignedData(f"Alfen data set of {len(data)} bytes ({DATA_SET_LENGTH} expected)")

    meter_status, adapter_status = struct.unpack_from("<HH", data, 26)
    seconds = struct.unpack_from("<I", data, 34)[0]
    unit_code, scaler = data[44], struct.unpack_from("<b", data, 45)[0]
    raw_value = struct.unpack_from("<q", data, 46)[0]
    paging = struct.unpack_from("<I", data, 78)[0]
    unit = _DLMS_UNITS.get(unit_code)
    value = Decimal(raw_value).scaleb(scaler)
    value_wh, resolution_wh = energy_wh(value, unit)
    at = datetime.fromtimestamp(seconds, UTC)
    reading = SignedReading(
        tx=_TYPES[fields[1]],
        value=value,
        unit=unit or f"dlms:{unit_code}",
        obis=_obis(data[38:44]),
        time=at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        at=at,
        status=f"{meter_status:04x}",
        value_wh=value_wh,
        resolution_wh=resolution_wh,
    )
    return SignedRecord(
        format=SignedFormat.ALFEN,
        signed_data=text,
        signed_bytes=data,
        signature=signature,
        method=METHOD,
        readings=(reading,),
        meter_serial=_meter_serial(data[16:26]),
        gateway_serial=data[0:10].hex(),
        pagination=str(paging),
        identification=data[54:74].rstrip(b"\x00").decode("ascii", "replace"),
        embedded_public_key=fields[3],
        meter_error=meter_status != 0 or bool(adapter_status & _ADAPTER_ERRORS),
    )


def _base32(text: str, what: str) -> bytes:
    stripped = text.strip().rstrip("=")
    try:
        return base64.b32decode(stripped + "=" * (-len(stripped) % 8))
    except (binascii.Error, ValueError) as e:
        raise UnparsableSignedData(f"Alfen {what} is not base32: {e}") from e


def _obis(raw: bytes) -> str:
    a, b, c, d, e, f = raw
    return f"{a}-{b}:{c}.{d}.{e}*{f}"


def _meter_serial(server_id: bytes) -> str:
    """DIN 43863-5 server id as printed on the meter: ``0A 01 'DZG' 00 33 00 83 87`` -> ``1DZG0033008387``."""
    flag = server_id[2:5].decode("ascii", "replace")
    return f"{server_id[1]:x}{flag}{server_id[5:].hex()}".upper()
