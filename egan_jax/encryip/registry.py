"""The owner's EncryIP key registry and the users' key files.

The registry (versioned JSON, mode 0600, owner only) holds the public key, the owner's master secret
(the trapdoor ``t`` and the base key ``(x, y, a, b)``) and every issued user: id, key fingerprint,
status (active / revoked), issue and revocation times, and the user's ``(x', y')`` so that the owner can
later work out which classes that user's key gives to the Fake entries (tracing). A user key file
(0600) holds one user's ``(x', y', a, b)`` and the public key. Logs name keys by fingerprint only.

Revocation is a record, not a cryptographic act: a revoked key still decrypts any codebook made for
this public key (nothing can take a decryption key back). It marks the user as no longer authorized,
keeps them traceable, and tells the owner to publish new codebooks under a new public key.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from egan_jax import keys
from egan_jax.encryip import cslite
from egan_jax.encryip.cslite import DecryptionKey, OwnerKey, PublicKey
from egan_jax.encryip.group import RFC3526_2048, Group
from egan_jax.errors import ConfigError, KeyFileError, KeyMismatchError

log = logging.getLogger(__name__)

REGISTRY_FORMAT = "egan_jax-encryip-registry"
USER_KEY_FORMAT = "egan_jax-encryip-user-key"
FILE_VERSION = 1
_USER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$")
STATUSES = ("active", "revoked")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def write_private_json(path: str | os.PathLike, record: dict, *, overwrite: bool = False) -> Path:
    """Write JSON readable by the owner only (0600). Atomic replace when ``overwrite``."""
    path = Path(path)
    text = json.dumps(record, indent=2) + "\n"
    if not overwrite:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise KeyFileError(
                f"{path} exists already; choose another path (it may hold a key still in use)"
            ) from None
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        return path
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:  # mkstemp creates the file with mode 0600
            handle.write(text)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return path


def read_private_json(
    path: str | os.PathLike, fmt: str, what: str, *, check_permissions: bool = True
) -> dict:
    """Read a 0600 JSON file of format ``fmt`` and this module's ``FILE_VERSION``."""
    return keys.read_private_json(
        path, fmt, what, version=FILE_VERSION, check_permissions=check_permissions
    )


def _field(record: dict, name: str, kind: type, where: str):
    value = record.get(name)
    if not isinstance(value, kind):
        raise KeyFileError(f"{where}: field {name!r} is missing or not a {kind.__name__}; corrupt")
    return value


# --- user key files -----------------------------------------------------------------------------
def save_user_key(
    key: DecryptionKey, path: str | os.PathLike, *, user_id: str, overwrite: bool = False
) -> Path:
    """Write one user's key file (mode 0600): public key, secret ``(x', y', a, b)``, fingerprint."""
    record = {
        "format": USER_KEY_FORMAT,
        "version": FILE_VERSION,
        "user_id": user_id,
        "fingerprint": key.fingerprint,
        "public_key": key.public_key.to_json(),
        "secret": key.secret_record(),
    }
    return write_private_json(path, record, overwrite=overwrite)


def load_user_key(
    path: str | os.PathLike, *, check_permissions: bool = True
) -> tuple[DecryptionKey, str]:
    """Read a user key file; checks the key against its public key. Returns ``(key, user_id)``."""
    record = read_private_json(
        path, USER_KEY_FORMAT, "user key file", check_permissions=check_permissions
    )
    where = f"user key file {path}"
    user_id = _field(record, "user_id", str, where)
    public_key = PublicKey.from_json(_field(record, "public_key", dict, where))
    key = DecryptionKey.from_secret_record(public_key, _field(record, "secret", dict, where))
    if record.get("fingerprint") != key.fingerprint:
        raise KeyFileError(f"{where}: the stored fingerprint does not match the key; it was edited")
    return key, user_id


# --- the owner's registry -----------------------------------------------------------------------
@dataclass(frozen=True)
class UserRecord:
    """What the registry says about one user (public: no secret in it)."""

    user_id: str
    fingerprint: str
    status: str
    issued_at: str
    revoked_at: str | None = None


class Registry:
    """The owner's registry file: create, load, issue, list, revoke. Saved after every change."""

    def __init__(self, path: str | os.PathLike, owner: OwnerKey):
        self.path = Path(path)
        self.owner = owner
        self._users: dict[str, tuple[UserRecord, DecryptionKey]] = {}

    @property
    def public_key(self) -> PublicKey:
        return self.owner.public_key

    def __repr__(self) -> str:
        return (
            f"Registry(path={str(self.path)!r}, public_key={self.public_key.fingerprint!r}, "
            f"users={len(self._users)})"
        )

    # --- files ------------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        path: str | os.PathLike,
        *,
        group: Group = RFC3526_2048,
        rng: random.Random | None = None,
        overwrite: bool = False,
    ) -> Registry:
        """Gen a fresh owner key and write a new registry (refuses to overwrite unless asked)."""
        registry = cls(path, cslite.keygen(group, rng=rng))
        registry.save(overwrite=overwrite)
        log.info("encryip registry created: public key %s", registry.public_key.fingerprint)
        return registry

    def save(self, *, overwrite: bool = True) -> Path:
        users = []
        for record, key in self._users.values():
            secret = key.secret_record()
            users.append({**asdict(record), "secret": {"x": secret["x"], "y": secret["y"]}})
        document = {
            "format": REGISTRY_FORMAT,
            "version": FILE_VERSION,
            "public_key": self.public_key.to_json(),
            "owner": self.owner.secret_record(),
            "users": users,
        }
        return write_private_json(self.path, document, overwrite=overwrite)

    @classmethod
    def load(cls, path: str | os.PathLike, *, check_permissions: bool = True) -> Registry:
        record = read_private_json(
            path, REGISTRY_FORMAT, "key registry", check_permissions=check_permissions
        )
        where = f"key registry {path}"
        public_key = PublicKey.from_json(_field(record, "public_key", dict, where))
        owner = OwnerKey.from_secret_record(public_key, _field(record, "owner", dict, where))
        registry = cls(path, owner)
        for entry in _field(record, "users", list, where):
            if not isinstance(entry, dict):
                raise KeyFileError(f"{where}: a user entry is not a JSON object; corrupt")
            user_id = _field(entry, "user_id", str, where)
            try:
                key = owner.issued_key(_field(entry, "secret", dict, where))
            except KeyMismatchError:
                raise KeyFileError(
                    f"{where}: user {user_id!r} holds a key the owner never issued; corrupt"
                ) from None
            status = _field(entry, "status", str, where)
            revoked_at = entry.get("revoked_at")
            if status not in STATUSES or not (revoked_at is None or isinstance(revoked_at, str)):
                raise KeyFileError(f"{where}: user {user_id!r} has an invalid status; corrupt")
            user = UserRecord(
                user_id,
                _field(entry, "fingerprint", str, where),
                status,
                _field(entry, "issued_at", str, where),
                revoked_at,
            )
            if user.fingerprint != key.fingerprint or user_id in registry._users:
                raise KeyFileError(f"{where}: user {user_id!r} is duplicated or was edited")
            registry._users[user_id] = (user, key)
        return registry

    # --- users ------------------------------------------------------------------------------
    def issue_user(
        self,
        user_id: str,
        key_path: str | os.PathLike | None = None,
        *,
        rng: random.Random | None = None,
        now: str | None = None,
    ) -> DecryptionKey:
        """Issue a new key to ``user_id``; write it to ``key_path`` (0600) if given; save."""
        if not isinstance(user_id, str) or not _USER_ID.match(user_id):
            raise ConfigError(
                f"user id {user_id!r} is invalid: use 1-64 characters from letters, digits and "
                "._@+- starting with a letter or digit"
            )
        if user_id in self._users:
            raise ConfigError(
                f"user {user_id!r} has a key already (status {self._users[user_id][0].status}); "
                "pick another id"
            )
        key = cslite.issue_key(self.owner, rng=rng)
        if key_path is not None:
            save_user_key(key, key_path, user_id=user_id)
        self._users[user_id] = (UserRecord(user_id, key.fingerprint, "active", now or _now()), key)
        self.save()
        log.info("encryip user %s issued key %s", user_id, key.fingerprint)
        return key

    def revoke(self, user_id: str, *, now: str | None = None) -> UserRecord:
        record, key = self._entry(user_id)
        if record.status == "revoked":
            raise ConfigError(f"user {user_id!r} is revoked already (at {record.revoked_at})")
        record = UserRecord(
            record.user_id, record.fingerprint, "revoked", record.issued_at, now or _now()
        )
        self._users[user_id] = (record, key)
        self.save()
        log.info("encryip user %s revoked (key %s)", user_id, key.fingerprint)
        return record

    def list_users(self, status: str | None = None) -> list[UserRecord]:
        if status is not None and status not in STATUSES:
            raise ConfigError(f"status must be one of {STATUSES}, got {status!r}")
        return [r for r, _ in self._users.values() if status is None or r.status == status]

    def user_key(self, user_id: str) -> DecryptionKey:
        """The key issued to ``user_id`` (owner side, e.g. for tracing)."""
        return self._entry(user_id)[1]

    def user_keys(self, *, include_revoked: bool = True) -> dict[str, DecryptionKey]:
        return {
            uid: key
            for uid, (record, key) in self._users.items()
            if include_revoked or record.status == "active"
        }

    def _entry(self, user_id: str) -> tuple[UserRecord, DecryptionKey]:
        if user_id not in self._users:
            raise ConfigError(
                f"no user {user_id!r} in {self.path}; known users: {sorted(self._users)}"
            )
        return self._users[user_id]
