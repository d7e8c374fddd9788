"""`cdp dedupe`: the warehouse side of identity resolution by hand (`run | review | unmerge`), and the CSV
mode (`cdp dedupe --input … --output … --columns …`, in `cdp.identity.resolve`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

from cdp.identity import review, runs
from cdp.identity.errors import DedupeError
from cdp.identity.merges import unmerge
from cdp.identity.resolve import main as csv_main
from cdp.warehouse import Actor, WarehouseNotConfigured, connect, resolve_url

ACTIONS = ("run", "review", "unmerge")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cdp dedupe", description="Identity resolution in the warehouse: runs, the review queue, undo."
    )
    actions = parser.add_subparsers(dest="action", required=True)
    run = actions.add_parser("run", help="find duplicates among the people in the warehouse")
    run.add_argument("--full", action="store_true", help="compare everyone, not only new or changed people")
    run.add_argument("--run-id", help="identifier of the run (default: manual__<UTC time>)")
    review = actions.add_parser("review", help="list the review queue, or record a decision")
    review.add_argument("--limit", type=int, default=20, help="pairs to list (default 20)")
    review.add_argument("--decide", type=int, metavar="PAIR_ID", help="record a decision for this pair")
    review.add_argument("decision", nargs="?", choices=["same", "different"], help="with --decide")
    review.add_argument("--reviewer", help="who decides (required with --decide)")
    review.add_argument("--note", help="why (optional)")
    unmerge = actions.add_parser("unmerge", help="undo one merge exactly")
    unmerge.add_argument("merge_id", type=int)
    unmerge.add_argument("--reason", help="why it is undone (kept in the audit event)")
    return parser


def _print_queue(rows: list[dict]) -> None:
    if not rows:
        print("the review queue is empty")
        return
    fields = ("given_name", "family_name", "date_of_birth", "email", "phone", "sources")
    for row in rows:
        print(
            f"pair {row['pair_id']}  score {row['score']:.3f}  {row['class']}  {row['guard'] or ''}".rstrip()
        )
        for field in fields:
            left, right = row[f"left_{field}"], row[f"right_{field}"]
            mark = "=" if left == right and left is not None else "≠"
            print(f"    {field:<14} {left!s:<32} {mark} {right!s}")
    print(
        f"{len(rows)} pairs shown; decide with: cdp dedupe review --decide PAIR_ID same|different --reviewer NAME"
    )


def run(args: argparse.Namespace) -> int:
    actor = Actor("cli:dedupe")
    url = resolve_url()
    try:
        if args.action == "run":
            run_id = args.run_id or f"manual__{datetime.now(UTC):%Y%m%dT%H%M%S}"
            report = runs.run_dedupe(url, actor, run_id, full=args.full)
            print(report.summary())
            return 4 if report.rate_spike else 0
        if args.action == "unmerge":
            print(unmerge(url, actor, args.merge_id, reason=args.reason).summary())
            return 0
        if args.decide is not None:
            if args.decision is None or not args.reviewer:
                print("error: --decide PAIR_ID needs same|different and --reviewer NAME", file=sys.stderr)
                return 2
            decision_id = review.decide(
                url, Actor(f"reviewer:{args.reviewer}"), args.decide, args.decision, args.reviewer, args.note
            )
            follow_up = "merged by the next dedupe run" if args.decision == "same" else "never proposed again"
            print(f"decision {decision_id} recorded for pair {args.decide}: {args.decision} ({follow_up})")
            return 0
        with connect(url, actor) as conn:
            _print_queue(review.review_queue(conn, args.limit))
        return 0
    except DedupeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


def main(argv: Sequence[str] | None = None) -> int:
    """`cdp dedupe …`: the warehouse actions here, anything else is the CSV mode."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not (argv[:1] and argv[0] in ACTIONS):
        return csv_main(argv)
    try:
        return run(build_parser().parse_args(argv))
    except WarehouseNotConfigured as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
