"""Every limit and location in one place, read from environment variables with defaults.

| variable | default | meaning |
|---|---|---|
| PLAYGROUND_HOME | ``.playground`` in the working dir | root for runs and data |
| PLAYGROUND_DATA_DIR | ``$PLAYGROUND_HOME/data`` | torchvision data sets (MNIST, CIFAR-10...) |
| PLAYGROUND_RUN_DIR | ``$PLAYGROUND_HOME/runs`` | SQLite run store and saved designs |
| PLAYGROUND_MAX_PARAMS | 50,000,000 | largest model a training run may use |
| PLAYGROUND_MAX_STEPS | 20,000 | most optimiser steps per run |
| PLAYGROUND_MAX_WALL_S | 900 | a run is stopped after this many seconds |
| PLAYGROUND_MAX_QUEUED | 16 | queued or running runs per user (an experiment suite has up to 12) |
| PLAYGROUND_WORKERS | 1 | worker processes on CPU (one per GPU on CUDA) |
| PLAYGROUND_DEVICE | auto | ``auto`` (cuda, then mps, then cpu), ``cpu``, ``cuda``, ``cuda:1``... |
| PLAYGROUND_MAX_UPLOAD_BYTES | 262,144 | largest spec file accepted by upload or CLI |
| PLAYGROUND_HEARTBEAT_TIMEOUT_S | 30 | a running run silent this long has lost its process |
| PLAYGROUND_DB_URL | SQLite in the run dir | e.g. ``postgresql+psycopg://user@host/db`` |
| PLAYGROUND_RUNNER | local | where trainings run: ``local`` (worker processes) or ``ray`` |
| PLAYGROUND_RAY_ADDRESS | (empty) | embedded Ray; ``auto``: ``ray start`` here; ``ray://h:10001`` |
| PLAYGROUND_CPUS_PER_RUN | 1 | CPU cores one run asks for |
| PLAYGROUND_RAY_CONNECT_TIMEOUT_S | 60 | give up reaching a Ray cluster after this long |
| PLAYGROUND_GPUS_PER_RUN | 0.25 | share of a GPU one run asks for (0.25: four runs per GPU) |
| PLAYGROUND_CLASS_CODE | (empty) | when set, students enter it once to claim a name |
| PLAYGROUND_TEACHER_CODE | (empty) | unlocks the Teacher page; empty: no teacher's room |
| PLAYGROUND_MAX_CHECKPOINT_MB | 64 | largest weights a run keeps (final and best); 0: none |
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    try:
        return int(raw.replace("_", "").replace(",", "")) if raw else default
    except ValueError:
        return default


@dataclass(frozen=True)
class Settings:
    home: Path
    data_dir: Path
    run_dir: Path
    max_params: int
    max_steps: int
    max_wall_s: int
    max_queued: int
    workers: int
    device: str
    max_upload_bytes: int
    heartbeat_timeout_s: int  # a training process beats about 6x per timeout
    db_url: str  # empty: the SQLite file in run_dir
    runner: str  # "local" or "ray"
    ray_address: str
    cpus_per_run: float
    gpus_per_run: float
    class_code: str = ""  # empty: names are claimed without a code
    teacher_code: str = ""  # empty: nobody can unlock the teacher's room
    max_checkpoint_mb: float = 64.0  # weights larger than this are not kept; 0: none are


def _float(name: str, default: float, low: float, high: float) -> float:
    raw = os.environ.get(name, "")
    try:
        value = float(raw) if raw else default
    except ValueError:
        return default
    return min(high, max(low, value)) if value == value else default


def get_settings() -> Settings:
    """Read the settings now (tests change the environment between calls)."""
    home = Path(os.environ.get("PLAYGROUND_HOME", ".playground")).expanduser()
    return Settings(
        home=home,
        data_dir=Path(os.environ.get("PLAYGROUND_DATA_DIR", home / "data")).expanduser(),
        run_dir=Path(os.environ.get("PLAYGROUND_RUN_DIR", home / "runs")).expanduser(),
        max_params=_int("PLAYGROUND_MAX_PARAMS", 50_000_000),
        max_steps=_int("PLAYGROUND_MAX_STEPS", 20_000),
        max_wall_s=_int("PLAYGROUND_MAX_WALL_S", 900),
        max_queued=_int("PLAYGROUND_MAX_QUEUED", 16),
        workers=max(1, _int("PLAYGROUND_WORKERS", 1)),
        device=os.environ.get("PLAYGROUND_DEVICE", "auto"),
        max_upload_bytes=_int("PLAYGROUND_MAX_UPLOAD_BYTES", 262_144),
        heartbeat_timeout_s=max(1, _int("PLAYGROUND_HEARTBEAT_TIMEOUT_S", 30)),
        db_url=os.environ.get("PLAYGROUND_DB_URL", "").strip(),
        runner=os.environ.get("PLAYGROUND_RUNNER", "local").strip().lower() or "local",
        ray_address=os.environ.get("PLAYGROUND_RAY_ADDRESS", "").strip(),
        cpus_per_run=_float("PLAYGROUND_CPUS_PER_RUN", 1.0, 0.0, 1024.0),
        gpus_per_run=_float("PLAYGROUND_GPUS_PER_RUN", 0.25, 0.0, 64.0),
        class_code=os.environ.get("PLAYGROUND_CLASS_CODE", "").strip(),
        teacher_code=os.environ.get("PLAYGROUND_TEACHER_CODE", "").strip(),
        max_checkpoint_mb=_float("PLAYGROUND_MAX_CHECKPOINT_MB", 64.0, 0.0, 4096.0),
    )
