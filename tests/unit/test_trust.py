"""What retrainer agrees to deserialise (retrainer.registry.trust): formats, provenance and types."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io
import yaml
from sklearn.base import BaseEstimator, TransformerMixin

from retrainer.core.schema import BatchSchema
from retrainer.core.training import ESTIMATORS
from retrainer.registry.trust import (
    BUILTIN_TRUSTED_TYPES,
    UntrustedModel,
    check_format,
    folder_digest,
    load_skops,
    provenance_refusal,
    sign,
    trusted_types,
)


def _frame(rows: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"c": rng.choice(list("xyz"), rows), "a": rng.normal(size=rows), "b": rng.normal(size=rows)})


@pytest.mark.parametrize("estimator", sorted(ESTIMATORS))
@pytest.mark.parametrize("task", ["classification", "regression"])
@pytest.mark.parametrize("categorical", [(), ("c",)])
def test_every_built_in_estimator_is_made_of_trusted_types_only(estimator: str, task: str,
                                                                categorical: tuple[str, ...]) -> None:
    """A fitted built-in pipeline needs no type beyond skops' defaults and the fixed built-in list."""
    frame = _frame()
    schema = BatchSchema(target="y", task=task, numeric=("a", "b"), categorical=categorical)  # type: ignore[arg-type]
    y = frame["a"] > 0 if task == "classification" else frame["a"] * 2
    pipeline = ESTIMATORS[estimator](schema, 0).fit(frame[[*categorical, "a", "b"]], y)
    assert set(skops.io.get_untrusted_types(data=skops.io.dumps(pipeline))) <= set(BUILTIN_TRUSTED_TYPES)


def _mlmodel(folder: Path, sklearn: dict[str, object]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "MLmodel"
    path.write_text(yaml.safe_dump({"flavors": {"sklearn": sklearn}}), encoding="utf-8")
    return path


@pytest.mark.parametrize("serialization", ["pickle", "cloudpickle", None])
def test_a_model_saved_in_any_format_but_skops_is_refused_from_its_mlmodel(tmp_path: Path,
                                                                          serialization: str | None) -> None:
    """Pickle and cloudpickle (or no stated format) are refused by reading MLmodel only."""
    path = _mlmodel(tmp_path, {"serialization_format": serialization, "pickled_model": "model.pkl"})
    with pytest.raises(UntrustedModel, match="retrainer loads only skops models"):
        check_format(path)


@pytest.mark.parametrize("name", ["../../etc/passwd", "sub/model.skops", ".hidden", ""])
def test_a_model_file_outside_the_model_folder_is_refused(tmp_path: Path, name: str) -> None:
    path = _mlmodel(tmp_path, {"serialization_format": "skops", "pickled_model": name})
    with pytest.raises(UntrustedModel, match="outside the model folder"):
        check_format(path)


def test_an_mlmodel_without_a_sklearn_flavor_is_refused(tmp_path: Path) -> None:
    (tmp_path / "MLmodel").write_text("flavors: {python_function: {loader_module: evil}}\n", encoding="utf-8")
    with pytest.raises(UntrustedModel, match="not a scikit-learn model"):
        check_format(tmp_path / "MLmodel")


def test_the_folder_digest_changes_with_any_file_and_refuses_links(tmp_path: Path) -> None:
    """Every file counts (content and name); a symbolic link in a model folder is refused."""
    (tmp_path / "MLmodel").write_text("a", encoding="utf-8")
    (tmp_path / "model.skops").write_bytes(b"one")
    first = folder_digest(tmp_path)
    (tmp_path / "model.skops").write_bytes(b"two")
    assert folder_digest(tmp_path) != first
    (tmp_path / "model.skops").write_bytes(b"one")
    assert folder_digest(tmp_path) == first
    (tmp_path / "registered_model_meta").write_text("model_name: pumps\n", encoding="utf-8")
    assert folder_digest(tmp_path) == first, "MLflow writes this file into a local store's folder on load"
    (tmp_path / "extra.txt").write_text("", encoding="utf-8")
    assert folder_digest(tmp_path) != first
    (tmp_path / "link").symlink_to(tmp_path / "MLmodel")
    with pytest.raises(UntrustedModel, match="symbolic link"):
        folder_digest(tmp_path)


def test_provenance_with_a_key_needs_a_signature_of_this_model_and_digest() -> None:
    """With a key: unsigned, signed for another model, or signed with another key is refused."""
    key, digest = b"key", "d" * 64
    good = sign(key, "pumps", digest)
    assert provenance_refusal("pumps", digest, digest, good, "retrainer", key) is None
    assert "no signature" in str(provenance_refusal("pumps", digest, digest, None, "retrainer", key))
    assert "does not match" in str(provenance_refusal("pumps", digest, digest, sign(key, "fans", digest), None, key))
    assert "does not match" in str(provenance_refusal("pumps", digest, digest, sign(b"other", "pumps", digest),
                                                      "retrainer", key))
    assert "digest mismatch" in str(provenance_refusal("pumps", "e" * 64, digest, good, "retrainer", key))


def test_provenance_without_a_key_falls_back_to_the_tag_but_still_checks_the_digest() -> None:
    digest = "d" * 64
    assert provenance_refusal("pumps", digest, digest, None, "retrainer", None) is None
    assert provenance_refusal("pumps", digest, None, None, "retrainer", None) is None  # a version made before digests
    assert "not registered by retrainer" in str(provenance_refusal("pumps", digest, None, None, None, None))
    assert "digest mismatch" in str(provenance_refusal("pumps", digest, "e" * 64, None, "retrainer", None))


class Doubler(TransformerMixin, BaseEstimator):
    """A team's own transformer class: not trusted until the config lists it."""

    def fit(self, inputs: object, target: object = None) -> Doubler:
        return self

    def transform(self, inputs: np.ndarray) -> np.ndarray:
        return inputs * 2


def test_types_outside_the_trusted_list_are_named_and_never_loaded(tmp_path: Path) -> None:
    """A model holding a class skops does not trust is refused with its name; listed in
    model.trusted_types, it loads."""
    model = Doubler()
    path = tmp_path / "model.skops"
    skops.io.dump(model, path)
    unknown = skops.io.get_untrusted_types(file=path)
    assert unknown, "the example must hold a type skops does not trust by default"
    with pytest.raises(UntrustedModel, match="list them in model.trusted_types") as refused:
        load_skops(path, trusted_types([]))
    assert all(name in str(refused.value) for name in unknown)
    loaded = load_skops(path, trusted_types(unknown))
    assert type(loaded).__name__ == "Doubler"


def test_a_file_that_is_not_a_skops_archive_is_a_one_line_refusal(tmp_path: Path) -> None:
    path = tmp_path / "model.skops"
    path.write_bytes(b"\x80\x04not a zip")
    with pytest.raises(UntrustedModel, match="not a readable skops file"):
        load_skops(path, trusted_types([]))
