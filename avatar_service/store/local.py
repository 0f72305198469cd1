"""Avatar store in a local directory: one folder per avatar, published by an atomic rename."""
from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import re
import shutil
import threading
import uuid

from avatar_service.store.base import AvatarRecord

_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _fsync_dir(path: pathlib.Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalAvatarStore:
    def __init__(self, root: str | os.PathLike, sweep: bool = True):
        """`sweep`: remove crash leftovers now; off in processes that share the folder with one that
        already swept it (`serve --processes N`), since another process may be writing one right now."""
        self.root = pathlib.Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        # Half-written avatars from a crash are staging folders; they were never acknowledged.
        if sweep:
            for p in [*self.root.glob(".staging-*"), *self.root.glob(".trash-*")]:
                shutil.rmtree(p, ignore_errors=True)

    def _dir(self, avatar_id: str) -> pathlib.Path | None:
        return self.root / avatar_id if _ID.match(avatar_id or "") else None

    def put(self, record: AvatarRecord, state: bytes) -> None:
        final = self._dir(record.avatar_id)
        if final is None:
            raise ValueError(f"bad avatar id {record.avatar_id!r}")
        staging = self.root / f".staging-{uuid.uuid4().hex}"
        staging.mkdir()
        for name, data in (("state.npz", state), ("avatar.json", json.dumps(dataclasses.asdict(record)).encode())):
            with open(staging / name, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        _fsync_dir(staging)
        os.rename(staging, final)  # atomic publish: readers see all of it or none
        _fsync_dir(self.root)

    def get(self, avatar_id: str) -> AvatarRecord | None:
        d = self._dir(avatar_id)
        if d is None or not (d / "avatar.json").exists():
            return None
        try:
            return AvatarRecord(**json.loads((d / "avatar.json").read_text()))
        except FileNotFoundError:  # deleted meanwhile
            return None

    def load_state(self, avatar_id: str) -> bytes | None:
        d = self._dir(avatar_id)
        try:
            return (d / "state.npz").read_bytes() if d else None
        except FileNotFoundError:
            return None

    def list(self) -> list[AvatarRecord]:
        out = []
        for p in self.root.iterdir():
            if p.name.startswith(".") or not p.is_dir():
                continue
            rec = self.get(p.name)
            if rec:
                out.append(rec)
        return sorted(out, key=lambda r: (r.create_time_unix_ms, r.avatar_id))

    def count(self) -> int:
        return sum(1 for p in self.root.iterdir() if not p.name.startswith(".") and p.is_dir())

    def delete(self, avatar_id: str) -> bool:
        d = self._dir(avatar_id)
        if d is None or not d.exists():
            return False
        trash = self.root / f".trash-{uuid.uuid4().hex}"
        try:
            os.rename(d, trash)
        except FileNotFoundError:
            return False
        _fsync_dir(self.root)
        shutil.rmtree(trash, ignore_errors=True)
        return True
