"""Settings models of the connectors, as they appear under ``connectors:`` in ``config.yaml``.

Models are frozen and forbid unknown keys, so a typo is an error at load time rather than a
silently ignored setting. Secrets are :class:`pydantic.SecretStr`: their value never appears in a
``repr``, a log line or an error message. ``${ENV_VAR}`` references are resolved by the config
loader (``sync.config``) before these models see the values.
"""

from __future__ import annotations

__all__ = [
    "HttpSettings",
    "JiraSettings",
    "PagerDutySettings",
    "ProductboardSettings",
    "SlackSettings",
    "ZendeskSettings",
]

import ipaddress
import re
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _is_loopback(host: str) -> bool:
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _https_url(value: str) -> str:
    """``value`` without a trailing slash, if it is an https URL (or http on loopback).

    The connectors send the API token with every request (Basic auth), so plain http would put it
    on the wire in cleartext; only the sandbox on this machine may use it.
    """
    value = value.rstrip("/")
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError as exc:
        raise ValueError("not a URL; expected https://host[:port]") from exc
    if parts.scheme not in ("http", "https") or not host:
        raise ValueError("not a URL; expected https://host[:port]")
    if parts.scheme == "http" and not _is_loopback(host):
        raise ValueError(
            "must use https://: over http:// the API token (Basic auth) would travel in "
            "cleartext; plain http is allowed only for a loopback host (127.0.0.1, localhost, ::1)"
        )
    return value


class HttpSettings(_Model):
    """HTTP hygiene shared by every connector."""

    connect_timeout: float = Field(5.0, gt=0, description="seconds to open a connection")
    read_timeout: float = Field(30.0, gt=0, description="seconds to wait for an answer")
    verify_tls: bool | str = Field(
        True, description="verify TLS certificates (true), or a CA bundle path; never false"
    )

    @field_validator("verify_tls")
    @classmethod
    def _never_off(cls, value: bool | str) -> bool | str:
        if value is False:
            raise ValueError("TLS verification cannot be switched off; give a CA bundle path")
        return value


#: A Zendesk user/organization field key: letters, digits and underscores, not only digits.
FIELD_KEY = re.compile(r"^(?![0-9]+$)[A-Za-z0-9_]+$")


def _field_keys(value: tuple[str, ...]) -> tuple[str, ...]:
    bad = [key for key in value if not FIELD_KEY.match(key)]
    if bad:
        raise ValueError(f"not a Zendesk field key: {', '.join(repr(k) for k in bad)} (keys are "
                         "letters, digits and underscores, not only digits)")
    repeated = sorted({key for key in value if value.count(key) > 1})
    if repeated:
        raise ValueError(f"listed more than once: {', '.join(repeated)}")
    return value


class ZendeskSettings(_Model):
    """A Zendesk Support account, reached through zenpy with an API token."""

    subdomain: str = Field(min_length=1, description="the <subdomain> of <subdomain>.zendesk.com")
    email: str = Field(min_length=3, description="agent/admin email the API token belongs to")
    api_token: SecretStr
    base_url: str | None = Field(
        None,
        description="override https://<subdomain>.zendesk.com (the sandbox uses this); "
        "https://host[:port], no path; http:// only on a loopback host",
    )
    custom_fields: dict[str, int] = Field(
        default_factory=dict,
        description="custom ticket fields by the name rules use -> Zendesk field id",
    )
    user_fields: tuple[str, ...] = Field(
        default=(),
        description="user field keys rules may read as requester.fields.<key>",
    )
    organization_fields: tuple[str, ...] = Field(
        default=(),
        description="organization field keys rules may read as organization.fields.<key>",
    )
    people_cache_seconds: float = Field(
        300.0, ge=0,
        description="how long a requester or organization read from Zendesk is reused "
        "(in memory, per process); 0 reads them for every event that needs them",
    )
    requests_per_minute: int = Field(
        100, gt=0,
        description="ceiling for this connector's calls (Zendesk ticket updates: 100/min)",
    )
    bulk_settle_seconds: float = Field(
        120.0, ge=0,
        description="after an update_many whose answer was lost, how long to wait before "
        "reading the tickets to see which it updated (a queued job may not have run yet)",
    )
    bulk_job_timeout_seconds: float = Field(
        60.0, gt=0,
        description="how long one attempt polls an update_many job before leaving it for a "
        "later attempt (which polls the same job, never sends it again)",
    )
    http: HttpSettings = HttpSettings()

    @field_validator("user_fields", "organization_fields")
    @classmethod
    def _keys(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _field_keys(value)

    @field_validator("base_url")
    @classmethod
    def _https_only(cls, value: str | None) -> str | None:
        return _https_url(value) if value else value


class JiraSettings(_Model):
    """A Jira Cloud site, reached through the ``jira`` client with an API token."""

    url: str = Field(
        min_length=1,
        description="https://<site>.atlassian.net; http:// only on a loopback host (the sandbox)",
    )
    email: str = Field(min_length=3)
    api_token: SecretStr
    requests_per_minute: int = Field(300, gt=0)
    search_lag_seconds: float = Field(
        5.0,
        ge=0,
        description="how long Jira search may lag behind writes; after an ambiguous create, "
        "search again after this delay before concluding the issue does not exist",
    )
    http: HttpSettings = HttpSettings()

    @field_validator("url")
    @classmethod
    def _https_only(cls, value: str) -> str:
        return _https_url(value)


#: A service name as rules use it (``pagerduty.trigger: {service: payments}``).
SERVICE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class PagerDutySettings(_Model):
    """PagerDuty Events API v2, reached through the ``pagerduty`` client (httpx2).

    Each service a rule may page has its own integration (routing) key; PagerDuty rate-limits
    per key, so each key gets its own limiter.
    """

    routing_keys: dict[str, SecretStr] = Field(
        min_length=1,
        description="service name used in rules -> Events API v2 integration key (32 characters)",
    )
    default_service: str | None = Field(
        None, description="the service a rule pages when it names none (default: the only one)"
    )
    events_url: str = Field(
        "https://events.pagerduty.com",
        description="Events API base URL; https only (the client refuses http; the sandbox "
        "serves TLS with its own CA, given as http.verify_tls)",
    )
    source: str = Field("switchboard", min_length=1,
                        description="payload.source of every trigger")
    events_per_minute: int = Field(
        120, gt=0, description="ceiling per routing key (PagerDuty: about 120 events/min per key)"
    )
    http: HttpSettings = HttpSettings()

    @field_validator("routing_keys")
    @classmethod
    def _keys(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        bad = [name for name in value if not SERVICE_NAME.match(name)]
        if bad:
            raise ValueError(f"service names are lower-case letters, digits, - and _: "
                             f"{', '.join(repr(b) for b in bad)}")
        for name, key in value.items():
            if not key.get_secret_value().strip():
                raise ValueError(f"routing key of service {name!r} is empty")
        return value

    @field_validator("events_url")
    @classmethod
    def _https(cls, value: str) -> str:
        value = value.rstrip("/")
        parts = urlsplit(value)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError("must be an https:// URL: the pagerduty client refuses any other")
        return value

    @model_validator(mode="after")
    def _default(self) -> PagerDutySettings:
        if self.default_service is None:
            if len(self.routing_keys) == 1:
                object.__setattr__(self, "default_service", next(iter(self.routing_keys)))
        elif self.default_service not in self.routing_keys:
            raise ValueError(f"default_service {self.default_service!r} is not one of "
                             f"routing_keys ({', '.join(sorted(self.routing_keys))})")
        return self


class SlackSettings(_Model):
    """A Slack workspace, reached through slack-sdk's ``WebClient`` with a bot token."""

    bot_token: SecretStr
    base_url: str = Field(
        "https://slack.com/api/",
        description="Web API base URL (the sandbox overrides it); https, http only on loopback",
    )
    messages_per_minute: int = Field(
        60, gt=0, description="posts and updates per channel (Slack: about 1 message/s)"
    )
    requests_per_minute: int = Field(
        50, gt=0, description="other Web API calls (conversations.list/history: Tier 2-3)"
    )
    find_lookback_seconds: float = Field(
        86400.0, gt=0,
        description="after an ambiguous post, how far back the channel is searched for the "
        "message's idempotency key before posting again",
    )
    http: HttpSettings = HttpSettings()

    @field_validator("base_url")
    @classmethod
    def _https_only(cls, value: str) -> str:
        return _https_url(value) + "/"


#: A Productboard ``metadata.source.system`` value: a short identifier, no spaces.
SOURCE_SYSTEM = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class ProductboardSettings(_Model):
    """A Productboard workspace, reached through its Public API v2 with an access token.

    The section is optional: without it the connector (and every ``productboard.*`` action) is
    off. See ``docs/productboard.md`` for the API contract the connector is built on.
    """

    token: SecretStr = Field(
        description="Public API access token (Bearer), made by an admin under Integrations"
    )
    base_url: str = Field(
        "https://api.productboard.com",
        description="API origin (https://api.eu.productboard.com for the EU data centre; the "
        "sandbox overrides it); https://host[:port] without a path, http:// only on loopback",
    )
    requests_per_second: float = Field(
        50.0, gt=0, le=1000,
        description="this connector's calls, spaced evenly without bursts (Productboard "
        "allows 50 requests/second per token and advises against bursts)",
    )
    source_system: str = Field(
        "switchboard",
        description="metadata.source.system of every note created; find_note looks for notes "
        "of this system only",
    )
    create_missing_tags: bool = Field(
        True,
        description="a tag the workspace does not have yet is created as a tag value (as "
        "Productboard's own integrations do); false: such tags are left off the note",
    )
    feature_cache_seconds: float = Field(
        300.0, ge=0,
        description="how long find_feature reuses the feature list it paged through (names "
        "to features, in memory); 0 pages through the features on every call",
    )
    http: HttpSettings = HttpSettings()

    @field_validator("token")
    @classmethod
    def _token_not_blank(cls, value: SecretStr) -> SecretStr:
        # Never quote the value: messages end up in logs and `validate` output.
        if not value.get_secret_value().strip():
            raise ValueError("token is empty or blank (is its environment variable set but "
                             "empty?)")
        if any(ch.isspace() for ch in value.get_secret_value().strip()):
            raise ValueError("token contains whitespace; paste the access token alone")
        return SecretStr(value.get_secret_value().strip())

    @field_validator("base_url")
    @classmethod
    def _origin_only(cls, value: str) -> str:
        value = _https_url(value)
        parts = urlsplit(value)
        if parts.path or parts.query or parts.fragment:
            raise ValueError("give the API origin only (e.g. https://api.productboard.com), "
                             "without a path: the connector adds /v2/...")
        return value

    @field_validator("source_system")
    @classmethod
    def _system(cls, value: str) -> str:
        if not SOURCE_SYSTEM.match(value):
            raise ValueError("1-64 letters, digits, '.', '_' or '-', starting with a letter or "
                             "digit")
        return value
