"""Run the sandbox standalone: ``python -m sandbox --zendesk-port 8101 --jira-port 8102``.

Serves both stand-ins until Ctrl-C, printing their URLs, so a hub started by hand (or the demo)
can talk to them.
"""

from __future__ import annotations

import argparse
import threading

from sandbox.server import Sandbox


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, serve until interrupted, return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("--zendesk-port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--jira-port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--pagerduty-port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--slack-port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--productboard-port", type=int, default=0,
                        help="0 picks a free port")
    parser.add_argument("--jira-project", action="append", default=None,
                        help="Jira project key (repeatable; default SUP)")
    parser.add_argument("--jira-search-lag", type=float, default=0.0)
    parser.add_argument("--zendesk-subdomain", default="sandbox")
    args = parser.parse_args(argv)
    sandbox = Sandbox(
        jira_search_lag=args.jira_search_lag,
        jira_projects=tuple(args.jira_project or ["SUP"]),
        zendesk_subdomain=args.zendesk_subdomain,
        zendesk_port=args.zendesk_port,
        jira_port=args.jira_port,
        pagerduty_port=args.pagerduty_port,
        slack_port=args.slack_port,
        productboard_port=args.productboard_port,
    )
    with sandbox:
        print(f"zendesk: {sandbox.zendesk_url}  (ZENPY_FORCE_SCHEME=http "
              f"ZENPY_FORCE_NETLOC={sandbox.zendesk_netloc})", flush=True)
        print(f"jira:    {sandbox.jira_url}", flush=True)
        print(f"pagerduty: {sandbox.pagerduty_url}  (https; http.verify_tls: "
              f"{sandbox.ca_bundle})", flush=True)
        print(f"slack:   {sandbox.slack_url}", flush=True)
        print(f"productboard: {sandbox.productboard_url}", flush=True)
        print("Ctrl-C to stop.", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print("stopping", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
