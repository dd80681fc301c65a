"""`endpoints.yml`: where the custom-action server is.

Only `action_endpoint` matters to trainkit; the other sections Rasa reads (tracker
stores, event brokers, NLG servers) are ignored with a warning, so a Rasa project's file
works unchanged and nothing is silently taken to work.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from trainkit.data.yaml_io import expect_mapping, line_of, load_yaml, value_line
from trainkit.errors import DataError

DEFAULT_ENDPOINTS = "endpoints.yml"
DEFAULT_ACTION_TIMEOUT = 10.0
_ENV_VARIABLE = re.compile(r"\$\{([^}]+)\}")


@dataclass(frozen=True)
class ActionEndpoint:
    """The action server's webhook URL."""

    url: str
    timeout: float = DEFAULT_ACTION_TIMEOUT


def _expand(value: str, path: str | Path, line: int | None) -> str:
    """`${VAR}` from the environment, as Rasa does; an unset variable is an error."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise DataError(f"environment variable {name!r} used in the action endpoint is not set", path, line)
        return os.environ[name]

    return _ENV_VARIABLE.sub(replace, value)


def read_action_endpoint(path: str | Path) -> ActionEndpoint | None:
    """The `action_endpoint` of an endpoints file, None when it names none."""
    document = load_yaml(path)
    if document is None:
        return None
    document = expect_mapping(document, path, "endpoints.yml")
    for key in document:
        if key != "action_endpoint":
            warnings.warn(f"{path}:{line_of(document, key)}: '{key}' is not used by trainkit", stacklevel=2)
    section = document.get("action_endpoint")
    if section is None:
        return None
    line = line_of(document, "action_endpoint")
    section = expect_mapping(section, path, "action_endpoint", line)
    url = section.get("url")
    if not isinstance(url, str) or not url:
        raise DataError("action_endpoint needs a 'url' (e.g. http://localhost:5055/webhook)", path, line)
    url_line = value_line(section, "url") or line
    url = _expand(url, path, url_line)
    if urlparse(url).scheme not in ("http", "https") or not urlparse(url).netloc:
        raise DataError(f"action_endpoint url {url!r} must be an http:// or https:// URL", path, url_line)
    timeout = section.get("timeout", DEFAULT_ACTION_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise DataError("action_endpoint timeout must be a positive number of seconds", path,
                        value_line(section, "timeout") or line)
    return ActionEndpoint(url, float(timeout))


def find_action_endpoint(path: str | Path | None) -> ActionEndpoint | None:
    """The endpoint of `path`, or of `endpoints.yml` in the working directory if it exists."""
    if path is None:
        if not Path(DEFAULT_ENDPOINTS).is_file():
            return None
        path = DEFAULT_ENDPOINTS
    if not Path(path).is_file():
        raise DataError("endpoints file does not exist", path)
    return read_action_endpoint(path)
