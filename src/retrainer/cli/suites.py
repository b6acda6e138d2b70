"""`retrainer suite draft|check|docs`: work on a model's expectation suite."""

from __future__ import annotations

import argparse
from pathlib import Path


def cmd_suite_draft(args: argparse.Namespace) -> int:
    """`retrainer suite draft`: profile reference data into a draft expectation suite."""
    from retrainer.config import load_config
    from retrainer.steps import suites as suite_commands

    path = suite_commands.draft(load_config(args.config), [Path(p) for p in args.data],
                                Path(args.out) if args.out else None, args.force)
    print(f"drafted {path}: review it, adjust bounds and severities, and commit it")
    return 0


def cmd_suite_check(args: argparse.Namespace) -> int:
    """`retrainer suite check`: dry-run the suite on the last batches and show which outcomes change."""
    from retrainer.config import load_config
    from retrainer.steps import suites as suite_commands

    config = load_config(args.config)
    rows = suite_commands.check(config, args.last)
    print(f"suite {config.suite_path} on the last {len(rows)} batch(es) (dry run: nothing is recorded or moved)")
    print(f"{'batch':<16} {'recorded':<9} {'now':<9} detail")
    for row in rows:
        now = row.now.upper() if row.changed else row.now
        print(f"{row.batch:<16} {row.recorded:<9} {now:<9} {row.detail}")
    changed = sum(row.changed for row in rows)
    print(f"{changed} of {len(rows)} batch(es) would change outcome")
    return 0


def cmd_suite_docs(args: argparse.Namespace) -> int:
    """`retrainer suite docs`: build Great Expectations Data Docs into a static folder."""
    from retrainer.config import load_config
    from retrainer.steps import suites as suite_commands

    index = suite_commands.docs(load_config(args.config), args.last, Path(args.out) if args.out else None)
    print(f"Data Docs: {index}")
    return 0
