"""A Node.js client that knows only the .proto creates an avatar and animates it (issue 2's 'any gRPC language')."""
import json
import math
import pathlib
import shutil
import subprocess

import pytest

from avatar_service.media import read_audio
from conftest import ASSETS

NODE_DIR = pathlib.Path(__file__).parent / "node_client"


def test_node_client_from_proto_alone(server, tmp_path):
    if not shutil.which("node") or not (NODE_DIR / "node_modules" / "@grpc" / "grpc-js").exists():
        pytest.skip("node or tests/node_client/node_modules is absent (run `npm ci --prefix tests/node_client`)")
    audio = read_audio(ASSETS / "demo_line.wav")[:16000]
    raw = tmp_path / "a.s16le"
    raw.write_bytes((audio * 32767).astype("<i2").tobytes())
    out = subprocess.run(["node", str(NODE_DIR / "client.js"), server.target, str(ASSETS / "astronaut.png"), str(raw)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["started"] == {"fps": 25, "width": 64, "height": 64}
    assert summary["frames"] == math.ceil(1.0 * 25) == summary["ended"]["frames_sent"]
    assert summary["pts"] == sorted(summary["pts"])
