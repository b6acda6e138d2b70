"""The promotion lock with Prefect's share: a global concurrency limit of one slot per model,
``retrainer-promote-<model>``, taken inside ``state.locks.promotion_lock`` so that the Prefect UI
shows a promotion under way.

The slot is taken second and is advisory: whoever holds the database or file lock is the only
promotion running, so a slot still taken then is a leaked one (a holder killed before its release
reached the server: a server without the lease repossessor service, such as
``prefect_test_harness``'s, never frees it). After ``PREFECT_SLOT_WAIT_SECONDS`` the promotion goes
on without the slot and says so in a warning, rather than waiting forever.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from retrainer.config import RetrainerConfig
from retrainer.state import locks

# A killed holder's Prefect slot is free again after this many seconds without a renewal, on a server
# that runs the lease repossessor service (`prefect server start` does).
PREFECT_LEASE_SECONDS = 60.0

# How long a promotion that already holds the database or file lock waits for the Prefect slot:
# a release in flight lands well within it; a slot taken longer than that has leaked.
PREFECT_SLOT_WAIT_SECONDS = 10.0


def prefect_limit_name(model: str) -> str:
    """The name of the model's Prefect concurrency limit: `retrainer-promote-<model>`."""
    # Limit names may not hold / % & > < and friends.
    return "retrainer-promote-" + re.sub(r"[^A-Za-z0-9_.-]+", "-", model)


@contextmanager
def promotion_lock(config: RetrainerConfig, timeout_seconds: float | None = None) -> Iterator[None]:
    """The model's promotion lock, then its Prefect slot when a Prefect server is configured
    (``PREFECT_API_URL`` set, as on a worker) and ``promotion.prefect_concurrency_limit`` is on."""
    use_prefect = config.promotion.prefect_concurrency_limit and bool(os.environ.get("PREFECT_API_URL"))
    with locks.promotion_lock(config, timeout_seconds):
        if not use_prefect:
            yield
            return
        with _prefect_slot(prefect_limit_name(config.registered_model)):
            yield


@contextmanager
def _prefect_slot(name: str) -> Iterator[None]:
    from prefect.client.orchestration import get_client
    from prefect.concurrency.sync import concurrency
    from prefect.exceptions import ObjectAlreadyExists

    # One slot, whatever someone set by hand: the UI shows one promotion of a model at a time.
    # Another process may create it between the read and the create of the upsert.
    with get_client(sync_client=True) as client, contextlib.suppress(ObjectAlreadyExists):
        client.upsert_global_concurrency_limit_by_name(name, 1)
    with ExitStack() as stack:
        try:
            # A failed lease renewal (the Prefect API away for a moment) must not cut a promotion
            # in half: the database or file lock already keeps promotions apart on its own.
            stack.enter_context(concurrency(name, occupy=1, timeout_seconds=PREFECT_SLOT_WAIT_SECONDS, strict=True,
                                            lease_duration=PREFECT_LEASE_SECONDS,
                                            raise_on_lease_renewal_failure=False))
        except TimeoutError:
            logging.getLogger("retrainer").warning(
                "retrainer: warning: the Prefect concurrency limit '%s' stayed taken for %g s although this "
                "promotion holds the model's lock: a leaked slot (free it with `prefect gcl update %s "
                "--active-slots 0`); promoting under the model's lock alone", name, PREFECT_SLOT_WAIT_SECONDS, name)
        yield
