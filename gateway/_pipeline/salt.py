"""The install's buyer-key salt: phone numbers and addresses are stored only as salted keys.

A buyer key is a hash of the buyer's identity (``core_ext.buyer_key``). Unsalted, anyone
with a copy of the store could hash every phone number (10^11 of them: minutes) and read
the buyers back. So each install has a **secret salt** (``[gateway] buyer_salt_file``,
default ``<data_dir>/buyer-salt``, 43 random URL-safe characters, mode 0600) that enters every
key, and the event log keeps a phone number or an address only as the token of its salted
key (``gateway._rules.privacy``). Put the file apart from the data (``/etc/edge-gateway/``)
and a stolen data directory gives no phone number; back it up WITH the store: without it,
orders stored before cannot be found by phone nor grouped with new ones.

``apply_buyer_salt(settings, store)`` runs before anything computes a key (the daemon at
start, and any command that reads keys offline):

* the file exists: its salt is used; the store remembers a **check** (the key of a fixed
  probe under the salt, record ``install/buyer_salt``) the first time, and a salt whose
  check differs is refused (``ConfigError``: the wrong file was restored);
* no file, and the store holds no order yet: a new salt is created;
* no file, and the store already holds orders written without a salt (a store older than
  the salt): the gateway keeps running **unsalted** (``WARNING`` at every start) rather than
  break its buyer groups; keys of such a store are brute-forceable.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

import core_ext
from gateway._errors import ConfigError
from gateway._settings import Settings
from gateway._store import StepWrite, Store

log = logging.getLogger(__name__)

#: The record (no tenant) that remembers which salt the store's keys were made with.
KIND, RECORD = "install", "buyer_salt"
_PROBE = ("_probe", "buyer_id", "edge-gateway-salt-check")


def salt_check() -> str:
    """The check of the salt set now: the key of a fixed probe identity, as hex."""
    return f"{core_ext.buyer_key(*_PROBE):016x}"


def read_salt(path: Path) -> str | None:
    """The salt in ``path``; ``None`` when there is no such file.

    Raises:
        ConfigError: the file is empty, unreadable or readable by others.
    """
    try:
        text = path.read_text(encoding="utf-8").strip()
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(path, None, "", f"cannot read the buyer salt: {exc}") from exc
    if not text:
        raise ConfigError(path, None, "", "the buyer salt file is empty: restore it from the backup of this install")
    if mode & 0o077:
        raise ConfigError(path, None, "", f"the buyer salt is readable by others (mode {mode & 0o777:o}): "
                                          "chmod 600 it")
    return text


def create_salt(path: Path) -> str:
    """A new random salt written to ``path`` (mode 0600, created exclusively)."""
    salt = secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(salt + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    log.info("created the buyer-key salt in %s: back it up with the store", path)
    return salt


def apply_buyer_salt(settings: Settings, store: Store) -> str:
    """Set the install's salt in ``core_ext`` for this process (see the module docstring).

    Returns:
        ``"salted"`` or ``"unsalted"`` (a store older than the salt).

    Raises:
        ConfigError: the salt file is unusable or is not the one the store's keys were made with.
    """
    path = settings.buyer_salt_path
    salt = read_salt(path)
    known = store.get_record("", KIND, RECORD)
    if salt is None:
        if known is not None and known.get("salted"):
            raise ConfigError(path, None, "", "the buyer salt is missing, but this store's keys were made with "
                                              "one: restore the file from the backup of this install (a new "
                                              "salt would make every stored order unfindable by phone)")
        if known is not None or store.tenants():
            core_ext.set_buyer_salt("")
            if known is None:
                store.commit(StepWrite(records=[("", KIND, RECORD, {"salted": False})]))
            log.warning("buyer keys are NOT salted: this store was written before the salt existed; its phone "
                        "keys could be matched against a list of numbers by whoever copies it")
            return "unsalted"
        salt = create_salt(path)
    core_ext.set_buyer_salt(salt)
    check = salt_check()
    if known is None:
        store.commit(StepWrite(records=[("", KIND, RECORD, {"salted": True, "check": check})]))
    elif not known.get("salted"):
        core_ext.set_buyer_salt("")
        log.warning("%s exists but this store's keys were made without a salt: the salt is not used", path)
        return "unsalted"
    elif known.get("check") != check:
        core_ext.set_buyer_salt("")
        raise ConfigError(path, None, "", "this is not the buyer salt this store's keys were made with: "
                                          "restore the right file from the backup of this install")
    return "salted"


__all__ = ["KIND", "RECORD", "apply_buyer_salt", "create_salt", "read_salt", "salt_check"]
