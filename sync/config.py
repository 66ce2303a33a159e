"""Loading ``config.yaml`` into frozen, validated settings — every problem reported at once.

- The file is parsed with positions (``rules.source.load_yaml``), so each problem names its
  ``file:line`` and path.
- ``${ENV_VAR}`` (or ``${ENV_VAR:-default}``) anywhere in a string is replaced from the
  environment before validation; an unset variable without a default is a problem naming the
  variable, never its would-be value. Secrets end up as ``SecretStr``.
- The environment can also override any setting, pydantic-settings style:
  ``SWITCHBOARD_RECEIVER__PORT=9000`` beats ``receiver.port`` in the file.
- Rules come from the file's ``rules:`` list and/or the YAML files of ``rules_dir`` (relative to
  the config file); they are validated by ``rules.load_rules`` with the configured custom fields.
"""

from __future__ import annotations

__all__ = [
    "AppConfig",
    "DispatcherSettings",
    "InboxSettings",
    "LoadedConfig",
    "PollerSettings",
    "ReceiverSettings",
    "SandboxSettings",
    "StoreSettings",
    "load_config",
]

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from connectors.settings import (
    JiraSettings,
    PagerDutySettings,
    ProductboardSettings,
    SlackSettings,
    ZendeskSettings,
)
from rules import RuleSet, load_rules
from rules.source import Positions, Problem, ProblemsError, load_yaml
from sync.report.settings import ReportSettings, report_problems
from sync.sla_config import SlaSettings, sla_problems

ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")

#: Shortest signing secret accepted: Zendesk's own are far longer, and a short or empty HMAC key
#: lets anyone who guesses it sign webhooks.
MIN_SIGNING_SECRET_LENGTH = 16


def _strong_secret(value: SecretStr) -> SecretStr:
    # Messages never quote the value (nor its length): they end up in logs and `validate` output.
    text = value.get_secret_value().strip()
    if not text:
        raise ValueError("signing secret is empty or blank (is its environment variable set "
                         "but empty?); remove the entry to refuse every webhook instead")
    if len(text) < MIN_SIGNING_SECRET_LENGTH:
        raise ValueError(f"signing secret is shorter than {MIN_SIGNING_SECRET_LENGTH} characters; "
                         "use the secret the vendor shows for the webhook")
    return value


SigningSecret = Annotated[SecretStr, AfterValidator(_strong_secret)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StoreSettings(_Model):
    url: str = Field(
        "sqlite:///var/switchboard.db",
        description="SQLAlchemy URL; a relative SQLite path is relative to the config file",
    )


class ReceiverSettings(_Model):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535, description="0 picks a free port")
    max_body_bytes: int = Field(256 * 1024, gt=0)
    timestamp_tolerance_seconds: int = Field(
        300, gt=0, description="refuse signed webhooks whose timestamp is further off than this"
    )
    zendesk_signing_secrets: tuple[SigningSecret, ...] = Field(
        default=(),
        description="one per Zendesk webhook; any of them may sign a request; each at least "
        f"{MIN_SIGNING_SECRET_LENGTH} characters; empty = every webhook refused",
    )
    pagerduty_signing_secrets: tuple[SigningSecret, ...] = Field(
        default=(),
        description="PagerDuty webhook v3 subscription secrets (several while one is rotated); "
        "a request signed with any of them is accepted; empty = every PagerDuty webhook refused",
    )
    jira_signing_secrets: tuple[SigningSecret, ...] = Field(
        default=(),
        description="secrets of the Jira admin webhooks (X-Hub-Signature: sha256=...; several "
        "while one is rotated); a request signed with any of them is accepted; empty = every "
        "Jira webhook refused",
    )
    retry_after_seconds: int = Field(5, gt=0, description="Retry-After sent with a 503")


class PollerSettings(_Model):
    enabled: bool = True
    interval_seconds: float = Field(60.0, gt=0)
    backfill_start: int = Field(
        0,
        ge=0,
        description="unix time the first (backfill) poll starts from; it stores snapshots "
        "and fires no rules",
    )
    page_size: int = Field(1000, gt=0, le=1000)


class JiraPollerSettings(_Model):
    enabled: bool = True
    interval_seconds: float = Field(
        300.0, gt=0, description="how often the issues tickets are linked to are checked")
    overlap_seconds: float = Field(
        120.0, ge=0, description="each check looks this much further back than the last one")


class ProductboardPollerSettings(_Model):
    enabled: bool = True
    interval_seconds: float = Field(
        300.0, gt=0, description="how often the features tickets' notes are linked to are "
        "checked for a status change (one call per feature)")


class InboxSettings(_Model):
    workers: int = Field(1, ge=1, le=32)
    lease_seconds: float = Field(120.0, gt=0)
    batch: int = Field(20, ge=1, le=500)
    max_attempts: int = Field(10, ge=1)


class DispatcherSettings(_Model):
    workers: int = Field(2, ge=1, le=64, description="threads per vendor (Jira, Zendesk)")
    lease_seconds: float = Field(
        180.0, gt=0,
        description="an intent claimed by a hub that died is retried after this; a live hub "
        "renews its leases every lease/3 seconds, however long an action takes"
    )
    max_attempts: int = Field(8, ge=1)
    backoff_base_seconds: float = Field(2.0, gt=0)
    backoff_max_seconds: float = Field(600.0, gt=0)


class SandboxSettings(_Model):
    enabled: bool = Field(
        False,
        description="start local Zendesk and Jira stand-ins on free ports and point the "
        "connectors at them (demo and development only)",
    )
    jira_search_lag_seconds: float = Field(1.0, ge=0)
    webhook_secret: SecretStr = SecretStr("sandbox-webhook-secret")


class ConnectorsSettings(_Model):
    zendesk: ZendeskSettings
    jira: JiraSettings
    pagerduty: PagerDutySettings | None = None
    slack: SlackSettings | None = None
    productboard: ProductboardSettings | None = None


#: The connector each vendor's actions need (the Zendesk and Jira ones are always configured).
ACTION_CONNECTOR = {"pagerduty": "pagerduty", "slack": "slack", "productboard": "productboard"}


def _connector_problems(ruleset: RuleSet, app: AppConfig) -> list[Problem]:
    """A rule whose action needs a connector the config lacks, or a PagerDuty service it does
    not list, refuses to load (at the action's line), rather than dying at dispatch."""
    problems: list[Problem] = []
    pagerduty = app.connectors.pagerduty
    for rule in ruleset:
        for call in (*rule.actions, *rule.while_open, *rule.after_quiet):
            vendor = call.name.split(".", 1)[0]
            name = ACTION_CONNECTOR.get(vendor)
            if name is None:
                continue
            where = f"rule {rule.id}: {call.name}"
            if getattr(app.connectors, name) is None:
                problems.append(Problem(rule.file, call.line, "",
                                        f"{where} needs connectors.{name}, which is not "
                                        "configured", f"add connectors.{name} to the config"))
                continue
            service = call.params.get("service")
            if pagerduty is not None and call.name == "pagerduty.trigger":
                services = sorted(pagerduty.routing_keys)
                if service is None and pagerduty.default_service is None:
                    problems.append(Problem(rule.file, call.line, "",
                                            f"{where} names no service and "
                                            "connectors.pagerduty has no default_service",
                                            f"services: {', '.join(services)}"))
                elif service is not None and service not in pagerduty.routing_keys:
                    problems.append(Problem(rule.file, call.line, "",
                                            f"{where}: unknown service {service!r}",
                                            f"connectors.pagerduty.routing_keys has "
                                            f"{', '.join(services)}"))
    return problems


class AppConfig(BaseSettings):
    """Everything ``config.yaml`` can say, validated and frozen."""

    model_config = SettingsConfigDict(
        extra="forbid",
        frozen=True,
        hide_input_in_errors=True,  # a refused secret must not appear in str(ValidationError)
        env_prefix="SWITCHBOARD_",
        env_nested_delimiter="__",
        nested_model_default_partial_update=True,
    )

    store: StoreSettings = StoreSettings()
    receiver: ReceiverSettings = ReceiverSettings()
    poller: PollerSettings = PollerSettings()
    jira_poller: JiraPollerSettings = JiraPollerSettings()
    productboard_poller: ProductboardPollerSettings = ProductboardPollerSettings()
    inbox: InboxSettings = InboxSettings()
    dispatcher: DispatcherSettings = DispatcherSettings()
    sandbox: SandboxSettings = SandboxSettings()
    sla: SlaSettings = SlaSettings()
    connectors: ConnectorsSettings
    report: ReportSettings = ReportSettings()
    rules_dir: str | None = None
    rules_reload_seconds: float = Field(
        2.0, ge=0,
        description="how often a running hub looks for changed rule files (config file and "
        "rules_dir) and reloads them; 0 = only on SIGHUP",
    )
    rules: list[Any] = Field(default_factory=list)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment overrides the file (the file arrives as init kwargs).
        return (env_settings, init_settings)


@dataclass(frozen=True)
class LoadedConfig:
    """A validated config, its rules, and where it came from."""

    path: Path
    app: AppConfig
    rules: RuleSet

    def store_url(self) -> str:
        """The store URL with a relative SQLite path made relative to the config file."""
        url = self.app.store.url
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/"):
            rel = url[len(prefix):]
            if rel and rel != ":memory:":
                return prefix + str((self.path.parent / rel).resolve())
        return url


def _resolve_env(data: Any, path: tuple[str | int, ...], positions: Positions,
                 problems: list[Problem], env: dict[str, str]) -> Any:
    if isinstance(data, dict):
        return {k: _resolve_env(v, (*path, k), positions, problems, env) for k, v in data.items()}
    if isinstance(data, list):
        return [_resolve_env(v, (*path, i), positions, problems, env) for i, v in enumerate(data)]
    if isinstance(data, str) and "${" in data:
        def sub(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            problems.append(positions.problem(path, f"env {name} is not set",
                                              f"export {name}=... before starting"))
            return ""
        return ENV_REF.sub(sub, data)
    return data


def _pydantic_problems(exc: ValidationError, positions: Positions) -> list[Problem]:
    out = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = tuple(err["loc"])
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "unknown setting"
        elif err["type"] == "value_error":
            message = str(message).removeprefix("Value error, ")  # our validators' own words
        out.append(positions.problem(loc, message))
    return out


def _names(value: Any) -> set[str]:
    """The strings of a raw list setting (the config is invalid, but its rules still get checked
    against what it names)."""
    return {v for v in value if isinstance(v, str)} if isinstance(value, list) else set()


def load_config(path: str | Path, *, env: dict[str, str] | None = None) -> LoadedConfig:
    """Read, resolve and validate a config file and its rules.

    ``env`` (default: the process environment) resolves ``${VAR}`` references. Raises
    ``rules.source.ProblemsError`` listing every problem (config and rules) at once.
    """
    path = Path(path)
    environ = dict(os.environ if env is None else env)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProblemsError([Problem(str(path), None, "", f"cannot read: {exc.strerror}")]) from exc
    data, positions = load_yaml(text, str(path))
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ProblemsError([positions.problem((), "the config must be a mapping of settings")])
    problems: list[Problem] = []
    raw_rules = data.get("rules") or []
    settings_data = {k: v for k, v in data.items() if k != "rules"}
    resolved = _resolve_env(settings_data, (), positions, problems, environ)

    app: AppConfig | None = None
    try:
        app = AppConfig(**resolved, rules=raw_rules if isinstance(raw_rules, list) else [])
    except ValidationError as exc:
        problems.extend(_pydantic_problems(exc, positions))

    custom_fields: set[str] = set()
    user_fields: set[str] = set()
    organization_fields: set[str] = set()
    if app is not None:
        custom_fields = set(app.connectors.zendesk.custom_fields)
        user_fields = set(app.connectors.zendesk.user_fields)
        organization_fields = set(app.connectors.zendesk.organization_fields)
    else:
        zd = ((settings_data.get("connectors") or {}).get("zendesk") or {})
        if isinstance(zd, dict) and isinstance(zd.get("custom_fields"), dict):
            custom_fields = set(zd["custom_fields"])
        if isinstance(zd, dict):
            user_fields = _names(zd.get("user_fields"))
            organization_fields = _names(zd.get("organization_fields"))

    problems.extend(positions.problem(where, message, hint)
                    for where, message, hint in report_problems(resolved, custom_fields))

    ruleset: RuleSet | None = None
    sources: list[tuple[Any, Positions]] = []
    if raw_rules:
        sources.append(({"rules": raw_rules}, positions))
    rules_dir = settings_data.get("rules_dir")
    if isinstance(rules_dir, str) and rules_dir:
        directory = path.parent / rules_dir
        if directory.is_dir():
            for file in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
                try:
                    sources.append(load_yaml(file.read_text(encoding="utf-8"), str(file)))
                except ProblemsError as exc:
                    problems.extend(exc.problems)
                except (OSError, UnicodeDecodeError) as exc:  # a lock file, a binary, a race
                    problems.append(Problem(str(file), None, "",
                                            f"cannot read rule file: {exc}"))
        else:
            problems.append(positions.problem(("rules_dir",), f"not a directory: {directory}"))
    try:
        ruleset = load_rules(sources, custom_fields=custom_fields, user_fields=user_fields,
                             organization_fields=organization_fields)
    except ProblemsError as exc:
        problems.extend(exc.problems)

    if app is not None:
        problems.extend(sla_problems(app.sla, tuple(app.connectors.zendesk.organization_fields),
                                     positions))
    if app is not None and ruleset is not None:
        problems.extend(_connector_problems(ruleset, app))
    if problems or app is None or ruleset is None:
        raise ProblemsError(sorted(problems, key=lambda p: (p.file, p.line or 0)))
    return LoadedConfig(path=path.resolve(), app=app, rules=ruleset)
