"""Switchboard's command line. Parses, loads config, calls into the packages — nothing more.

    switchboard demo     [--config config.yaml] [--serve]   the sample, end to end, on the sandbox
    switchboard run      [--config config.yaml]             the hub, until SIGINT / SIGTERM
    switchboard validate [--config config.yaml] [--strict]  every config / rule problem, and lints
    switchboard test RULES EVENT.json [--config ...]        rules against one event, explained
    switchboard explain TICKET_ID [--config ...]            the decision log of one ticket
    switchboard backtest (--export FILE | --since DATE)      the rules over history, read-only
    switchboard diff OLD NEW (--export FILE | --since DATE)  decisions two rule sets disagree on
    switchboard report [--since 7d] [--until DATE] [--out DIR] [--post]  the trend report

Exit status: 0 success (`validate`: valid, even with lint warnings), 1 invalid config or rules
(or, with `validate --strict`, any lint warning; or no events to explain), 2 usage error or
invalid event file (`test`), 3 failed to start.
`backtest`: 0 done, 1 invalid rules, 2 bad input (unreadable, empty or non-JSON export, bad
--since), 4 the history could not be read to the end (results partial, marked INCOMPLETE).
`diff`: 0 done, 1 only with --exit-code when a decision changed (as `git diff --exit-code`),
2 bad input (a side or the config that cannot be loaded, or as for backtest), 4 incomplete.
`report`: 0 written (and, with --post, posted or found already posted), 1 invalid config,
2 bad --since / --until (or --post without report.slack_channel), 3 the store cannot be read or
the files cannot be written, 4 the files are written but the Slack post failed (the error says
why: auth, not_in_channel, rate limited...).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path

DEFAULT_CONFIG = "config.yaml"


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not verbose:
        # httpx2 (under the pagerduty client) logs every request at INFO; our connectors log
        # one line per call themselves (switchboard.http, shown with --verbose).
        for noisy in ("switchboard.http", "apscheduler", "alembic", "uvicorn",
                      "httpx2", "httpcore2", "httpx", "httpcore"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


def _load(path: str):  # type: ignore[no-untyped-def]
    from rules.source import ProblemsError
    from sync.config import load_config

    try:
        return load_config(path)
    except ProblemsError as exc:
        print(exc.render(), file=sys.stderr)
        raise SystemExit(1) from None


def cmd_validate(args: argparse.Namespace) -> int:
    from rules.lints import lint

    config = _load(args.config)
    rules = config.rules.rules
    zendesk = config.app.connectors.zendesk
    warnings = lint(config.rules, custom_fields=tuple(zendesk.custom_fields),
                    user_fields=tuple(zendesk.user_fields),
                    organization_fields=tuple(zendesk.organization_fields))
    for warning in warnings:
        print(warning, file=sys.stderr)
    print(f"{args.config}: OK — {len(rules)} rule(s): "
          + ", ".join(f"{r.id} ({r.mode})" for r in rules))
    if warnings:
        print(f"{len(warnings)} warning(s){' (--strict: exit 1)' if args.strict else ''}",
              file=sys.stderr)
    return 1 if warnings and args.strict else 0


def cmd_test(args: argparse.Namespace) -> int:
    from rules import ProblemsError, load_rule_files
    from rules.tester import EventFileError, load_event, render_report, run_test

    config = _load(args.config)
    zendesk = config.app.connectors.zendesk
    fields = {"custom_fields": tuple(zendesk.custom_fields), "user_fields": zendesk.user_fields,
              "organization_fields": zendesk.organization_fields}
    if not Path(args.rules).exists():
        print(f"{args.rules}: no such rules file or directory", file=sys.stderr)
        return 1
    try:
        if Path(args.rules).resolve() == config.path:
            rules = config.rules  # the config's own rules (its rules: and rules_dir)
        else:
            rules = load_rule_files([args.rules], **fields)
    except ProblemsError as exc:
        print(exc.render(), file=sys.stderr)
        return 1
    try:
        ctx = load_event(args.event, **fields)
    except EventFileError as exc:
        print(exc.render(), file=sys.stderr)
        return 2
    print(render_report(run_test(rules, ctx)))
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from sync.explain import StoreUnavailableError, explain_ticket, render_history

    config = _load(args.config)
    url = config.store_url()
    if args.store:
        url = args.store if "://" in args.store else f"sqlite:///{Path(args.store).resolve()}"
    try:
        history = explain_ticket(url, args.ticket_id)
    except StoreUnavailableError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    if not history:
        print(f"ticket {args.ticket_id}: no events in the decision log of {url}",
              file=sys.stderr)
        return 1
    print(render_history(args.ticket_id, history))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from sync.hub import Hub

    _configure_logging(args.verbose)
    config = _load(args.config)
    if config.app.sandbox.enabled:
        from sandbox.demo import run_with_sandbox

        return run_with_sandbox(config, feed_sample=False, serve=True)
    hub = Hub(config)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    def reload_rules(*_: object) -> None:
        # In a thread, not in the handler: a reload reads files and may wait for a running check.
        threading.Thread(target=hub.reload_rules, name="sighup-reload", daemon=True).start()

    signal.signal(signal.SIGHUP, reload_rules)
    try:
        hub.start()
    except Exception as exc:
        logging.getLogger("switchboard").error("failed to start: %s", exc)
        return 3
    print(f"Switchboard listening on {hub.url} (webhooks: {hub.url}/webhooks/zendesk)",
          flush=True)
    stop.wait()
    hub.stop()
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from sandbox.demo import run_with_sandbox

    _configure_logging(args.verbose)
    config = _load(args.config)
    return run_with_sandbox(config, feed_sample=True, serve=args.serve)


def _history_options(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from sync.backtest.command import HistoryOptions

    return HistoryOptions(export=args.export, since=args.since, temp_dir=args.temp_dir,
                          progress=sys.stderr.isatty() and not args.no_progress)


def cmd_backtest(args: argparse.Namespace) -> int:
    from sync.backtest.command import run_backtest

    config = _load(args.config)
    return run_backtest(config, _history_options(args), rules_spec=args.rules,
                        report=args.report, csv_path=args.csv)


def cmd_diff(args: argparse.Namespace) -> int:
    from rules.source import ProblemsError
    from sync.backtest.command import EXIT_BAD_INPUT, run_diff
    from sync.config import load_config

    try:  # not _load: exit 1 means "decisions changed" here
        config = load_config(args.config)
    except ProblemsError as exc:
        print(exc.render(), file=sys.stderr)
        return EXIT_BAD_INPUT
    return run_diff(config, _history_options(args), old=args.old, new=args.new,
                    report=args.report, csv_path=args.csv, limit=args.limit,
                    exit_code=args.exit_code)


def cmd_report(args: argparse.Namespace) -> int:
    from sync.report.command import run_report

    config = _load(args.config)
    return run_report(config, since=args.since, until=args.until, out=args.out, post=args.post)


def _history_arguments(p: argparse.ArgumentParser) -> None:
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--export", metavar="FILE",
                        help="a Zendesk ticket export: JSONL (one ticket per line) or JSON "
                        "(an array, or {\"tickets\": [...]})")
    source.add_argument("--since", metavar="DATE",
                        help="read Zendesk's incremental export from DATE (2026-01-31, "
                        "2026-01-31T08:00:00Z or unix seconds) through connectors.zendesk")
    p.add_argument("--report", metavar="PATH.md", help="write the report as Markdown")
    p.add_argument("--csv", metavar="PATH.csv", help="write the figures (backtest: one row per "
                   "rule; diff: one row per changed decision) as CSV")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar (there is none anyway when stderr is not a terminal)")
    p.add_argument("--temp-dir", metavar="DIR",
                   help="where the per-ticket state file goes (default: the system temp dir)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="switchboard", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, func, help_text in (
        ("demo", cmd_demo, "run the shipped sample end to end against the local sandbox"),
        ("run", cmd_run, "run the hub (receiver, poller, workers) until stopped"),
        ("validate", cmd_validate, "check a config and its rules; list every problem, then "
         "lint warnings (loops, never-true conditions, duplicate side effects)"),
        ("test", cmd_test, "evaluate rules against one event file and explain each decision "
         "(exit 1 bad rules, 2 bad event file)"),
        ("explain", cmd_explain, "why rules did or did not fire for a ticket, from the "
         "decision log (read-only)"),
        ("backtest", cmd_backtest, "run the rules over history (an export file or Zendesk's "
         "incremental export), read-only; a table per rule and report files"),
        ("diff", cmd_diff, "run two rule sets (files, directories or git:REV) over the same "
         "history and list the decisions that change"),
        ("report", cmd_report, "the trend report from the store (Markdown, HTML, PNG charts); "
         "--post sends the summary and the main chart to report.slack_channel"),
    ):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--config", default=DEFAULT_CONFIG,
                       help="config file (default: %(default)s)")
        p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
        p.set_defaults(func=func)
        if name == "validate":
            p.add_argument("--strict", action="store_true",
                           help="exit 1 on lint warnings too, not only on errors")
        if name == "test":
            p.add_argument("rules", metavar="RULES",
                           help="a rules YAML file, or a directory of them")
            p.add_argument("event", metavar="EVENT.json",
                           help="one event (format: docs/tools.md)")
        if name == "explain":
            p.add_argument("ticket_id", metavar="TICKET_ID", type=int,
                           help="the Zendesk ticket number")
            p.add_argument("--store", help="another store: a SQLite file or SQLAlchemy URL "
                           "(e.g. var/demo.db after `switchboard demo`)")
        if name == "backtest":
            _history_arguments(p)
            p.add_argument("--rules", metavar="RULES",
                           help="rules to run instead of the config's: a file, a directory, "
                           "git:REV or git:REV:PATH (as for diff)")
        if name == "diff":
            p.add_argument("old", metavar="OLD", help="rules before: a rules file or "
                           "directory, a config file, git:REV (the config's rules at REV) or "
                           "git:REV:PATH")
            p.add_argument("new", metavar="NEW", help="rules after, written like OLD")
            _history_arguments(p)
            p.add_argument("--limit", type=int, default=20, metavar="N",
                           help="changed decisions printed (default %(default)s; --csv has all)")
            p.add_argument("--exit-code", action="store_true",
                           help="exit 1 when any decision changed, like git diff --exit-code")
            p.set_defaults(config_error_status=2)
        if name == "report":
            p.add_argument("--since", metavar="SPAN|DATE",
                           help="the period: a duration back from --until (90m, 24h, 7d, 2w) or "
                           "a date (default: report.since)")
            p.add_argument("--until", metavar="DATE",
                           help="end of the period, exclusive: 2026-11-30 (midnight) or "
                           "2026-11-30T09:00 in report.timezone, or with an offset (default: "
                           "the start of the current hour)")
            p.add_argument("--out", metavar="DIR",
                           help="directory for the files (default: report.out_dir)")
            p.add_argument("--post", action="store_true",
                           help="post the summary and the main chart to report.slack_channel "
                           "(once per period: a second run finds the first post)")
        if name == "demo":
            p.add_argument("--serve", action="store_true",
                           help="keep the hub and sandbox running after the sample")
    return parser


def cli(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if not Path(args.config).exists():
        print(f"{args.config}: no such config file", file=sys.stderr)
        raise SystemExit(getattr(args, "config_error_status", 1))
    raise SystemExit(args.func(args))


if __name__ == "__main__":
    cli()
