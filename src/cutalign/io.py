"""Atomic file writes: a temporary file in the same directory, flushed and fsynced, then moved into place.

A reader, or a run resumed after a crash, sees either the old file or the new one, never half of one. The file
gets the mode of any new file under the process umask (0644 under the usual 022), as ``open()`` would give it:
the temporary file is created with 0666 and the umask applied by the kernel, not with ``tempfile``'s 0600.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path


def _create_temporary(path: Path) -> tuple[Path, int]:
    """A new, empty ``.<name>.<random>.tmp`` beside ``path``, opened for writing, mode 0666 less the umask.

    ``O_EXCL`` makes the name ours alone (another name is drawn in the unlikely case it is taken), and passing
    0666 lets the kernel apply the umask: reading the umask would mean setting it, which races with other threads.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL  # os.open descriptors are not inherited (PEP 446)
    while True:
        temporary = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            return temporary, os.open(temporary, flags, 0o666)
        except FileExistsError:
            continue


def write_text(path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically; the parent directories are created as needed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary, descriptor = _create_temporary(path)
    try:
        with open(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_json(path, value) -> None:
    write_text(path, json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n")


def write_jsonl(path, rows) -> None:
    write_text(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def read_json(path):
    return json.loads(Path(path).read_text(encoding="utf-8"))


def read_jsonl(path) -> list:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def read_yaml(path) -> dict:
    """The mapping in YAML file ``path`` (empty for an empty file); a missing or unreadable file, invalid YAML or
    anything but a mapping is a :class:`cutalign.errors.UsageError` naming the file."""
    import yaml

    from .errors import UsageError

    try:
        values = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"{path}: cannot read the config: {error}") from None
    except yaml.YAMLError as error:
        raise UsageError(f"{path}: invalid YAML: {error}") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise UsageError(f"{path}: the config must be a mapping of key: value")
    return values
