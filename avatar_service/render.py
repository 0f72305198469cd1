"""`avatarlab render`: portrait + speech (or text) -> mp4 with sound, and/or the mouth's curves (visemes
and blendshapes, motion_curves.py) for baking into a 3D rig's clip, through the real gRPC path."""
from __future__ import annotations

import contextlib
import pathlib
import sys
import tempfile

from avatar_service.responses import items

# The curves are written once the line is done: no latency to keep, so frames come in the largest batches.
CURVE_FRAMES_PER_MESSAGE = 64


def register(sub) -> None:
    from avatar_service.face.warp import add_mouth_fill_argument

    p = sub.add_parser("render", help="make a talking-face mp4 from a portrait and a speech file (or text)")
    p.add_argument("--image", required=True, help="portrait (PNG/JPEG) or an idle video of the face")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--audio", help="speech file (wav, m4a, mp3, ...)")
    src.add_argument("--text", help="a line to speak (needs the speech extra)")
    p.add_argument("--voice", default="", help="voice id for --text")
    p.add_argument("-o", "--out", help="output .mp4")
    p.add_argument("--motion", help="write the mouth curves (one row per frame: time, visemes, blendshapes) to "
                                    "this .json or .csv; without -o the session is motion-only (no images)")
    p.add_argument("--server", help="HOST:PORT of a running server; default: an in-process server")
    p.add_argument("--token", help="bearer token for --server")
    p.add_argument("--model", default="default", help="in-process server's model: default, tiny or a folder")
    p.add_argument("--backend", default="torch", choices=["torch", "onnx"])
    p.add_argument("--renderer", default="warp", choices=["warp", "diffusion"],
                   help="in-process server's renderer: warp (the portrait's own pixels moved by speech) or diffusion")
    add_mouth_fill_argument(p)
    p.add_argument("--fps", type=int, default=25)
    p.add_argument("--size", type=int, default=256, help="output width and height in pixels")
    p.add_argument("--steps", type=int, default=0, help="sampler steps (0 = model default)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


@contextlib.contextmanager
def in_process_server(model: str, backend: str, renderer: str = "warp", **settings):
    """A real server on a free loopback port with a throw-away avatar store (`settings`: more
    ServerSettings fields and limits, by name)."""
    from avatar_service.server.inprocess import InProcessServer
    from avatar_service.server.settings import ServerSettings

    with tempfile.TemporaryDirectory(prefix="avatarlab-render-") as store:
        with InProcessServer(ServerSettings.load(env={}, listen="127.0.0.1:0", model=model, backend=backend,
                                                 store_dir=store, renderer=renderer, **settings)) as srv:
            yield srv.target


def run(args) -> int:
    import numpy as np

    from avatar_service.api import pb
    from avatar_service.client import AvatarLabClient
    from avatar_service.media import read_audio, write_mp4

    from avatar_service.motion_curves import FORMATS

    if not args.out and not args.motion:
        raise ValueError("say where to write: -o OUT.mp4 and/or --motion OUT.json|csv")
    if args.motion and pathlib.Path(args.motion).suffix.lower() not in FORMATS:
        raise ValueError(f"--motion {args.motion}: write .json or .csv")
    for path in (args.out, args.motion):
        if path:
            pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
    # baking curves offline: the Whisper front end (the better one; speed does not matter here)
    ctx = contextlib.nullcontext(args.server) if args.server else in_process_server(
        args.model, args.backend, args.renderer, motion_frontend="whisper", mouth_fill=args.mouth_fill)
    with ctx as target, AvatarLabClient(target, token=args.token) as client:
        image = pathlib.Path(args.image)
        is_video = image.suffix.lower() in (".mp4", ".mov", ".mkv", ".webm", ".avi")
        avatar = client.create_avatar(video=image) if is_video else client.create_avatar(image=image)
        video = pb.VideoOptions(fps=args.fps, width_px=args.size, height_px=args.size, frame_mode=pb.FRAME_MODE_DELTA,
                                pixel_format=pb.PIXEL_FORMAT_RGB8)
        gen = pb.GenerationOptions(seed=args.seed, sampler_steps=args.steps)
        if not args.out:
            return _curves_only(client, avatar.avatar_id, args, video, gen)
        if args.text:
            from avatar_service.speech.client import arrays_of, speak_stream
            responses = list(speak_stream(client, avatar.avatar_id, args.text, args.voice, video, gen))
            frames, audio, rate = arrays_of(responses)
        else:
            rate = 16000
            audio = read_audio(args.audio, rate)
            responses = list(client.animate_stream(avatar.avatar_id, audio, rate, video=video, generation=gen))
            frames = whole_frames(responses)
        write_mp4(args.out, frames, args.fps, np.asarray(audio, np.float32), rate)
        if args.motion:
            _write_curves(responses, args.motion)
    print(f"wrote {args.out} ({len(frames)} frames, {len(audio) / rate:.2f} s)", file=sys.stderr)
    return 0


def whole_frames(responses) -> list:
    from avatar_service.client import Surface

    surface, frames = None, []
    for kind, value in items(responses):
        if kind == "started":
            surface = Surface(value)
        elif kind == "frame":
            surface.apply(value)
            frames.append(surface.image.copy())
    return frames


def _write_curves(responses, path: str) -> int:
    from avatar_service.motion_curves import MotionCurves

    curves = MotionCurves()
    for kind, value in items(responses):
        if kind == "started":
            curves.started(value.video if hasattr(value, "audio_sample_rate_hz") else value)
        elif kind == "frame":
            curves.frame(value)
    curves.write(path)
    print(f"wrote {path} ({len(curves.rows)} frames of mouth curves)", file=sys.stderr)
    return 0


def _curves_only(client, avatar_id: str, args, video, gen) -> int:
    """A motion-only session: no image is made at all."""
    if args.text:
        from avatar_service.speech.client import speak_stream
        responses = speak_stream(client, avatar_id, args.text, args.voice, video, gen, motion_only=True,
                                 max_frames_per_message=CURVE_FRAMES_PER_MESSAGE)
    else:
        from avatar_service.media import read_audio
        responses = client.animate_stream(avatar_id, read_audio(args.audio, 16000), 16000, video=video, generation=gen,
                                          motion_only=True, max_frames_per_message=CURVE_FRAMES_PER_MESSAGE)
    return _write_curves(responses, args.motion)
