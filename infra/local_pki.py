"""A certificate authority of this machine's own, for the secured local broker (``kafka start --secure``).

Pure functions from names to PEM bytes (``cryptography``): a CA, a broker certificate whose names are the
addresses clients dial (verified by every client: a Python ``ssl`` context checks the host name against the
certificate's DNS and IP names), and one client certificate per identity for mutual TLS. Keys are ECDSA
P-256 (fast to make, accepted by Kafka's PEM key stores) in unencrypted PKCS#8, which is what Kafka's
``ssl.keystore.type=PEM`` reads without a key password; the files that hold them are owner-only.

The subject of a certificate is just ``CN=<name>``: the broker maps it to the principal ``User:<name>``
(``ssl.principal.mapping.rules``), the same principal a SCRAM user of that name has, so one ACL table serves
both ways of logging in.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = dt.timedelta(days=825)  # the longest a TLS client (Apple's) accepts for a server certificate
RENEW_BEFORE = dt.timedelta(days=30)


@dataclass(frozen=True)
class KeyPair:
    """A private key and its certificate, as PEM."""

    key_pem: bytes
    cert_pem: bytes

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem)

    def bundle(self) -> bytes:
        """Key and certificate in one file: Kafka's PEM key store and Python's ``load_cert_chain`` read it."""
        return self.key_pem + self.cert_pem


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def new_ca(common_name: str, now: dt.datetime) -> KeyPair:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return KeyPair(_key_pem(key), cert.public_bytes(serialization.Encoding.PEM))


def issue(ca: KeyPair, common_name: str, now: dt.datetime, *, hosts: tuple[str, ...] = (), server: bool = False,
          client: bool = True) -> KeyPair:
    """A certificate for ``common_name`` signed by ``ca``: for a server (``hosts``: the DNS names and IP
    addresses clients dial) and/or a client (mutual TLS; a broker is both: it dials the other nodes)."""
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + ([ExtendedKeyUsageOID.CLIENT_AUTH] if client else [])
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    if hosts:
        builder = builder.add_extension(x509.SubjectAlternativeName([_general_name(h) for h in hosts]), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return KeyPair(_key_pem(key), cert.public_bytes(serialization.Encoding.PEM))


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def common_name(cert: x509.Certificate) -> str:
    (attribute,) = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(attribute.value)


def needs_renewal(pair: KeyPair, ca: KeyPair, now: dt.datetime, hosts: tuple[str, ...] = ()) -> bool:
    """True if ``pair`` expires within :data:`RENEW_BEFORE`, was not signed by ``ca`` (the CA was made anew),
    or does not name every one of ``hosts``."""
    cert = pair.certificate
    if cert.not_valid_after_utc - RENEW_BEFORE <= now or cert.issuer != ca.certificate.subject:
        return True
    try:
        ca.certificate.public_key().verify(cert.signature, cert.tbs_certificate_bytes,  # type: ignore[call-arg]
                                           ec.ECDSA(cert.signature_hash_algorithm))  # type: ignore[arg-type]
    except Exception:  # noqa: BLE001 - any failure to verify means "not this CA's"
        return True
    if not hosts:
        return False
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return True
    named = {str(n) for n in names.get_values_for_type(x509.DNSName)} | {
        str(n) for n in names.get_values_for_type(x509.IPAddress)}
    return not set(hosts) <= named
