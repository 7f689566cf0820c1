"""Checks the commands run before any model loads, so a mistake ends in one line, not a traceback or a hub retry."""

from __future__ import annotations

from pathlib import Path

from ..errors import UsageError


def require_model(name: str, option: str = "--model") -> None:
    """Fail unless model ``name`` can load without the network: ``default`` (the embedded model, installed), an
    existing directory (a saved adapter's base model too), or a hub name whose files are in the local Hugging Face
    cache.

    Without this check a missing directory fails deep inside transformers with a long traceback, and a misspelt hub
    name retries the hub for about a minute first.
    """
    from ..models import DEFAULT_MODEL, ModelNotFoundError, adapter_base, embedded_model_dir

    if name == DEFAULT_MODEL:
        try:
            embedded_model_dir()
        except ModelNotFoundError as error:
            raise UsageError(f"{option} default: {error}") from None
    elif Path(name).is_dir():
        base = adapter_base(name)
        if base is not None:
            try:
                require_model(base, "its base model")
            except UsageError as error:
                raise UsageError(f"{option} {name} is a saved adapter; {error}") from None
    elif not in_hub_cache(name):
        from huggingface_hub.constants import HF_HUB_CACHE

        raise UsageError(f"{option} {name!r} is not 'default', an existing directory or a model in the local Hugging "
                         f"Face cache ({HF_HUB_CACHE}); give a model directory or download it first "
                         f"(hf download {name})")


def in_hub_cache(name: str) -> bool:
    """Whether the local Hugging Face cache holds hub model ``name`` (its config, or an adapter's), without a
    network call."""
    from huggingface_hub import try_to_load_from_cache
    from huggingface_hub.errors import HFValidationError

    for filename in ("config.json", "adapter_config.json"):
        try:
            found = try_to_load_from_cache(name, filename)
        except HFValidationError:  # not a valid repository name (e.g. a path to a missing directory)
            return False
        if isinstance(found, str):
            return True
    return False
