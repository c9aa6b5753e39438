"""Read an offline W&B run back: the ``.wandb`` file is a LevelDB-style log of protobuf Records.

Layout (as written by wandb-core): a 7-byte file header (``:W&B``, magic 0xBEE1, version 0),
then 32 KiB blocks of chunks, each with a 7-byte header (crc32, length, type: 1 full, 2 first,
3 middle, 4 last); a chunk never crosses a block boundary and a block tail shorter than a
header is zero padding.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path

from wandb.proto import wandb_internal_pb2 as pb

BLOCK = 32768
HEADER = 7


def records(path: str | Path) -> Iterator[pb.Record]:
    """Every Record in a ``run-*.wandb`` file, in order."""
    data = Path(path).read_bytes()
    ident, magic, version = struct.unpack("<4sHB", data[:HEADER])
    assert (ident, magic, version) == (b":W&B", 0xBEE1, 0), "not a W&B run log"
    pos, parts = HEADER, []
    while pos + HEADER <= len(data):
        room = BLOCK - pos % BLOCK
        if room < HEADER:
            pos += room
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + HEADER])
        if kind == 0 and length == 0:  # zero padding up to the block's end
            pos += room
            continue
        parts.append(data[pos + HEADER : pos + HEADER + length])
        pos += HEADER + length
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(b"".join(parts))
            parts = []
            yield record


def history(path: str | Path) -> list[dict[str, object]]:
    """The logged history rows: ``{key: json-decoded value}`` per ``wandb.log`` call."""
    rows = []
    for r in records(path):
        if r.WhichOneof("record_type") == "history":
            rows.append({(i.key or "/".join(i.nested_key)): json.loads(i.value_json) for i in r.history.item})
    return rows


def _updates(path: str | Path, kind: str) -> dict[str, object]:
    """The last value of every key of ``config`` or ``summary`` update records, json-decoded."""
    out: dict[str, object] = {}
    for r in records(path):
        if r.WhichOneof("record_type") == kind:
            for i in getattr(r, kind).update:
                out[i.key or "/".join(i.nested_key)] = json.loads(i.value_json)
    return out


def config(path: str | Path) -> dict[str, object]:
    """The run config as last updated (``wandb.config``)."""
    return _updates(path, "config")


def summary(path: str | Path) -> dict[str, object]:
    """The run summary as last updated (``run.summary``)."""
    return _updates(path, "summary")


def run_info(path: str | Path) -> pb.RunRecord:
    """The run record: name, group, job_type, tags..."""
    for r in records(path):
        if r.WhichOneof("record_type") == "run":
            return r.run
    raise ValueError(f"no run record in {path}")


def run_file(run_dir: str | Path) -> Path:
    """The ``run-<id>.wandb`` log of an offline run directory."""
    (path,) = Path(run_dir).glob("run-*.wandb")
    return path

