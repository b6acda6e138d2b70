"""The production flows with Prefect taken out: every flow and task of retrainer called as the
plain function it wraps (no runs, states, artifacts or API calls).

Used where the same cycle must be replayed many times and Prefect's fixed ~0.7 s per cycle would
dominate (a threshold sweep), and to measure that cost (benchmarks/orchestration_overhead.py,
which also checks that both modes take the same decisions). Not thread-safe: it swaps module
attributes for the duration of the `with` block.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


def _direct(function: Callable[..., Any]) -> Callable[..., Any]:
    """A flow or task called as its plain function; `return_state=True` callers get a bare State."""
    from prefect.states import Completed, Failed

    def call(*args: Any, return_state: bool = False, **kwargs: Any) -> Any:
        if not return_state:
            return function(*args, **kwargs)
        try:
            return Completed(data=function(*args, **kwargs))
        except Exception as exc:
            return Failed(data=exc)

    return call


@contextmanager
def without_prefect() -> Iterator[None]:
    """Every flow and task of retrainer as its plain function, and no Prefect artifacts."""
    from prefect import Flow, Task

    import retrainer.pipeline.flows as flows
    import retrainer.pipeline.tasks as tasks

    saved: list[tuple[Any, str, Any]] = []
    for module in (flows, tasks):
        for name, value in list(vars(module).items()):
            if isinstance(value, (Flow, Task)):
                saved.append((module, name, value))
                setattr(module, name, _direct(value.fn))
    for name in ("create_markdown_artifact", "create_table_artifact", "create_link_artifact"):
        saved.append((tasks, name, getattr(tasks, name)))
        setattr(tasks, name, lambda *args, **kwargs: None)
    try:
        yield
    finally:
        for module, name, value in saved:
            setattr(module, name, value)
