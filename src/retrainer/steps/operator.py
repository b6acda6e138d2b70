"""`retrainer status|promote|rollback`: the registry as an MLOps engineer works on it.

These talk to MLflow only (no Prefect): they are quick, and they must work when no flow is
running. Every alias they move is recorded in the alias history with who ran the command.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from retrainer.config import RetrainerConfig
from retrainer.observability import webhooks
from retrainer.registry import ModelRegistry, ModelVersionInfo, RegistryError, UntrustedModel, connect
from retrainer.registry.history import person
from retrainer.registry.trust import SIGNING_KEY_ENV, signing_key
from retrainer.registry.versions import MODEL_SIGNATURE
from retrainer.state.journal import read_journal
from retrainer.state.locks import LockTimeout, promotion_lock
from retrainer.steps.runtime import PromotionLock


@dataclass
class RegistryCommands:
    """The operator commands on one registered model; they move its aliases under its promotion lock."""

    config: RetrainerConfig
    registry: ModelRegistry
    # The promotion lock: the pipeline's adds the Prefect slot (`pipeline.concurrency`).
    lock: PromotionLock = promotion_lock

    @classmethod
    def open(cls, config: RetrainerConfig, lock: PromotionLock = promotion_lock) -> RegistryCommands:
        """The commands on the config's registered model; raises RegistryError when it is not there yet."""
        registry = ModelRegistry(connect(config), config)
        if not registry.exists():
            raise RegistryError(f"no registered model '{registry.name}' in {config.tracking_uri}: "
                                "run `retrainer init` (or the demo) first")
        return cls(config, registry, lock)

    def status(self, history: int = 100) -> dict[str, Any]:
        """Where each alias points, versions awaiting approval, and the latest alias moves."""
        try:
            with self.lock(self.config, timeout_seconds=2.0):
                self.registry.note_outside_moves(noticed_by="retrainer status")
        except LockTimeout:
            pass  # a promotion is under way: its own record is coming
        aliases = self.config.mlflow.aliases

        def version(alias: str) -> str | None:
            info = self.registry.version_by_alias(alias)
            return info.version if info else None

        champion = self.registry.champion()
        return {
            "model": self.registry.name,
            "champion": champion.version if champion else None,
            # Checked now, on a fresh download, without deserialising it: what the next cycle would find.
            "champion_refused": self.registry.refusal(champion) if champion else None,
            "signing": _signing_status(),
            "previous_champion": version(aliases.previous_champion),
            "challenger": version(aliases.challenger),
            "awaiting_approval": [v.version for v in self.registry.versions() if v.tag("awaiting-approval") == "true"],
            "rejection_streak": self._rejection_streak(),
            "history": [move.to_dict() for move in self.registry.history.moves(max_results=history)],
            "versions": [_version_summary(v) for v in self.registry.versions()],
        }

    def _rejection_streak(self) -> dict[str, Any] | None:
        """The streak of rejections the journal ends with, once it reached the escalation limit."""
        records = read_journal(self.config.storage.timeline_path(self.config.model.name))
        limit = self.config.policy.rejection_streak_batches
        streak = records[-1].rejection_streak if records else None
        if streak is None or limit is None or streak.batches < limit:
            return None
        return {**streak.model_dump(), "last": records[-1].batch}

    def promote(self, version: str, reason: str | None, force: bool,
                actor: str | None = None) -> tuple[str | None, str]:
        """A person promotes a version (manual mode's approval, or an override); `actor` says through
        what (default: who ran `retrainer promote`)."""
        target = self.registry.version(version)
        refusal = self.registry.refusal(target)
        if refusal is not None:
            # Not even --force serves a version retrainer would not load.
            raise UntrustedModel(f"{refusal}; only versions this pipeline trained can serve")
        with self.lock(self.config):
            self.registry.note_outside_moves(noticed_by="retrainer promote")
            champion = self.registry.champion()
            current = champion.version if champion else None
            if current == target.version:
                raise RegistryError(f"version {version} is already @{self.config.mlflow.aliases.champion}")
            refusal = _unproven(target.tag("gate"), target.tag("gate_champion"), current)
            if refusal and not force:
                raise RegistryError(f"version {version} {refusal}; use --force --reason '...' to promote it anyway")
            if refusal and not reason:
                # An override of the gate is the one move a reader of the history must be able to understand.
                raise RegistryError(f"version {version} {refusal}: say why it should serve anyway with --reason")
            why = reason or ("approved" if target.tag("awaiting-approval") == "true" else "promoted by hand")
            if refusal:
                why = f"{why} (forced: version {version} {refusal})"
            self.registry.promote(target.version, expected_champion=current,
                                  actor=actor or f"{person()} (retrainer promote)", reason=why)
        self.registry.tag_version(target.version, "approved_by", actor or person())
        return current, target.version

    def sign(self, version: str) -> str:
        """A person vouches for a version made before signing was on (or under another key)."""
        target = self.registry.version(version)
        if target.tag("registered_by") != "retrainer":
            raise RegistryError(f"version {version} of '{self.registry.name}' was not registered by retrainer; "
                                "only versions this pipeline trained can be signed")
        digest = self.registry.sign(target)
        self.registry.tag_version(target.version, "signed_by", person())
        return digest

    def rollback(self, reason: str | None, force: bool = False) -> tuple[str, str]:
        """A person restores @previous-champion as @champion (the version it replaces becomes
        @previous-champion: a second rollback rolls forward); the webhook hears of it. Returns (from, to).
        A version that failed its gate (it served only by `promote --force`) is not put back without `force`."""
        actor, why = f"{person()} (retrainer rollback)", reason or "rollback"
        with self.lock(self.config):
            self.registry.note_outside_moves(noticed_by="retrainer rollback")
            previous = self.registry.version_by_alias(self.config.mlflow.aliases.previous_champion)
            if previous is not None and previous.tag("gate") == "failed":
                if not force:
                    raise RegistryError(f"@{self.config.mlflow.aliases.previous_champion} is version "
                                        f"{previous.version}, which failed its gate (see its description); use "
                                        "--force to put it back in service anyway")
                why = f"{why} (forced: version {previous.version} failed its gate)"
            before, after = self.registry.rollback(actor=actor, reason=why)
        # Told to the webhook; the rollback stands whether or not it answers.
        webhooks.send(self.config.notifications, "rollback",
                           webhooks.rollback_payload(self.registry.name, before, after, actor, why))
        return before, after


# What `status --json` shows of each version: enough to reproduce it (see tasks._reproduction).
REPRODUCTION_TAGS = ("seed", "training_rows", "training_rows_sha256", "retrainer_version", "git_commit", "estimator",
                     "window_batches")


def _version_summary(info: ModelVersionInfo) -> dict[str, Any]:
    # top_features: the features the version leans on most, with their permutation-importance shares.
    return {"version": info.version, "signed": MODEL_SIGNATURE in info.tags,
            **{key: info.tag(key) for key in (*REPRODUCTION_TAGS, "top_features") if info.tag(key) is not None}}


def _signing_status() -> str:
    if signing_key() is not None:
        return f"on: versions are signed at registration and verified before loading ({SIGNING_KEY_ENV})"
    return (f"off: {SIGNING_KEY_ENV} is not set; formats, types and digests are checked, but who registered a "
            "version rests on its registered_by tag, which anyone with registry write access can copy")


def _unproven(gate: str | None, judged_against: str | None, current: str | None) -> str | None:
    """Why a version has not earned @champion against the one serving now (None: it has)."""
    if gate is None:
        return "was never judged by the gate (its retrain did not finish)"
    if gate != "passed":
        return "failed its gate (see its description)"
    if judged_against is not None and judged_against != current:
        return f"passed its gate against version {judged_against}, not against the current champion {current}"
    return None


def format_status(status: dict[str, Any]) -> str:
    """`retrainer status` for a person."""
    lines = [
        f"model {status['model']}",
        f"  @champion           {status['champion'] or '-'}",
        f"  @previous-champion  {status['previous_champion'] or '-'}",
        f"  @challenger         {status['challenger'] or '-'}",
        f"  awaiting approval   {', '.join(status['awaiting_approval']) or '-'}",
        f"  signing             {status['signing']}",
    ]
    if status.get("champion_refused"):
        lines.append(f"  CHAMPION REFUSED    {status['champion_refused']}: cycles score nothing until @champion "
                     "points at a version retrainer trusts (`retrainer rollback` or `retrainer promote`)")
    streak = status.get("rejection_streak")
    if streak:
        lines.append(f"  REJECTION STREAK    {streak['kind']} has rejected {streak['batches']} batches in a row "
                     f"('{streak['since']}' to '{streak['last']}'): fix the export upstream, or edit the suite "
                     "(`retrainer suite check`) and re-run them (`retrainer requeue`)")
    lines += [
        "",
        "alias history (oldest first):",
    ]
    for move in status["history"]:
        lines.append(f"  {move['at']}  @{move['alias']:<18} {move['from_version'] or '-':>4} -> "
                     f"{move['to_version'] or '-':<4} by {move['actor']}: {move['reason']}")
    if not status["history"]:
        lines.append("  (none recorded)")
    return "\n".join(lines)
