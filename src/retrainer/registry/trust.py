"""What retrainer agrees to deserialise: a model folder it checked itself, never what the artifact says.

A model version in the registry is only as trustworthy as the people with write access to it.
Three checks stand between a registry writer and code running in the pipeline, each made on the
local copy that is then loaded (nothing is re-read in between):

1. **Format.** Only skops, which rebuilds objects from a declared schema, is ever deserialised.
   Pickle (and cloudpickle) run code on load; a version saved in them is refused after reading its
   `MLmodel` file and before reading a byte of the model file.
2. **Provenance.** At registration the pipeline records a digest of the whole model folder and,
   when `RETRAINER_SIGNING_KEY` is set, an HMAC of that digest with the key. Copying a genuine
   version's tags onto a forged one copies a signature that does not match the forged folder, and a
   folder swapped after registration no longer matches its digest. Without a key the digest still
   catches a swapped artifact, but who made a version rests on a tag anyone can copy (a warning).
3. **Types.** The types skops may build come from this module (the built-in estimators) and the
   config's `model.trusted_types`, never from the artifact's own `MLmodel` file (the pattern of MLflow
   advisory GHSA-w582-9x45-8mpx, where the artifact vouched for itself).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from retrainer.registry.errors import RegistryError

SIGNING_KEY_ENV = "RETRAINER_SIGNING_KEY"
MLMODEL_FILE = "MLmodel"
# What the signature binds: a digest is signed for one registered model, in this scheme's version.
SIGNATURE_SCHEME = "retrainer-model-v1"

# The types (beyond skops' own defaults) that the built-in estimators of `retrainer.core.training` are made
# of; `tests/unit/test_trust.py` fits every built-in estimator and checks that none needs more.
BUILTIN_TRUSTED_TYPES: tuple[str, ...] = (
    "collections.OrderedDict",  # LightGBM's parameters
    "functools.partial",  # skops rebuilds a partial from trusted parts only (here: check_array)
    # LightGBM and XGBoost (the `lightgbm` and `xgboost` extras): skops rebuilds their boosters through their own
    # __setstate__, which parses the library's own model format (LightGBM's text model, XGBoost's UBJSON
    # buffer) in native code; no pickle is involved.
    "lightgbm.basic.Booster",
    "lightgbm.sklearn.LGBMClassifier",
    "lightgbm.sklearn.LGBMRegressor",
    "numpy.dtype",
    "retrainer.core.training.EncodedLabels",  # retrainer's own: text classes as codes for XGBoost
    "retrainer.core.training.LabelsAsText",  # retrainer's own: an adopted classifier's labels as text
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.tree._tree.Tree",
    "sklearn.utils.validation.check_array",
    "xgboost.core.Booster",
    "xgboost.sklearn.XGBClassifier",
    "xgboost.sklearn.XGBRegressor",
)

# Written by MLflow itself into a model folder it "downloads" from a local store (its own loader does,
# in place): name and version, never read by retrainer's loader, so not part of what is signed.
MLFLOW_WRITTEN_FILES = frozenset({"registered_model_meta"})

_warned_without_key = False


class UntrustedModel(RegistryError):
    """A model version retrainer refuses to deserialise; the message says which version and why."""


def signing_key() -> bytes | None:
    """The key the pipeline signs and verifies model digests with (`RETRAINER_SIGNING_KEY`), if set."""
    value = os.environ.get(SIGNING_KEY_ENV, "")
    return value.encode("utf-8") if value else None


def warn_without_key() -> None:
    """Once per process: without a key, provenance rests on a tag anyone with write access can copy."""
    global _warned_without_key
    if not _warned_without_key:
        _warned_without_key = True
        logging.getLogger("retrainer").warning(
            "retrainer: warning: %s is not set: model versions are checked for format, types and digest, "
            "but who registered them rests on a tag anyone with registry write access can copy "
            "(see docs/production.md, Security)", SIGNING_KEY_ENV)


def folder_digest(folder: Path) -> str:
    """SHA-256 over every file of a model folder: its relative path and the SHA-256 of its bytes
    (MLflow's own `registered_model_meta` aside)."""
    entries = []
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            raise UntrustedModel(f"model folder holds a symbolic link ({path.relative_to(folder)})")
        if path.is_file() and path.relative_to(folder).as_posix() not in MLFLOW_WRITTEN_FILES:
            entries.append(f"{path.relative_to(folder).as_posix()}\0{_file_digest(path)}")
    return hashlib.sha256("\n".join(entries).encode("utf-8")).hexdigest()


def _file_digest(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def sign(key: bytes, model_name: str, digest: str) -> str:
    """The HMAC-SHA256 with `key` of a model folder's digest, bound to the registered model's name."""
    message = f"{SIGNATURE_SCHEME}\n{model_name}\n{digest}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def provenance_refusal(model_name: str, digest: str, recorded_digest: str | None, signature: str | None,
                       registered_by: str | None, key: bytes | None) -> str | None:
    """Why a downloaded model folder is not the one retrainer registered (None: it is)."""
    if recorded_digest is not None and not hmac.compare_digest(recorded_digest, digest):
        return "its model files changed after it was registered (digest mismatch)"
    if key is not None:
        if signature is None:
            return f"it carries no signature, and {SIGNING_KEY_ENV} is set (only signed versions serve)"
        if not hmac.compare_digest(signature, sign(key, model_name, digest)):
            return f"its signature does not match its model files under the {SIGNING_KEY_ENV} in use"
        return None
    if registered_by != "retrainer":
        return "it was not registered by retrainer"
    return None


def model_file(folder: Path) -> Path:
    """The skops file of a downloaded scikit-learn model folder (`check_format`, and the file is there)."""
    file = folder / check_format(folder / MLMODEL_FILE)
    if file.is_symlink() or not file.is_file():
        raise UntrustedModel(f"its model file {file.name} is missing or not a plain file")
    return file


def _flavors(path: Path) -> dict[str, Any]:
    """The flavors an `MLmodel` file declares, read as YAML only."""
    if not path.is_file():
        raise UntrustedModel("it has no MLmodel file: not an MLflow model")
    try:
        described = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError):
        raise UntrustedModel("its MLmodel file is not readable YAML") from None
    flavors = described.get("flavors") if isinstance(described, dict) else None
    return flavors if isinstance(flavors, dict) else {}


def _skops_file(flavor: dict[str, Any], name_key: str) -> str:
    """The model file a flavor saved with skops names; pickle and cloudpickle refused."""
    serialization = flavor.get("serialization_format")
    if serialization != "skops":
        raise UntrustedModel(f"it is saved as '{serialization}': retrainer loads only skops models "
                             "(pickle and cloudpickle can run code when loaded)")
    return _plain_name(flavor.get(name_key))


def _plain_name(name: Any) -> str:
    if not isinstance(name, str) or not name or Path(name).name != name or name.startswith("."):
        raise UntrustedModel(f"its MLmodel names a model file outside the model folder ({name!r})")
    return name


def check_format(path: Path) -> str:
    """The model file name an `MLmodel` file names, after checking the format from it alone: refuses
    pickle, cloudpickle and a file name that is not a plain file of the model folder."""
    sklearn = _flavors(path).get("sklearn")
    if not isinstance(sklearn, dict):
        raise UntrustedModel("it is not a scikit-learn model (no sklearn flavor in MLmodel)")
    return _skops_file(sklearn, "pickled_model")


# The scikit-learn–API classes MLflow's xgboost flavor may name for `retrainer adopt`, and the class each is
# built as here (never imported from the name the artifact gives): XGBoost parses its own JSON/UBJSON model
# file in native code, no pickle involved. A bare Booster predicts scores, not what the cycle compares.
XGBOOST_CLASSES = {"xgboost.sklearn.XGBClassifier": "XGBClassifier", "xgboost.sklearn.XGBRegressor": "XGBRegressor"}
XGBOOST_FORMATS = ("ubj", "json")


@dataclass(frozen=True)
class ExternalFormat:
    """How a version registered elsewhere is saved, as its `MLmodel` file says (checked, nothing loaded)."""

    flavor: str  # "sklearn" or "lightgbm" (skops files) or "xgboost" (XGBoost's own format)
    file: str
    model_class: str | None = None


def check_external_format(path: Path) -> ExternalFormat:
    """What `retrainer adopt` accepts, from the `MLmodel` file alone: the sklearn or lightgbm flavor saved
    with skops, or the xgboost flavor of XGBClassifier/XGBRegressor in XGBoost's UBJSON or JSON format."""
    flavors = _flavors(path)
    if isinstance(flavors.get("sklearn"), dict):
        return ExternalFormat("sklearn", check_format(path))
    lightgbm = flavors.get("lightgbm")
    if isinstance(lightgbm, dict):
        if lightgbm.get("model_class") == "lightgbm.basic.Booster":
            raise UntrustedModel("it is a bare LightGBM Booster, which predicts scores, not the model's answers: "
                                 "log the LGBMClassifier or LGBMRegressor (mlflow.lightgbm.log_model(..., "
                                 "serialization_format='skops'))")
        return ExternalFormat("lightgbm", _skops_file(lightgbm, "data"))
    xgboost = flavors.get("xgboost")
    if isinstance(xgboost, dict):
        model_class = xgboost.get("model_class")
        if model_class not in XGBOOST_CLASSES:
            raise UntrustedModel(f"its xgboost flavor is a {model_class!r}: retrainer adopts XGBClassifier and "
                                 "XGBRegressor (a bare Booster predicts scores, not the model's answers)")
        if xgboost.get("model_format") not in XGBOOST_FORMATS:
            raise UntrustedModel(f"its XGBoost model is saved as {xgboost.get('model_format')!r}: retrainer "
                                 f"adopts {' or '.join(XGBOOST_FORMATS)} (mlflow.xgboost.log_model's default is ubj)")
        return ExternalFormat("xgboost", _plain_name(xgboost.get("data")), model_class)
    raise UntrustedModel(f"it is not a scikit-learn, LightGBM or XGBoost model (its flavors: "
                         f"{', '.join(sorted(flavors)) or 'none'})")


def load_external(folder: Path, described: ExternalFormat, trusted: list[str]) -> Any:
    """A checked external model folder's model: a skops file under the trusted types, or an XGBoost
    estimator of a class built here (and trusted) filled from XGBoost's own model file."""
    file = folder / described.file
    if file.is_symlink() or not file.is_file():
        raise UntrustedModel(f"its model file {file.name} is missing or not a plain file")
    if described.flavor != "xgboost":
        return load_skops(file, trusted)
    assert described.model_class is not None
    check_types([described.model_class], trusted)
    try:
        import xgboost
    except ImportError:
        raise RegistryError("this version is an XGBoost model, and XGBoost is not installed here: "
                            "pip install 'retrainer[xgboost]'") from None

    model = getattr(xgboost, XGBOOST_CLASSES[described.model_class])()
    try:
        model.load_model(file)
    except Exception as exc:  # XGBoost's parser: a damaged or foreign file is one line, not a traceback
        raise UntrustedModel(f"its XGBoost model file is not readable ({type(exc).__name__})") from None
    return model


def trusted_types(configured: Iterable[str]) -> list[str]:
    """The types skops may build: the built-in estimators' and the configured ones (`model.trusted_types`)."""
    return sorted(set(BUILTIN_TRUSTED_TYPES) | set(configured))


def check_types(found: Iterable[str], trusted: list[str], what: str = "its model") -> None:
    """Refuse types outside `trusted` (skops' own defaults are not in `found`); the reason names them,
    so a team can add their own classes knowingly."""
    unknown = sorted(set(found) - set(trusted))
    if unknown:
        raise UntrustedModel(f"{what} holds types retrainer does not trust: {', '.join(unknown)} "
                             "(if they are your own classes, list them in model.trusted_types)")


def check_file_types(file: Path, trusted: list[str]) -> None:
    """`check_types` on a skops file, read as a schema only: nothing in it is built."""
    import skops.io

    try:
        found = skops.io.get_untrusted_types(file=file)
    except Exception as exc:  # a file that is not a skops archive: say so in one line
        raise UntrustedModel(f"its model file is not a readable skops file ({type(exc).__name__})") from None
    check_types(found, trusted)


def load_skops(file: Path, trusted: list[str]) -> Any:
    """Deserialise a skops file once `check_file_types` passed it."""
    import skops.io

    check_file_types(file, trusted)
    return skops.io.load(file, trusted=trusted)
