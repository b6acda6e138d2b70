"""The registry's operator commands: `status`, `promote`, `rollback`, `sign`."""

from __future__ import annotations

import argparse
import json
from typing import Any


def _config(args: argparse.Namespace) -> Any:
    """The command's config, once the libraries are quiet (no MLflow download bars, no telemetry): set
    before Prefect is imported, as every other command does."""
    from retrainer.config import load_config
    from retrainer.observability import prepare_environment

    prepare_environment(verbose=args.verbose)
    return load_config(args.config)


def cmd_status(args: argparse.Namespace) -> int:
    """`retrainer status`: where the aliases point and their latest moves, as text or JSON."""
    config = _config(args)
    from retrainer.pipeline.concurrency import promotion_lock
    from retrainer.steps.operator import RegistryCommands, format_status

    status = RegistryCommands.open(config, promotion_lock).status(history=args.history)
    print(json.dumps(status, indent=2) if args.json else format_status(status))
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    """`retrainer promote`: move @champion to a version (`--force` even past a failed gate)."""
    config = _config(args)
    from retrainer.pipeline.concurrency import promotion_lock
    from retrainer.steps.operator import RegistryCommands

    before, after = RegistryCommands.open(config, promotion_lock).promote(args.version, args.reason, args.force)
    print(f"@champion: {before or '-'} -> {after} (previous-champion: {before or '-'})")
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    """`retrainer rollback`: restore @previous-champion as @champion."""
    config = _config(args)
    from retrainer.pipeline.concurrency import promotion_lock
    from retrainer.steps.operator import RegistryCommands

    before, after = RegistryCommands.open(config, promotion_lock).rollback(args.reason, args.force)
    print(f"@champion: {before} -> {after} (previous-champion: {before}; `retrainer rollback` again rolls forward)")
    return 0


def cmd_sign(args: argparse.Namespace) -> int:
    """`retrainer sign`: sign a version's model files as they are now (RETRAINER_SIGNING_KEY)."""
    config = _config(args)
    from retrainer.pipeline.concurrency import promotion_lock
    from retrainer.steps.operator import RegistryCommands

    digest = RegistryCommands.open(config, promotion_lock).sign(args.version)
    print(f"version {args.version} signed (model files digest {digest[:16]}…)")
    return 0
