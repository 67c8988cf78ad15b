"""The quick hub check that every read of a hub model runs first (once per process).

Offline, transformers asks the hub for each file with five retries and minutes of back-off
before it fails; behind a firewall that swallows connections it waits longer still. So before
anything reads a hub id (the frame rule's video processor, the processor, the config, the
weights), `check_hub` asks the hub once, bounded by a few seconds in all (name lookup
included): a model that is not cached fails at once with one line saying what to do, and a
cached one is read from the cache alone (`hub_keywords` adds `local_files_only`).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from vidtt.errors import ModelLoadError

UNREACHABLE = (
    "cannot load {model!r}: the model hub ({endpoint}) cannot be reached and the model is not "
    "in the local cache; download it where there is network, or pass a local folder made with "
    "save_pretrained"
)
OFFLINE = (
    "cannot load {model!r}: offline mode is on (HF_HUB_OFFLINE=1) and the model is not in the "
    "local cache; unset HF_HUB_OFFLINE to download it, or pass a local folder made with "
    "save_pretrained"
)
TIMEOUT = 5.0  # seconds for the whole probe: name lookup, connection and the answer's headers
REMEMBERED = 60.0  # seconds a probe's answer stands for later reads in this process

_answers: dict[tuple[Any, ...], tuple[float, bool]] = {}
_lock = threading.Lock()


def looks_local(model: str) -> bool:
    """Whether `model` names a folder rather than a hub id (`org/name`)."""
    return model.startswith(("/", ".", "~")) or model.count("/") > 1 or "\\" in model


def is_hub_id(model: str) -> bool:
    """Whether `model` is read from the hub: not a folder, nor a path that exists."""
    return not looks_local(model) and not Path(model).expanduser().exists()


def check_hub(model: str, revision: str | None = None, timeout: float = TIMEOUT) -> bool:
    """Fail at once, not after minutes of retries, when a hub model is not cached and the hub
    cannot be reached (or offline mode is on). Returns whether the model must be read from
    the cache alone (cached, and the hub unreachable). The hub is asked once per endpoint
    and model (the answer stands for a minute), whichever step reads the model first."""
    if not is_hub_id(model):
        return False
    from huggingface_hub import constants

    endpoint, offline = constants.ENDPOINT, bool(constants.HF_HUB_OFFLINE)
    key = (endpoint, offline, constants.HF_HUB_CACHE, model, revision)
    with _lock:
        known = _answers.get(key)
        if known is not None and time.monotonic() - known[0] < REMEMBERED:
            return known[1]
    cached = is_cached(model, revision)
    if cached is None:  # a malformed id: let from_pretrained say what is wrong
        return False
    if offline:
        if not cached:
            raise ModelLoadError(OFFLINE.format(model=model))
        cache_only = False  # transformers reads the cache alone in offline mode already
    else:
        up = reachable(endpoint, timeout)
        if not up and not cached:
            raise ModelLoadError(UNREACHABLE.format(model=model, endpoint=endpoint))
        cache_only = not up
    with _lock:
        _answers[key] = (time.monotonic(), cache_only)
    return cache_only


def is_cached(model: str, revision: str | None) -> bool | None:
    """Whether the model's config is in the local hub cache (None for an id the cache
    refuses as malformed)."""
    from huggingface_hub import try_to_load_from_cache

    try:
        return isinstance(try_to_load_from_cache(model, "config.json", revision=revision), str)
    except Exception:
        return None


def reachable(url: str, timeout: float = TIMEOUT) -> bool:
    """Whether the hub at `url` answers an HTTP request within `timeout` seconds in all. A
    bare TCP connection is not enough: firewalls, captive portals and proxies accept
    connections for hosts they never reach. Any answer below 500 counts (a mirror's root may
    say 404); a proxy's 407 or a gateway's 5xx does not. Proxy variables are followed, as the
    hub client follows them. The probe runs in a daemon thread so that a name lookup that
    hangs (no timeout reaches it) costs no more than `timeout`."""
    answer: list[bool] = []

    def probe() -> None:
        try:
            import httpx

            status = httpx.head(url, timeout=timeout, follow_redirects=False).status_code
            answer.append(status < 500 and status != 407)
        except Exception:
            answer.append(False)

    thread = threading.Thread(target=probe, name="vidtt-hub-probe", daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(answer and answer[0])


def hub_keywords(model: str, revision: str | None, trust_remote_code: bool) -> dict[str, Any]:
    """What every `from_pretrained` of `model` takes: its revision, its remote-code choice and,
    when the hub check found the hub unreachable but the model cached, `local_files_only`
    (read from the cache at once, not after retries). Runs the hub check (once)."""
    keywords: dict[str, Any] = {"revision": revision, "trust_remote_code": trust_remote_code}
    if check_hub(model, revision):
        keywords["local_files_only"] = True
    return keywords


def forget() -> None:
    """Drop the remembered answers (for tests, or after the network changed)."""
    with _lock:
        _answers.clear()
