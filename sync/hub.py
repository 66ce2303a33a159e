"""The hub: store, connectors, receiver, scheduler and workers, started and stopped together.

A child process serves the webhook receiver (``sync.receiver``: it shares only the store, so
acknowledging webhooks never waits for the workers' GIL). In the hub process: inbox workers turn
events into decisions and intents; a pool of dispatcher workers per vendor executes intents;
APScheduler runs the pollers (Zendesk's export; the Jira issues tickets are linked to), the SLA
watch (``sync.sla``), the lease heartbeat and the rules reload check (never overlapping:
``max_instances=1``, ``coalesce=True``) and, when ``report.enabled``, the trend report on its
cron schedule in its time zone (``sync.report``).
Workers sleep on an event that the receiver (through a
pipe) and the poller set when new work arrives, so an accepted webhook is acted on at once.
"""

from __future__ import annotations

__all__ = ["Hub"]

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from typing import Any

import sqlalchemy as sa
from apscheduler.schedulers.background import BackgroundScheduler

from connectors.http import RateLimiter
from connectors.jira import JiraConnector
from connectors.pagerduty import PagerDutyConnector
from connectors.productboard import ProductboardConnector
from connectors.slack import SlackConnector
from connectors.zendesk import ZendeskConnector
from sync import inbox, leases, outbox
from sync.config import LoadedConfig
from sync.dispatcher import Dispatcher
from sync.handlers import HANDLERS, VENDOR_OF
from sync.jira_poller import JiraPoller
from sync.poller import ZendeskPoller
from sync.processor import EventProcessor
from sync.productboard_events import ProductboardPoller
from sync.receiver import ReceiverProcess
from sync.reload import ReloadOutcome, RulesReloader
from sync.retry import RetryPolicy
from sync.rulestate import enqueue_quiet_ticks
from sync.schema import inbox as inbox_table
from sync.schema import outbox as outbox_table
from sync.sla import ScanResult, SlaWatch
from sync.store import Store, utcnow

log = logging.getLogger("switchboard.hub")
#: How often open window episodes are checked for the end of their quiet period.
WINDOW_SWEEP_SECONDS = 5.0


class Hub:
    """One running Switchboard. ``start()`` returns once the receiver is listening.

    ``source`` is the config as read from its file when ``config`` was derived from it (the
    sandbox points the connectors and the store elsewhere): rules reloads compare the file's other
    settings with it, so that only real edits are reported as needing a restart.
    """

    def __init__(self, config: LoadedConfig, *, zendesk: Any = None, jira: Any = None,
                 pagerduty: Any = None, slack: Any = None, productboard: Any = None,
                 source: LoadedConfig | None = None) -> None:
        self.config = config
        app = config.app
        self.store = Store(config.store_url())
        zd, jr = app.connectors.zendesk, app.connectors.jira
        self.zendesk = zendesk or ZendeskConnector(
            zd, limiter=RateLimiter(zd.requests_per_minute),
            include_slas=app.sla.enabled and app.sla.zendesk_slas)
        self.jira = jira or JiraConnector(jr, limiter=RateLimiter(jr.requests_per_minute))
        pd, sl = app.connectors.pagerduty, app.connectors.slack
        self.pagerduty = pagerduty or (PagerDutyConnector(pd) if pd is not None else None)
        self.slack = slack or (SlackConnector(sl) if sl is not None else None)
        pb = app.connectors.productboard
        self.productboard = productboard or (
            ProductboardConnector(pb) if pb is not None else None)
        backoff = {"base": app.dispatcher.backoff_base_seconds,
                   "cap": app.dispatcher.backoff_max_seconds}
        self.processor = EventProcessor(
            self.store, config.rules, self.zendesk, custom_fields=tuple(zd.custom_fields),
            user_fields=zd.user_fields, organization_fields=zd.organization_fields,
            jira=self.jira, retry=RetryPolicy(app.inbox.max_attempts, **backoff), sla=app.sla)
        self.dispatcher = Dispatcher(
            self.store, HANDLERS, zendesk=self.zendesk, jira=self.jira,
            jira_search_lag=jr.search_lag_seconds,
            retry=RetryPolicy(app.dispatcher.max_attempts, **backoff),
            lease_seconds=app.dispatcher.lease_seconds, pagerduty=self.pagerduty,
            slack=self.slack, productboard=self.productboard)
        self.jira_poller = JiraPoller(self.store, self.jira, app.jira_poller)
        self.productboard_poller = ProductboardPoller(
            self.store, self.productboard, app.productboard_poller, on_events=self._wake_inbox)
        self.poller = ZendeskPoller(self.store, self.zendesk, app.poller,
                                    on_events=self._wake_inbox)
        self.sla_watch = SlaWatch(self.store, app.sla, self.zendesk, on_events=self._wake_inbox)
        self.reloader = RulesReloader(source or config, self._apply_rules)
        self._stop = threading.Event()
        self._inbox_wake = threading.Event()
        self._outbox_wake = threading.Event()
        self._threads: list[threading.Thread] = []
        self._scheduler: BackgroundScheduler | None = None
        self._receiver: ReceiverProcess | None = None
        self._tracker = leases.Tracker()
        self.port: int | None = None
        self._id = uuid.uuid4().hex[:8]

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        app = self.config.app
        self.store.open()
        if self.store.single_process:
            # This process holds the store's lock: leases left by a killed predecessor are stale.
            freed = leases.free_all(self.store, inbox_table) + \
                leases.free_all(self.store, outbox_table)
            if freed:
                log.info("recovered %s leased item(s) from a previous run", freed)
        self._start_receiver()
        for n in range(app.inbox.workers):
            self._spawn(f"inbox-{n}", self._inbox_step, self._inbox_wake)
        # One pool of dispatcher workers per vendor: a vendor whose rate limit makes its calls
        # wait (Zendesk's 100 updates a minute) does not hold up another vendor's work.
        for vendor in sorted(set(VENDOR_OF.values())):
            actions = frozenset(a for a, v in VENDOR_OF.items() if v == vendor)
            for n in range(app.dispatcher.workers):
                self._spawn(f"dispatch-{vendor}-{n}", partial(self._outbox_step, actions),
                            self._outbox_wake)
        self._scheduler = BackgroundScheduler(timezone=UTC)
        # Leases are renewed well before they expire, for as long as this hub lives.
        self._scheduler.add_job(self._heartbeat, "interval", id="lease-heartbeat",
                                seconds=self._lease_seconds() / 3, max_instances=1,
                                coalesce=True)
        # Window episodes end after their quiet period even when no event arrives to notice.
        self._scheduler.add_job(self._window_job, "interval", id="window-quiet",
                                seconds=WINDOW_SWEEP_SECONDS, max_instances=1, coalesce=True)
        if app.poller.enabled:
            self._scheduler.add_job(self._poll_job, "interval", id="zendesk-poll",
                                    seconds=app.poller.interval_seconds, max_instances=1,
                                    coalesce=True, next_run_time=datetime.now(UTC))
        if app.jira_poller.enabled:
            self._scheduler.add_job(self._jira_poll_job, "interval", id="jira-poll",
                                    seconds=app.jira_poller.interval_seconds, max_instances=1,
                                    coalesce=True)
        if app.sla.enabled:
            # SLA targets are watched at minute granularity (Zendesk's automations run hourly).
            self._scheduler.add_job(self._sla_job, "interval", id="sla-watch",
                                    seconds=app.sla.scan_interval_seconds, max_instances=1,
                                    coalesce=True)
        if app.productboard_poller.enabled and self.productboard is not None:
            self._scheduler.add_job(self._productboard_poll_job, "interval",
                                    id="productboard-poll",
                                    seconds=app.productboard_poller.interval_seconds,
                                    max_instances=1, coalesce=True)
        if app.rules_reload_seconds > 0:
            self._scheduler.add_job(self._reload_job, "interval", id="rules-reload",
                                    seconds=app.rules_reload_seconds, max_instances=1,
                                    coalesce=True)
        if app.report.enabled:
            from sync.report.command import schedule_report  # matplotlib: only when used

            schedule_report(self._scheduler, app.report, self._report_job)
        self._scheduler.start()
        log.info("hub %s listening on http://%s:%s", self._id, app.receiver.host, self.port)
        log.info("rules revision %s (%s rules); %s", self.reloader.revision,
                 len(self.config.rules),
                 f"rule files checked for changes every {app.rules_reload_seconds:g}s"
                 if app.rules_reload_seconds > 0 else "rule files not watched")

    def stop(self) -> None:
        if self._receiver is not None:
            self._receiver.stop()  # no new events; in-flight webhooks are answered first
        self._stop.set()
        self._inbox_wake.set()
        self._outbox_wake.set()
        for thread in self._threads:  # workers finish what they hold, leases still renewed
            thread.join(timeout=30)
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)
        if self.pagerduty is not None and hasattr(self.pagerduty, "close"):
            self.pagerduty.close()  # its HTTP clients' pooled TLS connections
        if self.productboard is not None and hasattr(self.productboard, "close"):
            self.productboard.close()
        self.store.close()

    def _start_receiver(self) -> None:
        self._receiver = ReceiverProcess(
            self.config.app.receiver, self.config.store_url(),
            self.config.app.connectors.zendesk.custom_fields, on_events=self._wake_inbox)
        self.port = self._receiver.start()

    @property
    def url(self) -> str:
        return f"http://{self.config.app.receiver.host}:{self.port}"

    # -- workers ------------------------------------------------------------------------------

    def _wake_inbox(self) -> None:
        self._inbox_wake.set()

    def _spawn(self, name: str, step: Callable[[str], int], wake: threading.Event) -> None:
        worker = f"{self._id}/{name}"

        def loop() -> None:
            while not self._stop.is_set():
                try:
                    done = step(worker)
                except Exception:
                    log.exception("worker %s failed; continuing", worker)
                    done = 0
                if not done:
                    wake.wait(0.5)
                    wake.clear()

        thread = threading.Thread(target=loop, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _inbox_step(self, worker: str) -> int:
        settings = self.config.app.inbox
        items = inbox.acquire(self.store, worker, settings.batch, settings.lease_seconds)
        for item in items:
            with self._tracker.holding(inbox_table, item.id):
                self.processor.process(item)
        if items:
            self._outbox_wake.set()
        return len(items)

    def _outbox_step(self, actions: frozenset[str], worker: str) -> int:
        app = self.config.app
        items = outbox.acquire(self.store, worker, 1, app.dispatcher.lease_seconds, actions)
        for item in items:
            with self._tracker.holding(outbox_table, item.id):
                self.dispatcher.execute(item)
        if items:
            self._outbox_wake.set()  # a finished intent may unblock its dependants
        return len(items)

    def _lease_seconds(self) -> float:
        app = self.config.app
        return min(app.inbox.lease_seconds, app.dispatcher.lease_seconds)

    def _heartbeat(self) -> None:
        try:
            for table, seconds in ((inbox_table, self.config.app.inbox.lease_seconds),
                                   (outbox_table, self.config.app.dispatcher.lease_seconds)):
                leases.renew(self.store, table, self._tracker.rows(table), self._id, seconds)
        except Exception:
            log.exception("lease heartbeat failed; leases expire unless the next one succeeds")
        try:
            self.store.checkpoint()  # the receiver leaves WAL checkpoints to the hub
        except Exception:
            log.exception("WAL checkpoint failed; the next heartbeat tries again")

    def _window_job(self) -> None:
        try:
            if enqueue_quiet_ticks(self.store, self.processor.rules, utcnow()):
                self._wake_inbox()
        except Exception:
            log.exception("window quiet check failed; the next run tries again")

    def _poll_job(self) -> None:
        try:
            self.poller.poll()
        except Exception:
            log.exception("zendesk poll failed; the next run retries from the saved cursor")

    def _jira_poll_job(self) -> None:
        try:
            if self.jira_poller.poll():
                self._wake_inbox()
        except Exception:
            log.exception("jira poll failed; the next run retries from the saved time")

    def _productboard_poll_job(self) -> None:
        try:
            self.productboard_poller.poll()
        except Exception:
            log.exception("productboard poll failed; the next run checks again")

    def poll_productboard_now(self) -> int:
        """Check the features tickets' notes are linked to, in the caller's thread; returns
        how many status changes it stored (tests, demo)."""
        return self.productboard_poller.poll()

    def _sla_job(self) -> None:
        try:
            self.sla_watch.scan()
        except Exception:
            log.exception("sla scan failed; the next run scans again")

    def scan_sla_now(self, now: datetime | None = None) -> ScanResult:
        """Run one SLA scan in the caller's thread (tests, demo) at ``now`` (default: the
        watch's clock); its events are in the inbox when it returns."""
        return self.sla_watch.scan(now)

    def _report_job(self) -> None:
        try:
            self.run_report_now()
        except Exception:
            log.exception("trend report failed; the next scheduled run tries again")

    def run_report_now(self, now: datetime | None = None) -> Any:
        """Run the scheduled trend report once in the caller's thread (tests, demo) as of
        ``now`` (default: the clock): the files in ``report.out_dir``, the post to
        ``report.slack_channel``; returns the files written."""
        from sync.report.command import run_scheduled

        return run_scheduled(self.config, self.slack, now=now)

    def next_report_time(self) -> datetime | None:
        """When the scheduled trend report runs next (None: not scheduled or not started)."""
        from sync.report.command import REPORT_JOB_ID

        job = self._scheduler.get_job(REPORT_JOB_ID) if self._scheduler is not None else None
        return None if job is None else job.next_run_time

    def poll_jira_now(self) -> int:
        """Run one Jira reconciliation poll in the caller's thread (tests); events stored."""
        stored = self.jira_poller.poll()
        if stored:
            self._wake_inbox()
        return stored

    # -- rules reload -------------------------------------------------------------------------

    def reload_rules(self) -> ReloadOutcome:
        """Load the rules again now (SIGHUP). Invalid rules are logged, the last good ones stay."""
        return self.reloader.reload()

    def _reload_job(self) -> None:
        try:
            self.reloader.check()
        except Exception:
            log.exception("rules reload check failed; the rules in force stay")

    def _apply_rules(self, new: LoadedConfig) -> None:
        # One assignment, never a mutation: a RuleSet is frozen, and an event whose rule loop
        # has begun finishes it over the RuleSet it took.
        self.processor.rules = new.rules
        self.config = replace(self.config, rules=new.rules)

    def poll_now(self) -> None:
        """Run one poll in the caller's thread (demo, tests)."""
        self.poller.poll()

    # -- observation --------------------------------------------------------------------------

    def pending_work(self) -> int:
        """Inbox events and outbox intents not yet finished (including ones waiting to retry)."""
        with self.store.read() as conn:
            pending_in = conn.execute(sa.select(sa.func.count()).select_from(inbox_table)
                                      .where(inbox_table.c.status == "pending")).scalar_one()
            pending_out = conn.execute(sa.select(sa.func.count()).select_from(outbox_table)
                                       .where(outbox_table.c.status == "pending")).scalar_one()
        return int(pending_in) + int(pending_out)

    def wait_idle(self, timeout: float, *, settle: float = 0.3) -> bool:
        """Block until no work is pending (seen twice, ``settle`` apart); False on timeout."""
        deadline = utcnow().timestamp() + timeout
        quiet = 0
        while utcnow().timestamp() < deadline:
            if self.pending_work() == 0:
                quiet += 1
                if quiet >= 2:
                    return True
            else:
                quiet = 0
            self._stop.wait(settle)
        return False
