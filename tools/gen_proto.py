"""Generate the Python stubs in avatar_service/api/ from protos/.

Run `python tools/gen_proto.py` after editing a .proto; tests/test_contract.py checks the committed
stubs match. protoc writes absolute imports (`from avatarlab.v1 import ...`); they are rewritten to
the package path so the stubs import without touching sys.path.
"""
from __future__ import annotations

import pathlib
import re
import sys

from grpc_tools import protoc
import grpc_tools

ROOT = pathlib.Path(__file__).resolve().parents[1]
PROTOS = ROOT / "protos"
PACKAGE = "avatar_service.api"


def generate(out_dir: pathlib.Path) -> list[pathlib.Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    sources = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
    include = pathlib.Path(grpc_tools.__file__).parent / "_proto"
    rc = protoc.main(["protoc", f"-I{PROTOS}", f"-I{include}", f"--python_out={out_dir}",
                      f"--pyi_out={out_dir}", f"--grpc_python_out={out_dir}", *sources])
    if rc != 0:
        raise SystemExit(f"protoc failed with exit code {rc}")
    written = []
    for path in sorted(out_dir.rglob("*.py*")):
        text = path.read_text()
        text = re.sub(r"^from avatarlab\.v1 import", f"from {PACKAGE}.avatarlab.v1 import", text, flags=re.M)
        path.write_text(text)
        written.append(path)
    for d in [out_dir / "avatarlab", out_dir / "avatarlab" / "v1"]:
        (d / "__init__.py").touch()
    return written


if __name__ == "__main__":
    target = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "avatar_service" / "api"
    for p in generate(target):
        print(p.relative_to(target))
