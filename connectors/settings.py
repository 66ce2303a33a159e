"""Settings models of the connectors, as they appear under ``connectors:`` in ``config.yaml``.

Models are frozen and forbid unknown keys, so a typo is an error at load time rather than a
silently ignored setting. Secrets are :class:`pydantic.SecretStr`: their value never appears in a
``repr``, a log line or an error message. ``${ENV_VAR}`` references are resolved by the config
loader (``sync.config``) before these models see the values.
"""

from __future__ import annotations

__all__ = ["HttpSettings", "JiraSettings", "ZendeskSettings"]

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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


class ZendeskSettings(_Model):
    """A Zendesk Support account, reached through zenpy with an API token."""

    subdomain: str = Field(min_length=1, description="the <subdomain> of <subdomain>.zendesk.com")
    email: str = Field(min_length=3, description="agent/admin email the API token belongs to")
    api_token: SecretStr
    base_url: str | None = Field(
        None,
        description="override https://<subdomain>.zendesk.com (the sandbox uses this); "
        "scheme://host[:port], no path",
    )
    custom_fields: dict[str, int] = Field(
        default_factory=dict,
        description="custom ticket fields by the name rules use -> Zendesk field id",
    )
    requests_per_minute: int = Field(
        100, gt=0,
        description="ceiling for this connector's calls (Zendesk ticket updates: 100/min)",
    )
    http: HttpSettings = HttpSettings()

    @field_validator("base_url")
    @classmethod
    def _no_trailing_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value


class JiraSettings(_Model):
    """A Jira Cloud site, reached through the ``jira`` client with an API token."""

    url: str = Field(min_length=1, description="https://<site>.atlassian.net")
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
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")
