"""The secured local broker's credentials, in one owner-only folder (``$OCPP_HOME/kafka/broker-<port>/credentials``).

What it holds (folder mode 700, files 600; made once, kept across restarts, renewed when due):

- ``ca.pem`` / ``ca-key.pem``: this machine's CA (:mod:`infra.local_pki`); clients trust ``ca.pem``.
- ``broker.pem``: the brokers' key and certificate (their listeners, and each other: inter-broker mutual TLS).
- ``<identity>.pem``: a client certificate per identity of :mod:`infra.kafka_acls` (mutual TLS), and
  ``ocpp-admin.pem``, the administrator's (a super user: it applies users and ACLs and creates topics).
- ``<identity>.env``: the ``OCPP_KAFKA_*`` settings of that identity (SASL_SSL, SCRAM-SHA-512, its password,
  the CA), ready to source: ``set -a; . ocpp-gateway.env; set +a``. The password lives only here and in the
  broker (as a salted SCRAM hash); rotating one is deleting its file and starting the broker again.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from infra import local_pki
from infra.errors import BrokerError
from infra.settings import KafkaSettings

ADMIN = "ocpp-admin"  # super user: applies identities and ACLs, creates the contract topics
BROKER = "ocpp-broker"  # the brokers' own principal (inter-broker and controller listeners)
SUPER_USERS = (f"User:{BROKER}", f"User:{ADMIN}")
SASL_MECHANISM = "SCRAM-SHA-512"
_PASSWORD_LINE = re.compile(r"^OCPP_KAFKA_SASL_PASSWORD=(\S+)$", re.M)


def _write_private(path: Path, data: bytes | str) -> None:
    """Write ``path`` readable by its owner only, never readable by anyone else for a moment."""
    raw = data.encode() if isinstance(data, str) else data
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, raw)
    finally:
        os.close(fd)
    os.replace(tmp, path)


@dataclass(frozen=True)
class LocalCredentials:
    """The credentials folder of one secured local broker or cluster."""

    folder: Path

    @property
    def ca_file(self) -> Path:
        return self.folder / "ca.pem"

    @property
    def broker_file(self) -> Path:
        return self.folder / "broker.pem"

    def cert_file(self, name: str) -> Path:
        return self.folder / f"{name}.pem"

    def env_file(self, name: str) -> Path:
        return self.folder / f"{name}.env"

    # --- making them -----------------------------------------------------------------------------

    def ensure(self, hosts: tuple[str, ...], names: tuple[str, ...], bootstrap_servers: str,
               tls_bootstrap_servers: str, now: dt.datetime | None = None) -> None:
        """Make what is missing or due: the CA, the broker certificate for ``hosts``, a client certificate for
        the administrator and each identity in ``names``, a password for each identity (kept once made), and
        the ``.env`` files, which name the brokers at ``bootstrap_servers`` (SASL_SSL) and
        ``tls_bootstrap_servers`` (mutual TLS)."""
        now = now or dt.datetime.now(dt.timezone.utc)
        self.folder.mkdir(parents=True, exist_ok=True)
        os.chmod(self.folder, 0o700)
        ca = self._pair(self.folder / "ca-key.pem", self.ca_file)
        if ca is None or ca.certificate.not_valid_after_utc - local_pki.RENEW_BEFORE <= now:
            ca = local_pki.new_ca("ocpp-pipeline local CA", now)
            _write_private(self.folder / "ca-key.pem", ca.key_pem)
            _write_private(self.ca_file, ca.cert_pem)
        broker_hosts = tuple(dict.fromkeys((*hosts, "localhost", "127.0.0.1")))
        self._ensure_cert(ca, BROKER, now, hosts=broker_hosts, server=True, path=self.broker_file)
        for name in (ADMIN, *names):
            self._ensure_cert(ca, name, now)
        for name in names:
            password = self.password(name) or secrets.token_urlsafe(32)
            settings = self.sasl_settings(name, bootstrap_servers, password=password)
            _write_private(self.env_file(name), _env_text(
                f"Kafka identity {name} of the secured local broker (ocpp-pipeline kafka start --secure)",
                settings, f"# or mutual TLS: OCPP_KAFKA_BOOTSTRAP_SERVERS={tls_bootstrap_servers} "
                          f"OCPP_KAFKA_SECURITY_PROTOCOL=SSL OCPP_KAFKA_SSL_CERTFILE={self.cert_file(name)}\n"))
        admin = self.mtls_settings(ADMIN, tls_bootstrap_servers)
        _write_private(self.env_file(ADMIN), _env_text(
            "Administrator (super user) of the secured local broker: topics, users, ACLs", admin, ""))

    def _ensure_cert(self, ca: local_pki.KeyPair, name: str, now: dt.datetime, *, hosts: tuple[str, ...] = (),
                     server: bool = False, path: Path | None = None) -> None:
        path = path or self.cert_file(name)
        pair = self._bundle(path)
        if pair is None or local_pki.needs_renewal(pair, ca, now, hosts):
            pair = local_pki.issue(ca, name, now, hosts=hosts, server=server, client=True)
            _write_private(path, pair.bundle())

    @staticmethod
    def _pair(key_path: Path, cert_path: Path) -> local_pki.KeyPair | None:
        try:
            return local_pki.KeyPair(key_path.read_bytes(), cert_path.read_bytes())
        except FileNotFoundError:
            return None

    @staticmethod
    def _bundle(path: Path) -> local_pki.KeyPair | None:
        try:
            text = path.read_bytes()
        except FileNotFoundError:
            return None
        marker = b"-----BEGIN CERTIFICATE-----"
        if marker not in text:
            return None
        at = text.index(marker)
        return local_pki.KeyPair(text[:at], text[at:])

    # --- reading them ----------------------------------------------------------------------------

    def password(self, name: str) -> str | None:
        """The password of identity ``name`` (from its ``.env`` file), None if it has none yet."""
        try:
            match = _PASSWORD_LINE.search(self.env_file(name).read_text())
        except FileNotFoundError:
            return None
        return match.group(1) if match else None

    def passwords(self, names: tuple[str, ...]) -> dict[str, str]:
        found = {name: self.password(name) for name in names}
        missing = [name for name, value in found.items() if value is None]
        if missing:
            raise BrokerError(f"no password for {', '.join(missing)} in {self.folder}: start the broker with --secure")
        return {name: value for name, value in found.items() if value is not None}

    def sasl_settings(self, name: str, bootstrap_servers: str, *, password: str | None = None,
                      **extra: object) -> KafkaSettings:
        """The settings of identity ``name`` over SASL_SSL (SCRAM-SHA-512)."""
        password = password or self.password(name)
        if password is None:
            raise BrokerError(f"no password for {name} in {self.folder}: start the broker with --secure")
        return KafkaSettings(bootstrap_servers=bootstrap_servers, security_protocol="SASL_SSL",
                             sasl_mechanism=SASL_MECHANISM, sasl_username=name, sasl_password=password,
                             ssl_cafile=self.ca_file, **extra)

    def mtls_settings(self, name: str, tls_bootstrap_servers: str, **extra: object) -> KafkaSettings:
        """The settings of identity ``name`` (or the administrator) over mutual TLS."""
        return KafkaSettings(bootstrap_servers=tls_bootstrap_servers, security_protocol="SSL",
                             ssl_cafile=self.ca_file, ssl_certfile=self.cert_file(name), **extra)


def env_values(settings: KafkaSettings) -> dict[str, str]:
    """The ``OCPP_KAFKA_*`` variables that reproduce the connection part of ``settings`` in another process."""
    values = {"OCPP_KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
              "OCPP_KAFKA_SECURITY_PROTOCOL": settings.security_protocol}
    if settings.sasl_mechanism:
        values["OCPP_KAFKA_SASL_MECHANISM"] = settings.sasl_mechanism
    if settings.sasl_username:
        values["OCPP_KAFKA_SASL_USERNAME"] = settings.sasl_username
    if settings.sasl_password:
        values["OCPP_KAFKA_SASL_PASSWORD"] = settings.sasl_password.get_secret_value()
    for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
        value = getattr(settings, name)
        if value is not None:
            values[f"OCPP_KAFKA_{name.upper()}"] = str(value)
    return values


def _env_text(title: str, settings: KafkaSettings, note: str) -> str:
    lines = "".join(f"{k}={v}\n" for k, v in env_values(settings).items())
    return f"# {title}. Owner-only: it holds a secret.\n{lines}{note}"
