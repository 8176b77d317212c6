"""Secret rules of node configs: which keys hold secrets, the one form their values may take, and
the redaction of everything the project writes.

A secret never sits in a config file: a key that looks secret must hold ``env:NAME``, a reference
to the environment variable ``NAME`` that holds the secret where the node runs. The loader calls
:func:`reject_literal_secrets` on every document it reads (backtest and live, components, the
``risk`` and ``forensics`` sections included); the writers of run artifacts (``config.yaml``,
``summary.json``, MLflow params, the tearsheet) pass what they write through
:func:`redact_secrets`.

When a key looks secret
-----------------------
The key is cut into lower-case words at every character that is not a letter or a digit and at
each lower-to-upper case change (``apiSecret`` → ``api secret``, ``APIKey`` → ``api key``,
``sasl.password`` → ``sasl password``). It looks secret, unless it is one of
:data:`NOT_SECRET_KEYS` (librdkafka settings that merely mention SASL or a token), when

- a word, or two neighbouring words written together, contains one of :data:`SECRET_PARTS`
  (``password``, ``passwd``, ``passphrase``, ``secret``, ``credential``, ``apikey``,
  ``privatekey``, ``jaas``): ``DB_PASSWORD``, ``apiSecret``, ``api-key``, ``private_key``;
- a word, or two neighbouring words written together, is one of :data:`SECRET_WORDS` (``pwd``,
  ``creds``, ``token``, ``username``, ``accountid``, ``accesskey``, ...) or ends in ``token``:
  ``pwd``, ``auth_token``, ``accessToken``, ``sasl.username``, ``account_id``;
- the last word is ``pass`` (``db_pass``), or the key is the single word ``key``;
- a word is ``sasl`` (librdkafka's SASL settings carry credentials).

So ``sort_key``, ``key_type``, ``keyword``, ``instrument_id``, ``order_id_tag``, ``bar_type``,
``max_tokens`` and ``ssl.key.location`` do not look secret; ``secretary`` does (a word containing
``secret``).

Which values are secrets
------------------------
Under a key that looks secret: a string other than ``env:NAME``, or a number. Below such a key
(its value is a mapping or a list): every string other than ``env:NAME``. ``null``, booleans
(``enable.sasl.oauthbearer.unsecure.jwt: true``) and ``env:NAME`` references are not secrets:
they stay in written artifacts, so a ``config.yaml`` still says which variable a run read.
"""

import re
from collections.abc import Mapping
from itertools import pairwise
from typing import Any

import yaml

from grodt.core.errors import ConfigError

__all__ = [
    "ENV_PREFIX",
    "NOT_SECRET_KEYS",
    "REDACTED",
    "SECRET_PARTS",
    "SECRET_WORDS",
    "is_env_reference",
    "key_words",
    "literal_secret_paths",
    "looks_secret",
    "redact_secrets",
    "redact_yaml_text",
    "reject_literal_secrets",
]

ENV_PREFIX = "env:"
"""A value ``env:NAME`` is read from the environment variable ``NAME`` where it is used."""

REDACTED = "***"
"""What a secret value becomes in every artifact the project writes."""

SECRET_PARTS: tuple[str, ...] = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "credential",
    "apikey",
    "privatekey",
    "jaas",
)
"""A key is secret when one of its words (or two neighbours written together) contains one."""

SECRET_WORDS: frozenset[str] = frozenset(
    {
        "pwd",
        "creds",
        "token",
        "username",
        "accountid",
        "accesskey",
        "authkey",
        "encryptionkey",
        "hmackey",
        "keypem",
        "masterkey",
        "privkey",
        "signingkey",
        "sshkey",
    },
)
"""A key is secret when one of its words (or two neighbours written together) is one."""

NOT_SECRET_KEYS: frozenset[str] = frozenset(
    {
        "sasl.mechanism",
        "sasl.mechanisms",
        "sasl.kerberos.service.name",
        "sasl.kerberos.principal",
        "sasl.kerberos.kinit.cmd",
        "sasl.kerberos.keytab",
        "sasl.kerberos.min.time.before.relogin",
        "sasl.oauthbearer.method",
        "sasl.oauthbearer.scope",
        "sasl.oauthbearer.client.id",
        "sasl.oauthbearer.token.endpoint.url",
        "enable.sasl.oauthbearer.unsecure.jwt",
    },
)
"""librdkafka settings (lower case) that name SASL or a token but hold no secret."""

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")
_PARTS = re.compile("|".join(SECRET_PARTS))
_TRIGGER = re.compile(
    "|".join(("pass", "secret", "credential", "key", "jaas", "pwd", "creds", "token", "username"))
    + "|accountid|sasl",
)
_WORD_BREAK = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def key_words(key: str) -> list[str]:
    """``"apiSecret"`` → ``["api", "secret"]``; ``"sasl.password"`` → ``["sasl", "password"]``."""
    return [word.lower() for word in _WORD_BREAK.split(key) if word]


def looks_secret(key: object) -> bool:
    """Whether a config key looks like it holds a secret (the rule in the module docstring)."""
    text = str(key)
    lower = text.lower()
    # Every rule needs one of these letter runs somewhere in the key: most keys stop here.
    if _TRIGGER.search(_NOT_ALNUM.sub("", lower)) is None or lower in NOT_SECRET_KEYS:
        return False
    words = key_words(text)
    if words == ["key"] or words[-1] == "pass" or "sasl" in words:
        return True
    candidates = words + [a + b for a, b in pairwise(words)]
    return any(
        word in SECRET_WORDS or word.endswith("token") or _PARTS.search(word) is not None
        for word in candidates
    )


def is_env_reference(value: object) -> bool:
    """``env:NAME`` with a valid variable name (letters, digits, ``_``; not a digit first)."""
    return (
        isinstance(value, str)
        and value.startswith(ENV_PREFIX)
        and _ENV_NAME.fullmatch(value[len(ENV_PREFIX) :]) is not None
    )


def _is_secret_value(value: object, direct: bool) -> bool:
    """A value that must not be written: see "Which values are secrets" above."""
    if value is None or isinstance(value, bool) or is_env_reference(value):
        return False
    if isinstance(value, str):
        return True
    return direct and isinstance(value, int | float)


def _join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


def literal_secret_paths(node: Any, path: str = "", under_secret: bool = False) -> list[str]:
    """Field paths (``forensics.kafka.producer.sasl.password``, ``exec_clients[0].apiSecret``) of
    every literal secret in a document; values are never read into the result."""
    found: list[str] = []
    if isinstance(node, Mapping):
        for key, value in node.items():
            here = _join(path, key)
            secret_key = under_secret or looks_secret(key)
            if isinstance(value, Mapping | list):
                found.extend(literal_secret_paths(value, here, secret_key))
            elif secret_key and _is_secret_value(value, direct=not under_secret):
                found.append(here)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            here = f"{path}[{index}]"
            if isinstance(item, Mapping | list):
                found.extend(literal_secret_paths(item, here, under_secret))
            elif under_secret and _is_secret_value(item, direct=False):
                found.append(here)
    return found


def reject_literal_secrets(document: Any, source: str) -> None:
    """Raise :class:`ConfigError` naming every literal secret's field path (never its value)."""
    paths = literal_secret_paths(document)
    if paths:
        raise ConfigError(
            f"{source}: a secret is never written in a config; set each of these to env:NAME "
            "(NAME: the environment variable that holds it; broker clients read theirs from the "
            "variables `grodt live CONFIG --check` lists): " + ", ".join(paths) + " (values not "
            "shown)",
        )


def redact_secrets(value: Any, under_secret: bool = False) -> Any:
    """A copy of ``value`` with every secret value replaced by :data:`REDACTED` (mappings and
    lists copied; everything else returned as is)."""
    if isinstance(value, Mapping):
        redacted: dict[Any, Any] = {}
        for key, child in value.items():
            secret_key = under_secret or looks_secret(key)
            if isinstance(child, Mapping | list | tuple):
                redacted[key] = redact_secrets(child, secret_key)
            elif secret_key and _is_secret_value(child, direct=not under_secret):
                redacted[key] = REDACTED
            else:
                redacted[key] = child
        return redacted
    if isinstance(value, list | tuple):
        return [
            REDACTED
            if under_secret and _is_secret_value(item, direct=False)
            else redact_secrets(item, under_secret)
            for item in value
        ]
    return value


def redact_yaml_text(text: str) -> str:
    """A YAML document's text with its secrets redacted (re-dumped, key order kept); text that is
    not YAML is replaced by a note rather than shown."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError:
        return "# not shown: not a valid YAML document, so its secrets could not be redacted\n"
    redacted = redact_secrets(document)
    if redacted == document:
        return text
    return yaml.safe_dump(redacted, sort_keys=False)
