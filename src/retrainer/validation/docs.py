"""Great Expectations Data Docs: the suite and recent validation results as a static site."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from retrainer.validation.runner import quiet_context


def build_data_docs(suite_json: dict[str, Any], batches: Sequence[tuple[str, pd.DataFrame]], out: Path) -> Path:
    """Render the suite, and its results on `batches`, with GE's own site builder; returns index.html."""
    import great_expectations as gx
    from great_expectations.checkpoint import UpdateDataDocsAction
    from great_expectations.core.run_identifier import RunIdentifier

    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    # A throwaway file context: Data Docs need GE's stores, the site itself goes to `out`.
    with tempfile.TemporaryDirectory(prefix="retrainer-gx-") as project:
        context = quiet_context(Path(project))
        site = "retrainer"
        context.add_data_docs_site(
            site_name=site,
            site_config={
                "class_name": "SiteBuilder",
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(out)},
            },
        )
        suite = context.suites.add(gx.ExpectationSuite(**suite_json))
        asset = context.data_sources.add_pandas("retrainer").add_dataframe_asset("batch")
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name="batch", data=asset.add_batch_definition_whole_dataframe("whole batch"),
                                    suite=suite)
        )
        checkpoint = context.checkpoints.add(
            gx.Checkpoint(name="retrainer-docs", validation_definitions=[definition],
                          actions=[UpdateDataDocsAction(name="update docs", site_names=[site])])
        )
        for name, frame in batches:
            checkpoint.run(batch_parameters={"dataframe": frame}, run_id=RunIdentifier(run_name=name))
        context.build_data_docs(site_names=[site])
    return out / "index.html"
