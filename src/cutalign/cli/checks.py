"""Checks the commands run before any model loads, so a mistake ends in one line, not a traceback or a hub retry."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import UsageError


def require_model(name: str, option: str = "--model") -> None:
    """Fail unless model ``name`` can load without the network: ``default`` (the embedded model, installed; also
    named by its upstream hub id), an existing directory (a saved adapter's base model too), or a hub name whose files are in the local Hugging Face
    cache.

    Without this check a missing directory fails deep inside transformers with a long traceback, and a misspelt hub
    name retries the hub for about a minute first.
    """
    from ..models import ModelNotFoundError, adapter_base, embedded_model_dir, is_default

    # is_default: also the embedded model's upstream hub id when the hub copy is not here, which is what an adapter
    # trained on the embedded model records as its base.
    if is_default(name):
        try:
            embedded_model_dir()
        except ModelNotFoundError as error:
            raise UsageError(f"{option} {name}: {error}") from None
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


REPORTING_PACKAGES = {
    "tensorboard": "'cutalign[tensorboard]'",
    "trackio": "'cutalign[trackio]'",
    "wandb": "wandb",
    "mlflow": "mlflow",
    "comet_ml": "comet_ml",
    "clearml": "clearml",
    "neptune": "neptune",
    "dvclive": "dvclive",
    "swanlab": "swanlab",
    "codecarbon": "codecarbon",
    "dagshub": "dagshub mlflow",
    "azure_ml": "azureml-core",
    "flyte": "flytekitplugins-deck-standard",
}
"""What to ``pip install`` for each integration ``report_to`` can name (cutalign's extras where it has one)."""


def require_reporting(report_to: list[str]) -> None:
    """Fail unless every integration in ``report_to`` (``TrainingArguments.report_to``, a list once parsed) can be
    used: its package is installed, as transformers' own availability check says.

    Without this check a missing package (``report_to: tensorboard`` without tensorboard) fails only when the
    Trainer is built, after the data is tokenized and the model loaded.
    """
    from transformers import integrations

    available = {
        "tensorboard": integrations.is_tensorboard_available,
        "trackio": integrations.is_trackio_available,
        "wandb": integrations.is_wandb_available,
        "mlflow": integrations.is_mlflow_available,
        "comet_ml": integrations.is_comet_available,
        "clearml": integrations.is_clearml_available,
        "neptune": integrations.is_neptune_available,
        "dvclive": integrations.is_dvclive_available,
        "swanlab": integrations.is_swanlab_available,
        "codecarbon": integrations.is_codecarbon_available,
        "dagshub": integrations.is_dagshub_available,
        "azure_ml": integrations.is_azureml_available,
        "flyte": integrations.is_flyte_deck_standard_available,
        "kubeflow": integrations.is_kubeflow_available,
    }
    for name in report_to or []:
        if name not in available:
            raise UsageError(f"--report_to {name}: not an integration transformers knows; use none or one of "
                             f"{', '.join(sorted(available))}")
        if not available[name]():
            if name == "kubeflow":
                raise UsageError("--report_to kubeflow: runs only inside a Kubeflow trainer job "
                                 "(KUBEFLOW_TRAINER_SERVER_URL is not set)")
            raise UsageError(f"--report_to {name}: {name} is not installed; pip install {REPORTING_PACKAGES[name]} "
                             "(or --report_to none)")


def require_supported_launch(use_cpu: bool) -> None:
    """Refuse an FSDP launch (``accelerate launch`` with ``fsdp2.yaml``, which sets ``ACCELERATE_USE_FSDP``) that
    would train on the CPU.

    accelerate runs FSDP only on accelerators: on the CPU (``use_cpu``, which CUTConfig turns on where there is no
    accelerator) it silently falls back to DDP, every process holding the whole model, which is not what the launch
    asked for.
    """
    if use_cpu and os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true":
        raise UsageError("FSDP runs only on GPUs (accelerate would fall back to unsharded DDP on the CPU); on this "
                         "machine launch with configs/accelerate/ddp.yaml, zero2.yaml or zero3.yaml instead")


def leave_process_group() -> None:
    """Under a multi-process launch, leave the process group together before the process exits.

    Left to interpreter shutdown, or destroyed by one process while another still wrote its report, a gloo process
    group was seen to abort its process ("terminate called without an active exception") after a finished run.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
