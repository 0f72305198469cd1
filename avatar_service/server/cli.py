"""`avatarlab serve`."""
from __future__ import annotations

import asyncio
import sys


def register(sub) -> None:
    from avatar_service.face.warp import add_mouth_fill_argument

    p = sub.add_parser("serve", help="run the gRPC service")
    p.add_argument("--config", help="settings file (JSON); environment AVATARLAB_* and flags override it")
    p.add_argument("--listen", help="host:port (default 127.0.0.1:50051)")
    p.add_argument("--model", help="'default' (embedded), 'tiny' (random weights, for tests) or a model folder")
    p.add_argument("--backend", choices=["torch", "onnx"])
    p.add_argument("--device", help="cpu or cuda")
    p.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], help="torch backend precision (GPU: bfloat16)")
    p.add_argument("--store", dest="store_dir", help="avatar store directory (default ./avatars)")
    p.add_argument("--store-url", help="shared avatar registry, postgresql://user@host:port/db (overrides --store)")
    p.add_argument("--face-px", type=int, help="face texture size of new avatars (default 256)")
    p.add_argument("--renderer", choices=["warp", "diffusion"],
                   help="warp (default): the person's own pixels moved by speech; diffusion: the latent-diffusion generator")
    p.add_argument("--motion-model", help="the warp renderer's motion model folder (default: the embedded one)")
    p.add_argument("--motion-frontend", choices=["auto", "mel", "whisper"],
                   help="motion-only sessions' audio front end: the motion model's log-mel student (mel), its "
                        "Whisper teacher, or auto (default: mel when the model has a student)")
    add_mouth_fill_argument(p)
    p.add_argument("--grace", dest="grace_s", type=float, help="seconds to drain streams on SIGTERM")
    p.add_argument("--max-sessions", dest="max_concurrent_sessions", type=int, help="per server process")
    p.add_argument("--processes", type=int,
                   help="server processes sharing the port (default 1): each uses its own core; connections are "
                        "spread across them (docs/motion.md, many motion-only streams)")
    p.add_argument("--metrics-port", type=int, help="Prometheus metrics port (0 = off)")
    p.add_argument("--log-format", choices=["text", "json"], help="json: one object a line, with session ids")
    p.set_defaults(func=run)


def run(args) -> int:
    from avatar_service.errors import Unavailable
    from avatar_service.server import logs
    from avatar_service.server.app import serve_forever
    from avatar_service.server.settings import ServerSettings

    keys = ["listen", "model", "backend", "device", "dtype", "store_dir", "face_px", "grace_s", "max_concurrent_sessions",
            "metrics_port", "store_url", "log_format", "renderer", "motion_model", "motion_frontend",
            "mouth_fill", "processes"]
    settings = ServerSettings.load(args.config, **{k: getattr(args, k) for k in keys})
    logs.configure(settings.log_format)
    try:
        if settings.processes > 1:
            from avatar_service.server.processes import serve_processes

            serve_processes(settings)
        else:
            asyncio.run(serve_forever(settings))
    except Unavailable as e:  # e.g. the avatar registry stayed unreachable: one line, not a traceback
        print(f"avatarlab serve: error: {e.message}", file=sys.stderr)
        return 1
    return 0
