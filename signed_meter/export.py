"""What a driver's or an auditor's transparency software reads, as text. Pure functions.

:func:`safe_xml` writes the S.A.F.E. e.V. Transparenzsoftware container (the format of its
``src/test/resources/xml`` files and its ``doc`` page *XML Format Transparenzsoftware*)::

    <?xml version="1.0" encoding="UTF-8"?>
    <values>
      <value transactionId="…" context="Transaction.Begin">
        <signedData format="OCMF" encoding="plain">OCMF|{…}|{…}</signedData>
        <publicKey encoding="hex">3059…</publicKey>
      </value>
      …
    </values>

The signed data stands in the element exactly as signed, with no white space before or after (the
Transparenzsoftware verifies the element's text); ``&``, ``<`` and ``>`` are escaped, which an XML
reader undoes. Text an XML 1.0 document cannot hold (control characters) is written with
``encoding="base64"``. Alfen records are ``format="ALFEN"`` and carry their key inside, so no
``publicKey`` is written for them (the key is registered separately; ``ocmf_json`` lists it).

:func:`ocmf_json` writes the same records as JSON: each signed string as sent, its context, its
verdict and the public key that decided it (hex DER, with its curve and where it came from).
"""

from __future__ import annotations

import base64
import json
import re
from xml.sax.saxutils import escape, quoteattr

from signed_meter.model import SignedFormat, TX_BEGIN, TX_END
from signed_meter.session import SessionVerdict
from signed_meter.verification import BEGIN_CONTEXT, END_CONTEXT, RecordVerdict

PERIODIC_CONTEXT = "Sample.Periodic"
_XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def context_of(verdict: RecordVerdict) -> str:
    """Transaction.Begin / Transaction.End / Sample.Periodic: from the signed readings, else as OCPP sent it."""
    record = verdict.record
    if record is not None and record.payload_readable and record.readings:
        if record.has_tx(TX_BEGIN) and not record.has_tx(TX_END):
            return BEGIN_CONTEXT
        if record.has_tx(TX_END):
            return END_CONTEXT
        return PERIODIC_CONTEXT
    return verdict.value.context or PERIODIC_CONTEXT


def _format_name(verdict: RecordVerdict) -> str:
    record = verdict.record
    if record is not None and record.format is SignedFormat.ALFEN:
        return "ALFEN"
    if record is not None:
        return "OCMF"
    return (verdict.value.encoding_method or "unknown").upper()


def safe_xml(session: SessionVerdict, transaction_id: str) -> str:
    """The session's signed records in the Transparenzsoftware's XML container."""
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', "<values>"]
    for verdict in session.records:
        text = verdict.value.signed_data
        if _XML_FORBIDDEN.search(text):
            encoding, body = "base64", base64.b64encode(text.encode("utf-8", "surrogatepass")).decode("ascii")
        else:
            encoding, body = "plain", escape(text)
        lines.append(f"  <value transactionId={quoteattr(transaction_id)} context={quoteattr(context_of(verdict))}>")
        lines.append(f'    <signedData format="{_format_name(verdict)}" encoding="{encoding}">{body}</signedData>')
        record = verdict.record
        if verdict.key is not None and not (record is not None and record.format is SignedFormat.ALFEN):
            lines.append(f'    <publicKey encoding="hex">{verdict.key.hex}</publicKey>')
        lines.append("  </value>")
    lines.append("</values>")
    return "\n".join(lines) + "\n"


def ocmf_json(session: SessionVerdict, *, charge_point_id: str, transaction_id: str) -> str:
    """The session's signed strings with their public keys and verdicts, as a JSON document."""
    document = {
        "charge_point_id": charge_point_id,
        "transaction_id": transaction_id,
        "signature_status": session.signature_status.value,
        "signed_energy_wh": session.signed_energy_wh,
        "energy_register": session.energy_register,
        "meter_serial": session.meter_serial,
        "flags": [flag.value for flag in session.flags],
        "values": [
            {
                "context": context_of(v),
                "format": _format_name(v),
                "signed_data": v.value.signed_data,
                "status": v.status.value,
                "public_key": None
                if v.key is None
                else {
                    "encoding": "hex",
                    "value": v.key.hex,
                    "curve": v.key.curve,
                    "source": v.key_source.value if v.key_source else None,
                },
                "flags": sorted(flag.value for flag in v.flags),
            }
            for v in session.records
        ],
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
