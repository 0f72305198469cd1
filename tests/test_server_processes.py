"""`avatarlab serve --processes 2` (server/processes.py): two server processes on one port, the kernel spreading
connections across them, every session served whole, an avatar made through one opened by the other, and one
SIGTERM draining both; the shared store is swept of crash leftovers once, before either process starts."""
from __future__ import annotations

import json
import pathlib
import time

import grpc
import numpy as np

from avatar_service.api import pb, pb_grpc
from avatar_service.responses import frames
from reliability_support import ServerProcess


def _children(pid: int) -> list[int]:
    return [int(c) for t in pathlib.Path(f"/proc/{pid}/task").iterdir() for c in (t / "children").read_text().split()]


def test_two_processes_share_the_port_and_drain_together(tmp_path, portrait_bytes, speech_16k):
    leftover = tmp_path / "store" / ".staging-crashed"  # a half-written avatar from a crash
    leftover.mkdir(parents=True)
    server = ServerProcess(tmp_path / "store", args=("--processes", "2", "--log-format", "json"))
    try:
        assert not leftover.exists()  # swept once, before either process could be writing
        deadline = time.monotonic() + 120  # health answers once one process serves; the other loads meanwhile
        while server.log().count("listening on port") < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        avatar_id = server.stub().CreateAvatar(pb.CreateAvatarRequest(portrait_image=portrait_bytes)).avatar_id
        pcm = (np.clip(speech_16k[:16000], -1, 1) * 32767).astype("<i2").tobytes()
        config = pb.AnimateConfig(avatar_id=avatar_id, motion_only=True, video=pb.VideoOptions(fps=25),
                                  audio_format=pb.AudioFormat(encoding=pb.AUDIO_ENCODING_PCM_S16LE,
                                                              sample_rate_hz=16000, channels=1))
        counts = []
        for _ in range(16):  # each its own connection, as 16 game servers would be
            with grpc.insecure_channel(server.target, [("grpc.use_local_subchannel_pool", 1)]) as ch:
                reqs = [pb.AnimateRequest(config=config), pb.AnimateRequest(audio=pb.AudioChunk(data=pcm)),
                        pb.AnimateRequest(end_of_audio=pb.EndOfAudio())]
                counts.append(len(list(frames(pb_grpc.AvatarServiceStub(ch).Animate(iter(reqs))))))
        assert counts == [25] * 16  # 1 s at 25 fps, every session whole
        records = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
        served_by = {r["pid"] for r in records if "started" in r["msg"] and r.get("avatar_id") == avatar_id}
        # 16 connections over two processes all in one: a chance of 2 in 65536
        assert len(served_by) == 2, served_by
        second = served_by - {server.proc.pid}
        assert second <= set(_children(server.proc.pid))
    finally:
        rc = server.terminate()
    assert rc == 0
    assert not [k for k in second if pathlib.Path(f"/proc/{k}").exists()]  # the second process drained and gone
