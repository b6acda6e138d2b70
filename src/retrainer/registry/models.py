"""Model versions in the MLflow registry: log and register, load, aliases, promotion.

Aliases, not stages: ``@champion`` serves, ``@challenger`` is the latest candidate,
``@previous-champion`` is where a rollback goes. A version's tags and description say why it
exists, so a person reading the MLflow UI needs nothing else.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from retrainer.config import RetrainerConfig
from retrainer.registry import trust
from retrainer.registry.downloads import checked_download, download, download_checked_format, download_external
from retrainer.registry.errors import PromotionConflict, RegistryError
from retrainer.registry.history import OUTSIDE, AliasHistory, AliasMove, now
from retrainer.registry.tracking import experiment_id
from retrainer.registry.versions import (
    DOCUMENTS_FOLDER,
    MODEL_DIGEST,
    MODEL_SIGNATURE,
    NOT_FOUND_CODES,
    REFERENCE_ARTIFACT,
    REGISTERED_BY,
    TAG_PREFIX,
    ModelVersionInfo,
)

# Tries at setting an alias whose row another process changed mid-write (see ModelRegistry._set_alias).
ALIAS_WRITE_ATTEMPTS = 3


class ModelRegistry:
    """The registered model of one config, and the versions this pipeline made."""

    def __init__(self, client: Any, config: RetrainerConfig) -> None:
        self.client = client
        self.config = config
        self.name = config.registered_model
        self.aliases = config.mlflow.aliases
        self._models: dict[str, Any] = {}
        self._references: dict[str, pd.DataFrame] = {}
        self._documents: dict[tuple[str, str], dict[str, Any] | None] = {}
        self.history = AliasHistory(client, self.name, config.artifact_location)

    # -- reading ---------------------------------------------------------------------------
    def version_by_alias(self, alias: str) -> ModelVersionInfo | None:
        """The version an alias points at; None when the model or the alias does not exist (an outage raises)."""
        from mlflow.exceptions import MlflowException

        try:
            version = self.client.get_model_version_by_alias(self.name, alias)
        except MlflowException as exc:
            # Only "no such model/alias" means absent; an outage must not read as "no champion".
            if exc.error_code in NOT_FOUND_CODES:
                return None
            raise
        return self._info(version)

    def version(self, number: str) -> ModelVersionInfo:
        """One version by number; RegistryError when there is no such version."""
        from mlflow.exceptions import MlflowException

        try:
            return self._info(self.client.get_model_version(self.name, str(number)))
        except MlflowException:
            raise RegistryError(f"model '{self.name}' has no version {number}") from None

    def load_external(self, model_uri: str) -> Any:
        """The model of a version registered elsewhere (`models:/NAME/VERSION`, for `retrainer adopt`): its
        format checked from MLmodel alone (MLflow's sklearn or lightgbm flavor saved with skops, or its xgboost
        flavor in XGBoost's own format: `trust.check_external_format`), then loaded with the trusted types
        only. No provenance check: retrainer did not register it, which is why it is being adopted."""
        from mlflow.exceptions import MlflowException

        match = re.fullmatch(r"models:/(?P<name>[^/@]+)/(?P<version>\d+)", model_uri)
        if match is None:
            raise RegistryError(f"{model_uri}: not a model version URI of the form models:/NAME/VERSION")
        try:
            info = self._info(self.client.get_model_version(match["name"], match["version"]))
        except MlflowException as exc:
            if exc.error_code in NOT_FOUND_CODES:
                raise RegistryError(f"{model_uri}: no such model version in {self.config.tracking_uri}") from None
            raise
        with tempfile.TemporaryDirectory() as folder:
            try:
                local, described = download_external(self.client, self.config, match["name"], info, Path(folder))
                return trust.load_external(local, described, self.trusted_types)
            except trust.UntrustedModel as exc:
                raise trust.UntrustedModel(f"{model_uri}: refused: {exc}") from None

    def exists(self) -> bool:
        """Whether the registered model exists (an outage raises, it is not an answer)."""
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(self.name)
        except MlflowException as exc:
            if exc.error_code in NOT_FOUND_CODES:
                return False
            raise
        return True

    def versions(self) -> list[ModelVersionInfo]:
        """Every version of the registered model, oldest first."""
        found = self.client.search_model_versions(f"name = '{self.name}'")
        return sorted((self._info(v) for v in found), key=lambda info: int(info.version))

    def champion(self) -> ModelVersionInfo | None:
        """The version @champion points at, if any."""
        return self.version_by_alias(self.aliases.champion)

    def refuse_if_initialised(self) -> None:
        """`retrainer init` and `retrainer adopt` make the first champion only."""
        champion = self.champion()
        if champion is not None:
            raise RegistryError(
                f"model '{self.name}' already has @{self.aliases.champion} (version {champion.version}); init and "
                "adopt make the first champion only — use `retrainer run` for new batches, `retrainer promote` "
                "to put another version in service, or another model.name for a new model"
            )

    def load_model(self, info: ModelVersionInfo, fresh: bool = False) -> Any:
        """The scikit-learn pipeline of a version this pipeline registered (cached: versions are immutable;
        `fresh` loads it from the store again, as a serving process would). Raises `UntrustedModel`
        before deserialising anything that is not a skops folder this pipeline registered
        (see `registry.trust`)."""
        if fresh or info.version not in self._models:
            with tempfile.TemporaryDirectory() as folder:
                model_file = checked_download(self.client, self.config, self.name, info, Path(folder))
                self._models[info.version] = trust.load_skops(model_file, self.trusted_types)
        return self._models[info.version]

    @property
    def trusted_types(self) -> list[str]:
        """The types a model of this config may contain: the built-in estimators' and model.trusted_types."""
        return trust.trusted_types(self.config.model.trusted_types)

    def refusal(self, info: ModelVersionInfo) -> str | None:
        """Why retrainer would refuse to load a version (None: it would load it), checked on a fresh
        download without deserialising the model: format, provenance and types."""
        try:
            with tempfile.TemporaryDirectory() as folder:
                model_file = checked_download(self.client, self.config, self.name, info, Path(folder))
                trust.check_file_types(model_file, self.trusted_types)
        except trust.UntrustedModel as exc:
            message = str(exc)
            return message if message.startswith("version ") else f"version {info.version} of '{self.name}': {message}"
        return None

    def sign(self, info: ModelVersionInfo) -> str:
        """A person vouches for a version (signing turned on, or the key rotated): its folder as it is now
        must pass the format and type checks; its digest is recorded and signed. Returns the digest."""
        key = trust.signing_key()
        if key is None:
            raise RegistryError(f"{trust.SIGNING_KEY_ENV} is not set: there is no key to sign with")
        with tempfile.TemporaryDirectory() as folder:
            try:
                local, model_file = download_checked_format(self.client, self.config, self.name, info, Path(folder))
                trust.check_file_types(model_file, self.trusted_types)
                digest = trust.folder_digest(local)
            except trust.UntrustedModel as exc:
                raise trust.UntrustedModel(f"version {info.version} of '{self.name}': not signed: {exc}") from None
        self.client.set_model_version_tag(self.name, info.version, MODEL_DIGEST, digest)
        self.client.set_model_version_tag(self.name, info.version, MODEL_SIGNATURE, trust.sign(key, self.name, digest))
        return digest

    def load_reference(self, info: ModelVersionInfo) -> pd.DataFrame:
        """The training data snapshot stored with the version's run: the drift reference."""
        if info.version not in self._references:
            with tempfile.TemporaryDirectory() as folder:
                path = self.client.download_artifacts(info.run_id, REFERENCE_ARTIFACT, folder)
                self._references[info.version] = pd.read_parquet(path)
        return self._references[info.version]

    def load_document(self, info: ModelVersionInfo, name: str) -> dict[str, Any] | None:
        """A JSON document stored with the version's run, or None when that version has none."""
        import json

        from mlflow.exceptions import MlflowException

        key = (info.version, name)
        if key not in self._documents:
            with tempfile.TemporaryDirectory() as folder:
                try:
                    path = self.client.download_artifacts(info.run_id, f"{DOCUMENTS_FOLDER}/{name}", folder)
                except (MlflowException, FileNotFoundError) as exc:
                    # Versions made before the document existed simply lack it; an outage is not
                    # "absent" (it would switch the estimate off for this version for good).
                    if isinstance(exc, MlflowException) and exc.error_code not in NOT_FOUND_CODES:
                        raise
                    self._documents[key] = None
                else:
                    self._documents[key] = json.loads(Path(path).read_text(encoding="utf-8"))
        return self._documents[key]

    # -- writing ---------------------------------------------------------------------------
    def register(
        self,
        pipeline: Any,
        reference: pd.DataFrame,
        input_example: pd.DataFrame,
        params: dict[str, Any],
        metrics: dict[str, float],
        tags: dict[str, str],
        description: str,
        run_name: str,
        documents: dict[str, dict[str, Any]] | None = None,
    ) -> ModelVersionInfo:
        """Log a trained pipeline and its training data in one run, and register it as a new version."""
        import mlflow
        import mlflow.sklearn
        from mlflow.models import infer_signature

        found = self._refuse_untrusted_types(pipeline)
        version_tags = {TAG_PREFIX + k: str(v) for k, v in tags.items()}
        version_tags[REGISTERED_BY] = "retrainer"
        experiment = experiment_id(self.client, self.config.training_experiment, self.config.artifact_location)
        with mlflow.start_run(experiment_id=experiment, run_name=run_name) as run:
            mlflow.log_params({k: str(v)[:6000] for k, v in params.items()})
            mlflow.log_metrics(metrics)
            mlflow.set_tags(version_tags)
            with tempfile.TemporaryDirectory() as folder:
                path = Path(folder) / Path(REFERENCE_ARTIFACT).name
                reference.to_parquet(path, index=False)
                mlflow.log_artifact(str(path), artifact_path=str(Path(REFERENCE_ARTIFACT).parent))
            for name, document in (documents or {}).items():
                mlflow.log_dict(document, f"{DOCUMENTS_FOLDER}/{name}")
            logged = mlflow.sklearn.log_model(
                pipeline,
                name="model",
                serialization_format="skops",
                # Given explicitly: inferring requirements costs ~6 s per model.
                pip_requirements=_requirements(found),
                signature=infer_signature(input_example, pipeline.predict(input_example)),
                # For MLflow's own loader (a serving process); retrainer itself never reads this list back.
                skops_trusted_types=self.trusted_types,
            )
        # From where the model's files are stored (a `models:/` download adds a file of MLflow's own).
        version_tags |= self._provenance_tags(self.client.get_logged_model(logged.model_id).artifact_location)
        version = self.client.create_model_version(
            self.name, logged.model_uri, run_id=run.info.run_id, tags=version_tags, description=description,
            model_id=logged.model_id,
        )
        self._models[str(version.version)] = pipeline
        self._references[str(version.version)] = reference
        for name, document in (documents or {}).items():
            self._documents[(str(version.version), name)] = document
        return self._info(version)

    def _refuse_untrusted_types(self, pipeline: Any) -> list[str]:
        """Before logging: a trained pipeline made of types the loader would refuse fails here, once,
        with the names, instead of at every later load. The types beyond skops' defaults it holds."""
        import skops.io

        found: list[str] = skops.io.get_untrusted_types(data=skops.io.dumps(pipeline))
        trust.check_types(found, self.trusted_types, what="the trained model")
        return found

    def _provenance_tags(self, artifact_location: str) -> dict[str, str]:
        """The digest of the model folder as stored (downloaded back: the bytes a later load will see),
        and its signature when a signing key is set."""
        with tempfile.TemporaryDirectory() as folder:
            digest = trust.folder_digest(download(self.config, artifact_location, Path(folder)))
        tags = {MODEL_DIGEST: digest}
        key = trust.signing_key()
        if key is not None:
            tags[MODEL_SIGNATURE] = trust.sign(key, self.name, digest)
        return tags

    def ensure_registered_model(self) -> None:
        """Create the registered model, with its description, unless it exists."""
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(self.name)
        except MlflowException:
            self.client.create_registered_model(
                self.name, description="Managed by retrainer: @champion serves; see each version's description."
            )

    def move_alias(self, alias: str, version: str | None, actor: str, reason: str) -> None:
        """Point `alias` at `version` (None removes it) and record the move in the alias history."""
        current = self.version_by_alias(alias)
        before = current.version if current else None
        if before == (None if version is None else str(version)):
            return
        if version is None:
            self.client.delete_registered_model_alias(self.name, alias)
        else:
            self._set_alias(alias, str(version))
        moved = AliasMove(alias, before, None if version is None else str(version), actor, reason, now())
        self.history.record(moved)
        if alias == self.aliases.champion and version is not None:
            self._describe_model(moved)

    def _describe_model(self, move: AliasMove) -> None:
        """The registered model's description leads with what serves and why (the MLflow models list shows
        its start); a failure to write it is a warning: the alias moved and the history has it."""
        from mlflow.exceptions import MlflowException

        text = (f"@{self.aliases.champion}: version {move.to_version} since {move.at:%Y-%m-%d %H:%M} UTC — "
                f"{move.reason or 'no reason given'} ({move.actor}). Managed by retrainer: each version's description "
                "gives its gate report; `retrainer status` the alias history.")
        try:
            self.client.update_registered_model(self.name, description=text[:5000])
        except MlflowException as exc:
            logging.getLogger("retrainer").warning("retrainer: warning: could not describe model '%s': %s",
                                                   self.name, str(exc).splitlines()[0] if str(exc) else exc)

    def _set_alias(self, alias: str, version: str) -> None:
        """Set an alias, again when the store's write raced another one on the same alias.

        MLflow's SQL store sets an alias by reading its row and then updating or inserting it, in one
        transaction but without a row lock: when another process deletes the row in between (a promotion
        removes @challenger while a racing retrain sets it) or inserts it first, the write fails with a
        database error (BAD_REQUEST, "expected to update 1 row(s); 0 were matched" or a duplicate key).
        Setting an alias is idempotent, so a second try is the remedy; MLflow's HTTP retries do not cover
        it (they retry 429/5xx only). Any other error, or a third conflict, is raised."""
        import time

        from mlflow.exceptions import MlflowException

        for attempt in range(ALIAS_WRITE_ATTEMPTS):
            try:
                self.client.set_registered_model_alias(self.name, alias, version)
                return
            except MlflowException as exc:
                if exc.error_code != "BAD_REQUEST" or attempt == ALIAS_WRITE_ATTEMPTS - 1:
                    raise
                time.sleep(0.1 * (attempt + 1))

    def tag_version(self, version: str, key: str, value: str) -> None:
        """Set a `retrainer.<key>` tag on a version."""
        self.client.set_model_version_tag(self.name, str(version), TAG_PREFIX + key, value)

    def describe_version(self, version: str, addition: str, lead: bool = False) -> None:
        """Add to a version's description (what a person reads in the MLflow UI): after what it says, or before
        it with `lead` (the models list shows a description's start: the verdict belongs there)."""
        current = self.client.get_model_version(self.name, str(version)).description or ""
        text = (f"{addition}\n\n{current}" if lead else f"{current}\n\n{addition}") if current else addition
        self.client.update_model_version(self.name, str(version), description=text[:5000])

    def untag_version(self, version: str, key: str) -> None:
        """Remove a `retrainer.<key>` tag from a version, if it has one."""
        from mlflow.exceptions import MlflowException

        with contextlib.suppress(MlflowException):  # not tagged: nothing to remove
            self.client.delete_model_version_tag(self.name, str(version), TAG_PREFIX + key)

    def _check_champion(self, expected: str | None) -> str | None:
        current = self.champion()
        current_version = current.version if current else None
        if current_version != expected:
            raise PromotionConflict(
                f"@{self.aliases.champion} of '{self.name}' moved to {current_version} (expected {expected}); "
                "nothing was changed"
            )
        return current_version

    def promote(self, version: str, expected_champion: str | None, actor: str = "retrainer",
                reason: str = "") -> str | None:
        """Move @champion to `version`, keeping the old one as @previous-champion.

        Compare-and-set: if @champion no longer points where it did when the gate was
        evaluated, nothing moves and PromotionConflict is raised.
        """
        current_version = self._check_champion(expected_champion)
        target = self.version(version)  # refuse a version that does not exist before touching any alias
        refusal = self.refusal(target)
        if refusal is not None:
            raise trust.UntrustedModel(f"{refusal}; not promoting it")
        why = reason or f"promote version {version}"
        if current_version is not None and current_version != str(version):
            self.move_alias(self.aliases.previous_champion, current_version, actor, why)
        self.move_alias(self.aliases.champion, version, actor, why)
        challenger = self.version_by_alias(self.aliases.challenger)
        if challenger is not None and challenger.version == str(version):
            # A promoted challenger is the champion now; leaving both aliases on it misleads the UI.
            self.move_alias(self.aliases.challenger, None, actor, f"{why}: the challenger became champion")
        self.untag_version(version, "awaiting-approval")
        return current_version

    def undo_promotion(self, promoted: str, champion_before: str | None, previous_before: str | None, actor: str,
                       reason: str) -> bool:
        """Put the aliases back as they were before `promoted` was promoted (its checks after the move
        failed): @champion, @previous-champion, and @challenger on `promoted` again. Compare-and-set:
        when @champion has moved on since, nothing is touched and False is returned."""
        current = self.champion()
        if current is None or current.version != str(promoted) or champion_before is None:
            return False
        self.move_alias(self.aliases.champion, champion_before, actor, reason)
        self.move_alias(self.aliases.previous_champion, previous_before, actor, reason)
        self.move_alias(self.aliases.challenger, promoted, actor, reason)
        return True

    def rollback(self, actor: str, reason: str = "") -> tuple[str, str]:
        """@champion back to @previous-champion; the rolled-back version becomes @previous-champion,
        so a second rollback rolls forward. Returns (from, to)."""
        previous = self.version_by_alias(self.aliases.previous_champion)
        if previous is None:
            raise RegistryError(f"model '{self.name}' has no @{self.aliases.previous_champion} to roll back to")
        refusal = self.refusal(previous)
        if refusal is not None:
            raise trust.UntrustedModel(f"@{self.aliases.previous_champion}: {refusal}; not serving it")
        current = self.champion()
        current_version = current.version if current else None
        if current_version == previous.version:
            raise RegistryError(f"@{self.aliases.previous_champion} and @{self.aliases.champion} both point at "
                                f"version {previous.version}: nothing to roll back to (use `retrainer promote`)")
        why = reason or f"rollback to version {previous.version}"
        self.move_alias(self.aliases.champion, previous.version, actor, why)
        if current_version is not None:
            self.move_alias(self.aliases.previous_champion, current_version, actor, why)
        return current_version or "-", previous.version

    def note_outside_moves(self, noticed_by: str = "a monitoring cycle") -> list[AliasMove]:
        """Record alias moves made outside retrainer (a person in the MLflow UI), so the history is whole."""
        noted = []
        for alias in (self.aliases.champion, self.aliases.previous_champion, self.aliases.challenger):
            current = self.version_by_alias(alias)
            version = current.version if current else None
            last = self.history.latest(alias)
            recorded = last.to_version if last else None
            if recorded != version:
                move = AliasMove(alias, recorded, version, OUTSIDE, f"noticed by {noticed_by}", now())
                self.history.record(move)
                noted.append(move)
        return noted

    def _info(self, version: Any) -> ModelVersionInfo:
        created = datetime.fromtimestamp(version.creation_timestamp / 1000, tz=UTC)
        return ModelVersionInfo(str(version.version), str(version.run_id), dict(version.tags or {}), created)


# Model libraries beyond scikit-learn whose classes a model may hold, by top-level module.
_MODEL_LIBRARIES = ("lightgbm", "xgboost")


@functools.cache
def _distributions() -> dict[str, list[str]]:
    """Installed distributions by top-level module (a scan of every installed package: once per process)."""
    from importlib.metadata import packages_distributions

    return dict(packages_distributions())


def _requirements(types: list[str]) -> list[str]:
    """What loading the model needs (given, not inferred: inferring costs ~6 s per model): scikit-learn at
    this version, and the installed distribution and version of each model library among the model's `types`
    (XGBoost's module comes from `xgboost` or `xgboost-cpu`, say)."""
    from importlib.metadata import version

    modules = {name.split(".")[0] for name in types}
    installed = _distributions()
    extra = [f"{package}=={version(package)}" for module in _MODEL_LIBRARIES if module in modules
             for package in installed.get(module, [module])[:1]]
    return [f"scikit-learn=={version('scikit-learn')}", "pandas", "numpy", *extra]
