"""The owner's key registry and user key files: round trips, revocation, permissions, validation."""

import json
import logging
import os
import random
import stat

import pytest

from egan_jax.encryip import cslite
from egan_jax.encryip.group import TEST_GROUP_64
from egan_jax.encryip.registry import Registry, UserRecord, load_user_key, save_user_key
from egan_jax.errors import ConfigError, KeyFileError, KeyMismatchError

T0 = "2026-01-01T00:00:00Z"


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def registry(tmp_path):
    return Registry.create(tmp_path / "owner.json", group=TEST_GROUP_64, rng=random.Random(1))


def test_create_issue_reload_round_trip(registry, tmp_path):
    assert _mode(registry.path) == 0o600
    rng = random.Random(2)
    alice = registry.issue_user("alice", tmp_path / "alice.key", rng=rng, now=T0)
    bob = registry.issue_user("bob@lab", tmp_path / "bob.key", rng=rng, now=T0)
    assert _mode(tmp_path / "alice.key") == 0o600
    again = Registry.load(registry.path)
    assert again.public_key == registry.public_key
    assert again.owner.secret_record() == registry.owner.secret_record()
    assert again.list_users() == [
        UserRecord("alice", alice.fingerprint, "active", T0),
        UserRecord("bob@lab", bob.fingerprint, "active", T0),
    ]
    assert again.user_key("alice") == alice and again.user_key("bob@lab") == bob
    loaded, user_id = load_user_key(tmp_path / "alice.key")
    assert (loaded, user_id) == (alice, "alice")
    ct = cslite.encrypt(registry.public_key, 16, rng=rng)
    assert cslite.decrypt(loaded, ct) == cslite.decrypt(bob, ct) == 16


def test_revoke_persists_and_filters(registry):
    rng = random.Random(3)
    for name in ("u1", "u2", "u3"):
        registry.issue_user(name, rng=rng, now=T0)
    record = registry.revoke("u2", now="2026-02-02T00:00:00Z")
    assert record.status == "revoked" and record.revoked_at == "2026-02-02T00:00:00Z"
    again = Registry.load(registry.path)
    assert [r.user_id for r in again.list_users("active")] == ["u1", "u3"]
    assert [r.user_id for r in again.list_users("revoked")] == ["u2"]
    assert set(again.user_keys(include_revoked=False)) == {"u1", "u3"}
    assert set(again.user_keys()) == {"u1", "u2", "u3"}  # revoked users stay traceable
    with pytest.raises(ConfigError, match="revoked already"):
        again.revoke("u2")
    with pytest.raises(ConfigError, match="no user 'nobody'"):
        again.revoke("nobody")
    with pytest.raises(ConfigError, match="status must be"):
        again.list_users("pending")


def test_issue_refuses_bad_or_duplicate_ids_and_existing_files(registry, tmp_path):
    registry.issue_user("carol", rng=random.Random(4))
    with pytest.raises(ConfigError, match="has a key already"):
        registry.issue_user("carol")
    for bad in ("", "-dash", "a b", "x" * 65, "semi;colon", 7):
        with pytest.raises(ConfigError, match="invalid"):
            registry.issue_user(bad)
    (tmp_path / "taken.key").write_text("{}")
    with pytest.raises(KeyFileError, match="exists already"):
        registry.issue_user("dave", tmp_path / "taken.key")
    assert [r.user_id for r in Registry.load(registry.path).list_users()] == ["carol"]
    with pytest.raises(KeyFileError, match="exists already"):
        Registry.create(registry.path, group=TEST_GROUP_64)


def test_permissions_are_enforced(registry, tmp_path):
    registry.issue_user("erin", tmp_path / "erin.key", rng=random.Random(5))
    for path in (registry.path, tmp_path / "erin.key"):
        os.chmod(path, 0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        Registry.load(registry.path)
    with pytest.raises(KeyFileError, match="chmod 600"):
        load_user_key(tmp_path / "erin.key")
    assert Registry.load(registry.path, check_permissions=False).list_users()[0].user_id == "erin"
    registry.save()  # an atomic rewrite restores 0600
    assert _mode(registry.path) == 0o600


def _edit(path, change):
    record = json.loads(path.read_text())
    change(record)
    path.write_text(json.dumps(record))
    os.chmod(path, 0o600)


def test_registry_validation_errors(registry, tmp_path):
    registry.issue_user("frank", rng=random.Random(6))
    text = registry.path.read_text()
    cases = {
        "version": lambda r: r.update(version=2),
        "format": lambda r: r.update(format="something-else"),
        "never issued": lambda r: r["users"][0]["secret"].update(y=r["users"][0]["secret"]["x"]),
        "invalid status": lambda r: r["users"][0].update(status="suspended"),
        "duplicated or was edited": lambda r: r["users"][0].update(fingerprint="eiuk1-0"),
        "'users'": lambda r: r.pop("users"),
    }
    for message, change in cases.items():
        registry.path.write_text(text)
        _edit(registry.path, change)
        with pytest.raises(KeyFileError, match=message):
            Registry.load(registry.path)
    registry.path.write_text(text[: len(text) // 2])
    with pytest.raises(KeyFileError, match="not valid JSON"):
        Registry.load(registry.path)
    with pytest.raises(KeyFileError, match="does not exist"):
        Registry.load(tmp_path / "missing.json")


def test_user_key_file_validation(registry, tmp_path):
    path = tmp_path / "gina.key"
    key = registry.issue_user("gina", path, rng=random.Random(7))
    text = path.read_text()
    _edit(path, lambda r: r["secret"].update(y=r["secret"]["x"]))
    with pytest.raises(KeyMismatchError, match="does not belong"):
        load_user_key(path)
    path.write_text(text)
    _edit(path, lambda r: r.update(fingerprint="eiuk1-0000"))
    with pytest.raises(KeyFileError, match="fingerprint"):
        load_user_key(path)
    path.write_text(text)
    _edit(path, lambda r: r.update(version=9))
    with pytest.raises(KeyFileError, match="version 9"):
        load_user_key(path)
    other = tmp_path / "copy.key"
    save_user_key(key, other, user_id="gina")
    assert load_user_key(other)[0] == key
    with pytest.raises(KeyFileError, match="exists already"):
        save_user_key(key, other, user_id="gina")


def test_secrets_never_reach_logs_or_listings(registry, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="egan_jax.encryip.registry"):
        key = registry.issue_user("hank", tmp_path / "hank.key", rng=random.Random(8))
        registry.revoke("hank")
    secrets = [*key.secret_record().values(), registry.owner.secret_record()["t"]]
    assert key.fingerprint in caplog.text
    listing = repr(registry.list_users()) + repr(registry)
    assert not any(s in caplog.text or s in listing for s in secrets)
