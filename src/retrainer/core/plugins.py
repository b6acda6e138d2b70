"""The team's own code, named in the config as an import path `package.module:function`
(`model.estimator`; DESIGN "Config contracts"). Imported where the cycle needs it, never at
config load: a command that does not train must not need the training package installed."""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Callable
from typing import Any

from retrainer.errors import UserError

IMPORT_PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")


class PluginError(UserError):
    """An import path in the config that does not lead to a function; the message names the setting."""


def is_import_path(value: str) -> bool:
    """Whether a setting's value names user code (`package.module:function`) rather than a built-in name."""
    return ":" in value


def load_function(path: str, setting: str) -> Callable[..., Any]:
    """The callable at `path`; raises PluginError with one line naming `setting` when the path is
    malformed, the module cannot be imported, or it has no such callable."""
    if not IMPORT_PATH.match(path):
        raise PluginError(f"{setting} '{path}': not an import path of the form 'package.module:function'")
    module_name, function_name = path.split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise PluginError(f"{setting} '{path}': no module named '{exc.name}' "
                          "(is the package installed where retrainer runs?)") from None
    except Exception as exc:  # the team's module failing at import: its own message, in one line
        raise PluginError(f"{setting} '{path}': importing '{module_name}' raised {one_line(exc)}") from None
    function = getattr(module, function_name, None)
    if function is None:
        raise PluginError(f"{setting} '{path}': module '{module_name}' has no '{function_name}'")
    if not callable(function):
        raise PluginError(f"{setting} '{path}': '{function_name}' is a {type(function).__name__}, not a function")
    return function  # type: ignore[no-any-return]


def call_with(function: Callable[..., Any], **offered: Any) -> Any:
    """Call `function` with those of the `offered` keyword arguments its signature names (a factory
    may take `schema=` or nothing)."""
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):  # a builtin or C function without a signature: offer nothing
        return function()
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    return function(**{name: value for name, value in offered.items() if takes_any or name in parameters})


def one_line(exc: BaseException) -> str:
    """An exception as `Type: first line of its message`."""
    message = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {message[0]}" if message else type(exc).__name__
