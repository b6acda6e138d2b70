"""The history of alias moves: who or what moved which alias, when, from where to where, and why.

MLflow keeps only where an alias points now. Every move this pipeline makes — and every move
it notices was made outside it (the MLflow UI, another client) — is one finished run in the
experiment ``<model>-aliases``, its facts as tags, so the history is readable in the MLflow UI
and survives with the tracking store, on SQLite or on a server.
"""

from __future__ import annotations

import getpass
import socket
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from retrainer.registry.tracking import experiment_id

HISTORY_EXPERIMENT = "{model}-aliases"
TAG = "retrainer.alias_move."
OUTSIDE = "outside retrainer (MLflow UI or another client)"


@dataclass(frozen=True)
class AliasMove:
    """One move of an alias: from which version to which (None: the alias was not set, or was removed),
    by whom or what, why, and when."""

    alias: str
    from_version: str | None
    to_version: str | None
    actor: str
    reason: str
    at: datetime

    def to_dict(self) -> dict[str, Any]:
        """The move as plain data, its time as ISO text to the second."""
        data = asdict(self)
        data["at"] = self.at.isoformat(timespec="seconds")
        return data


def person() -> str:
    """Who runs a command: user@host, for moves a person makes with the command line."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


class AliasHistory:
    """Append and read the alias moves of one registered model."""

    def __init__(self, client: Any, model: str, artifact_location: str | None) -> None:
        self.client = client
        self.model = model
        self.artifact_location = artifact_location

    def _experiment(self) -> str:
        return experiment_id(self.client, HISTORY_EXPERIMENT.format(model=self.model), self.artifact_location)

    def record(self, move: AliasMove) -> None:
        """Put one move on record: a finished run in the alias-history experiment, its facts as tags."""
        tags = {
            TAG + "alias": move.alias,
            TAG + "from": move.from_version or "",
            TAG + "to": move.to_version or "",
            TAG + "actor": move.actor[:250],
            TAG + "reason": move.reason[:5000],
            TAG + "at": move.at.isoformat(timespec="microseconds"),
        }
        run = self.client.create_run(
            self._experiment(), start_time=int(move.at.timestamp() * 1000), tags=tags,
            run_name=f"@{move.alias}: {move.from_version or '-'} -> {move.to_version or '-'}",
        )
        self.client.set_terminated(run.info.run_id, "FINISHED")

    def latest(self, alias: str) -> AliasMove | None:
        """The last recorded move of one alias."""
        runs = self.client.search_runs([self._experiment()], filter_string=f"tags.`{TAG}alias` = '{alias}'",
                                       max_results=1, order_by=["attributes.start_time DESC"])
        moves = self._moves(runs)
        return moves[-1] if moves else None

    def moves(self, max_results: int = 1000) -> list[AliasMove]:
        """The recorded moves (the newest `max_results`), oldest first."""
        runs = self.client.search_runs([self._experiment()], max_results=max_results,
                                       order_by=["attributes.start_time DESC"])
        return self._moves(runs)

    @staticmethod
    def _moves(runs: Any) -> list[AliasMove]:
        moves = []
        for run in runs:
            tags = run.data.tags
            if TAG + "alias" not in tags:
                continue
            moves.append(AliasMove(
                alias=tags[TAG + "alias"],
                from_version=tags.get(TAG + "from") or None,
                to_version=tags.get(TAG + "to") or None,
                actor=tags.get(TAG + "actor", ""),
                reason=tags.get(TAG + "reason", ""),
                at=datetime.fromisoformat(tags[TAG + "at"]) if TAG + "at" in tags
                else datetime.fromtimestamp(run.info.start_time / 1000, tz=UTC),
            ))
        # Several moves of one promotion share a millisecond: keep the order they were made in.
        return sorted(moves, key=lambda m: m.at)


def now() -> datetime:
    """The current time in UTC: when an alias move happens."""
    return datetime.now(UTC)
