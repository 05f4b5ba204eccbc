"""Who may post alerts and call the API: per source, from the config.

```yaml
ingest:
  auth:
    default: {type: bearer, token_file: /run/secrets/ingest}   # sources without their own
    sources:
      grafana: {type: hmac, secret_env: GRAFANA_HMAC,          # Grafana's webhook HMAC
                signature_header: X-Grafana-Alert-Signature,
                timestamp_header: X-Grafana-Alerting-Timestamp}
      splunk: {type: basic, username: splunk, password_file: /run/secrets/splunk}
    api: {type: bearer, token_env: STORMWATCH_API_TOKEN}        # incidents, silences, reload, dead letters
```

- `bearer`: `Authorization: Bearer <token>`; every line of `token_file` is a valid token,
  so a new one can be rolled out before the old one is removed.
- `basic`: `Authorization: Basic base64(username:password)`.
- `hmac`: hex HMAC-SHA256 of `<timestamp>:<body>` (Grafana's scheme; a `sha256=` prefix
  is accepted) in `signature_header`, the Unix time in `timestamp_header`. A timestamp
  more than `window` away from now, or a signature already seen within the window (a
  replay), is refused.

Secrets come from `*_file` or `*_env` only, so they are never in the config file,
never in `config check`'s output and never logged. A refusal is 401 with the usual JSON
body, counted as `unauthorized` for its source; nothing says which part was wrong
beyond what the sender needs to fix its request.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path

import msgspec

from stormwatch.errors import ConfigError, PayloadError
from stormwatch.wire import Duration

__all__ = [
    "AuthConfig",
    "AuthMethod",
    "Authenticator",
    "BasicAuth",
    "BearerAuth",
    "HmacAuth",
    "Unauthorized",
]


class _Secret(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    def _pair(self, name: str) -> tuple[str | None, str | None]:
        return getattr(self, f"{name}_file"), getattr(self, f"{name}_env")

    def _exactly_one(self, name: str) -> None:
        file, env = self._pair(name)
        if (file is None) == (env is None):
            msg = f"give exactly one of {name}_file and {name}_env"
            raise ValueError(msg)


class BearerAuth(_Secret, tag="bearer", tag_field="type", kw_only=True, frozen=True):
    token_file: str | None = None
    token_env: str | None = None

    def __post_init__(self) -> None:
        self._exactly_one("token")


class BasicAuth(_Secret, tag="basic", tag_field="type", kw_only=True, frozen=True):
    username: str
    password_file: str | None = None
    password_env: str | None = None

    def __post_init__(self) -> None:
        self._exactly_one("password")


class HmacAuth(_Secret, tag="hmac", tag_field="type", kw_only=True, frozen=True):
    secret_file: str | None = None
    secret_env: str | None = None
    signature_header: str = "X-Stormwatch-Signature"
    timestamp_header: str = "X-Stormwatch-Timestamp"
    window: Duration = Duration(300)
    """How far the timestamp may be from now, either way; replays are remembered this long."""

    def __post_init__(self) -> None:
        self._exactly_one("secret")


AuthMethod = BearerAuth | BasicAuth | HmacAuth


class AuthConfig(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    default: AuthMethod | None = None
    """For every source without an entry in `sources`."""
    sources: dict[str, AuthMethod] = {}
    api: BearerAuth | BasicAuth | None = None
    """For the incident, silence, reload and dead-letter routes."""


class Unauthorized(PayloadError):
    """Missing or wrong credentials; answered 401 with `headers` (the challenge)."""

    def __init__(self, message: str, *, source: str, field: str, challenge: str = "") -> None:
        super().__init__(message, source=source, field=field, reason="unauthorized")
        self.headers = {"WWW-Authenticate": challenge} if challenge else {}


def _read(file: str | None, env: str | None, environ: Mapping[str, str], at: str) -> list[str]:
    """The secret's values: each non-empty line of the file, or the variable's value."""
    if file is not None:
        try:
            text = Path(file).read_text()
        except OSError as err:
            msg = f"cannot read the secret file: {err.strerror}"
            raise ConfigError(msg, field=f"{at}_file") from err
        values = [line.strip() for line in text.splitlines() if line.strip()]
        if not values:
            raise ConfigError("the secret file is empty", field=f"{at}_file")
        return values
    value = environ.get(env or "", "").strip()
    if not value:
        msg = f"environment variable {env} is not set or empty"
        raise ConfigError(msg, field=f"{at}_env")
    return [value]


class _Bearer:
    challenge = 'Bearer realm="stormwatch"'

    def __init__(self, tokens: list[str]) -> None:
        self.tokens = [t.encode() for t in tokens]

    def check(self, headers: Mapping[str, str], source: str) -> str:
        scheme, _, given = headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            raise Unauthorized(
                "send Authorization: Bearer <token>",
                source=source,
                field="Authorization",
                challenge=self.challenge,
            )
        token = given.strip().encode()
        if not any(hmac.compare_digest(token, t) for t in self.tokens):
            raise Unauthorized(
                "the bearer token is not valid",
                source=source,
                field="Authorization",
                challenge=self.challenge,
            )
        return "bearer:" + hashlib.sha256(token).hexdigest()[:16]


class _Basic:
    challenge = 'Basic realm="stormwatch"'

    def __init__(self, username: str, passwords: list[str]) -> None:
        self.expected = [f"{username}:{p}".encode() for p in passwords]
        self.username = username

    def check(self, headers: Mapping[str, str], source: str) -> str:
        scheme, _, given = headers.get("Authorization", "").partition(" ")
        try:
            pair = base64.b64decode(given.strip(), validate=True)
        except (binascii.Error, ValueError):
            pair = b""
        if scheme.lower() != "basic" or not any(
            hmac.compare_digest(pair, e) for e in self.expected
        ):
            raise Unauthorized(
                "the basic credentials are missing or not valid",
                source=source,
                field="Authorization",
                challenge=self.challenge,
            )
        return "basic:" + self.username


class _Hmac:
    MAX_REMEMBERED = 100_000
    """Signatures remembered for replay checks; past it the oldest are forgotten."""

    def __init__(self, config: HmacAuth, secrets: list[str]) -> None:
        self.config = config
        self.keys = [s.encode() for s in secrets]
        self._seen: OrderedDict[str, float] = OrderedDict()

    def check(self, headers: Mapping[str, str], body: bytes, now: float, source: str) -> str:
        c = self.config
        stamp = headers.get(c.timestamp_header, "").strip()
        try:
            when = float(stamp)
        except ValueError:
            msg = f"send the Unix time the request was signed at in {c.timestamp_header}"
            raise Unauthorized(msg, source=source, field=c.timestamp_header) from None
        if abs(now - when) > c.window:
            msg = f"the signature's timestamp is more than {c.window:g}s from now"
            raise Unauthorized(msg, source=source, field=c.timestamp_header)
        given = headers.get(c.signature_header, "").strip().lower().removeprefix("sha256=")
        message = stamp.encode() + b":" + body
        if not given or not any(
            hmac.compare_digest(given, hmac.new(k, message, hashlib.sha256).hexdigest())
            for k in self.keys
        ):
            msg = f"{c.signature_header} is not the HMAC-SHA256 of <timestamp>:<body>"
            raise Unauthorized(msg, source=source, field=c.signature_header)
        self._forget(now)
        if given in self._seen:
            raise Unauthorized(
                "this signed request was already received (a replay)",
                source=source,
                field=c.signature_header,
            )
        self._seen[given] = now + c.window
        if len(self._seen) > self.MAX_REMEMBERED:
            self._seen.popitem(last=False)
        return "hmac:" + source

    def _forget(self, now: float) -> None:
        seen = self._seen
        while seen:
            oldest = next(iter(seen))
            if seen[oldest] > now:
                break
            del seen[oldest]


_Checker = _Bearer | _Basic | _Hmac


def _build(method: AuthMethod, environ: Mapping[str, str], at: str) -> _Checker:
    if isinstance(method, BearerAuth):
        return _Bearer(_read(method.token_file, method.token_env, environ, f"{at}.token"))
    if isinstance(method, BasicAuth):
        passwords = _read(method.password_file, method.password_env, environ, f"{at}.password")
        return _Basic(method.username, passwords)
    return _Hmac(method, _read(method.secret_file, method.secret_env, environ, f"{at}.secret"))


class Authenticator:
    """The configured checks, secrets read once at start (ConfigError if one is missing)."""

    def __init__(
        self, config: AuthConfig | None = None, environ: Mapping[str, str] | None = None
    ) -> None:
        config = config or AuthConfig()
        environ = os.environ if environ is None else environ
        at = "$.ingest.auth"
        self._default = _build(config.default, environ, f"{at}.default") if config.default else None
        self._sources = {
            name: _build(m, environ, f"{at}.sources.{name}") for name, m in config.sources.items()
        }
        self._api = _build(config.api, environ, f"{at}.api") if config.api else None

    def _for(self, source: str) -> _Checker | None:
        return self._sources.get(source, self._default)

    def protects(self, source: str) -> bool:
        return self._for(source) is not None

    @property
    def protects_api(self) -> bool:
        return self._api is not None

    def check_headers(self, source: str, headers: Mapping[str, str]) -> str:
        """Bearer and basic checks; returns the credential's id ("" when the source is
        open or signs its bodies). Raises Unauthorized."""
        checker = self._for(source)
        if isinstance(checker, _Bearer | _Basic):
            return checker.check(headers, source)
        return ""

    def check_signature(
        self, source: str, headers: Mapping[str, str], body: bytes, now: float
    ) -> str:
        """The HMAC check, on the raw body. Raises Unauthorized."""
        checker = self._for(source)
        if isinstance(checker, _Hmac):
            return checker.check(headers, body, now, source)
        return ""

    def check_api(self, headers: Mapping[str, str]) -> str:
        """The API token; returns the credential's id ("" when the API is open)."""
        if isinstance(self._api, _Bearer | _Basic):
            return self._api.check(headers, "api")
        return ""
