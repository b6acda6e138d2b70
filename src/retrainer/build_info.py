"""Which retrainer made a model: the installed version, and the git commit when it can be known."""

from __future__ import annotations

import functools
import json
import subprocess
from importlib import metadata
from pathlib import Path


@functools.lru_cache(maxsize=1)
def retrainer_version() -> str:
    """The installed version of retrainer, or 'unknown' when it is not installed as a package."""
    try:
        return metadata.version("retrainer")
    except metadata.PackageNotFoundError:
        return "unknown"


@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The commit retrainer was installed from: pip records it for an install from a git URL; an
    editable install from a checkout asks git. None when neither knows (a wheel, an image)."""
    try:
        direct = metadata.distribution("retrainer").read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        direct = None
    if direct:
        commit = json.loads(direct).get("vcs_info", {}).get("commit_id")
        if commit:
            return str(commit)
    try:
        answer = subprocess.run(["git", "-C", str(Path(__file__).resolve().parent), "rev-parse", "HEAD"],
                                capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    commit = answer.stdout.strip()
    return commit if answer.returncode == 0 and len(commit) == 40 else None
