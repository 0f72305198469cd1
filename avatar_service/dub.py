"""`avatarlab dub`: re-voice a video at its original resolution.

warp (default): each frame keeps its own pixels; its face mesh (measured on an aligned crop, mapped
back to the frame) is moved so the mouth follows the new speech, about the person's own closed mouth
(measured over the video's least open frames). Nothing outside the face and a band around the jaw
changes. diffusion: every frame, mouth masked, is the pose; the mouth region is regenerated and
blended back.

Two passes over the video so memory stays flat for long 1080p inputs: the first finds and smooths
the face track (and measures the meshes), the second renders and writes in chunks."""
from __future__ import annotations

import math
import pathlib
import sys

import numpy as np


def register(sub) -> None:
    from avatar_service.face.warp import add_mouth_fill_argument

    p = sub.add_parser("dub", help="make a video's face say new speech (mouth regenerated, new audio muxed)")
    p.add_argument("--video", required=True, help="input video with one face")
    p.add_argument("--audio", required=True, help="new speech (any format PyAV reads)")
    p.add_argument("-o", "--out", required=True, help="output .mp4")
    p.add_argument("--model", default="default", help="'default', 'tiny' or a model folder")
    p.add_argument("--backend", default="torch", choices=["torch", "onnx"])
    p.add_argument("--steps", type=int, default=0, help="sampler steps (0 = model default)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--renderer", default="warp", choices=["warp", "diffusion"],
                   help="warp: move the person's own pixels (default); diffusion: regenerate the mouth region")
    p.add_argument("--motion", default="default", help="the warp renderer's motion model folder")
    add_mouth_fill_argument(p)
    p.add_argument("--trim", action="store_true",
                   help="end the video with the speech; by default later frames keep their original mouth")
    p.set_defaults(func=run)


def face_track(info, layout, fps: float):
    """(T, 2, 3) smoothed crop matrices, one per output frame; frames without a face reuse a neighbour's."""
    from avatar_service.media.clips import iter_frames
    from avatar_service.face import FaceDetector, align_matrix
    from avatar_service.face.align import smooth_matrices
    from avatar_service.face.detect import FaceError

    det = FaceDetector()
    mats: list[np.ndarray | None] = []
    for rgb in iter_frames(info, fps):
        faces = det.detect(rgb)
        mats.append(align_matrix(faces[0].landmarks, layout) if faces else None)
    found = [i for i, m in enumerate(mats) if m is not None]
    if not found:
        raise FaceError(f"{info.path}: no face in any frame")
    for i, m in enumerate(mats):
        if m is None:
            mats[i] = mats[min(found, key=lambda j: abs(j - i))]
    return smooth_matrices(np.stack(mats))


def open_video(video: str):
    """(ClipInfo, fps) of a video file, or DecodeError."""
    import av

    from avatar_service.media.clips import ClipInfo, DecodeError, first_video_time

    try:
        with av.open(video) as c:
            if not c.streams.video:
                raise DecodeError(f"{video}: no video stream")
            v = c.streams.video[0]
            fps = float(v.average_rate or v.guessed_rate or 25)
            return ClipInfo(video, video, v.codec_context.width, v.codec_context.height, fps, first_video_time(c)), fps
    except av.FFmpegError as e:
        raise DecodeError(f"{video}: unreadable video ({e})") from None


def frame_meshes(info, mats: np.ndarray, layout, fps: float, max_frames: int) -> np.ndarray:
    """(T, 478, 3) face mesh of each frame in frame pixels, measured on the aligned crop at 256 px (the
    face mesh wants the face large) and mapped back; frames without one take a neighbour's."""
    import cv2

    from avatar_service.face.mesh import FaceMesher, MeshError
    from avatar_service.media.clips import iter_frames

    scale = 256 / layout.crop_px
    out: list[np.ndarray | None] = []
    with FaceMesher(static=False) as mesher:
        for rgb, m in zip(iter_frames(info, fps, max_frames), mats):
            m256 = (m * scale).astype(np.float32)
            mesh = mesher(cv2.warpAffine(rgb, m256, (256, 256), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE))
            if mesh is not None:
                inv = cv2.invertAffineTransform(m256)
                mesh = np.concatenate([mesh[:, :2] @ inv[:, :2].T + inv[:, 2], mesh[:, 2:] / scale], 1)
            out.append(mesh)
    found = [i for i, m in enumerate(out) if m is not None]
    if not found:
        raise MeshError(f"{info.path}: the face mesh found no face to animate")
    return np.stack([out[min(found, key=lambda j: abs(j - i))] for i in range(len(out))]).astype(np.float32)


def warp_frames(frames, meshes: np.ndarray, motion_model, speech_motion: np.ndarray, mouth_fill: str = "plain"):
    """Yield each frame with its lower face moved to the speech's motion (frames past the speech: as
    they are). The closed mouth is the person's own: the mean over the video's least open frames."""
    from avatar_service.face.mesh import mouth_opening
    from avatar_service.face.warp import WarpConfig
    from avatar_service.runtime.warp_renderer import WarpFace

    basis = motion_model.basis
    coeffs = basis.coefficients(meshes)
    opening = np.array([mouth_opening(m) for m in meshes])
    closed = coeffs[opening <= np.quantile(opening, 0.2)].mean(0)
    for k, rgb in enumerate(frames):
        if k >= len(speech_motion):
            yield rgb
            continue
        face = WarpFace(rgb, meshes[k], basis, WarpConfig(mouth_fill=mouth_fill))
        yield face.render_delta(closed + speech_motion[k] * basis.std - coeffs[k]).frame


def dub(video: str, audio_path: str, out: str, model: str = "default", backend_name: str = "torch",
        steps: int = 0, seed: int = 0, trim: bool = False, chunk: int = 32, log=print,
        renderer: str = "warp", motion: str = "default", mouth_fill: str = "plain") -> dict:
    import cv2
    from tqdm import tqdm

    from avatar_service.face.align import warp_to_crop
    from avatar_service.media.clips import iter_frames
    from avatar_service.media import read_audio, write_mp4
    from avatar_service.model.features import clip_windows
    from avatar_service.runtime.avatar import AvatarState, lip_anchor, lip_points, masked_region
    from avatar_service.runtime.calibration import calibrate
    from avatar_service.runtime.models import load_backend
    from avatar_service.runtime.sampler import sample_latents

    info, fps = open_video(video)
    backend = load_backend(model, backend_name)
    cfg = backend.config
    layout = cfg.layout
    steps = steps or cfg.serving.sampling.default_steps
    speech = read_audio(audio_path, cfg.mel.sample_rate_hz)
    mats = face_track(info, layout, fps)
    n_video = len(mats)
    n_speech = math.ceil(len(speech) / cfg.mel.sample_rate_hz * fps - 1e-9)
    n_gen = min(n_video, n_speech)
    n_out = n_gen if trim else n_video
    out_audio = speech[: int(n_out / fps * cfg.mel.sample_rate_hz)]
    pathlib.Path(out).parent.mkdir(parents=True, exist_ok=True)
    rate = round(fps) if abs(fps - round(fps)) < 0.01 else fps
    if renderer == "warp":
        from avatar_service.runtime.warp_renderer import MotionModel

        mm = MotionModel.default() if motion == "default" else MotionModel.from_pretrained(motion)
        meshes = frame_meshes(info, mats, layout, fps, n_out)
        frames = tqdm(iter_frames(info, fps, max_frames=n_out), total=n_out, desc="dub", unit="frame", file=sys.stderr)
        write_mp4(out, warp_frames(frames, meshes, mm, mm.predict_clip(speech, n_gen, fps), mouth_fill), rate, out_audio,
                  cfg.mel.sample_rate_hz)
        log(f"wrote {out}: {n_out} frames at {fps:g} fps, mouth moved on {n_gen}", file=sys.stderr)
        return {"frames": n_out, "generated": n_gen, "fps": fps}
    windows = clip_windows(speech, n_gen, fps, cfg.feature_extractor(), cfg.window)
    noise = np.random.default_rng(seed).standard_normal(cfg.latent_shape).astype(np.float32)
    frames_iter = iter_frames(info, fps, max_frames=n_out)
    z_ref = anchor = fit = None

    def generate():
        nonlocal z_ref
        bar = tqdm(total=n_out, desc="dub", unit="frame", file=sys.stderr)
        buf: list[np.ndarray] = []
        for k, rgb in enumerate(frames_iter):
            buf.append(rgb)
            if len(buf) == chunk or k == n_out - 1:
                start = k + 1 - len(buf)
                yield from _chunk(buf, start)
                bar.update(len(buf))
                buf = []
        bar.close()

    def _chunk(buf, start):
        nonlocal z_ref, anchor, fit
        gen_n = max(0, min(len(buf), n_gen - start))
        if gen_n == 0:
            yield from buf
            return
        m = mats[start:start + gen_n]
        crops = [warp_to_crop(f, mm, layout) for f, mm in zip(buf, m)]
        regions, masked = zip(*(masked_region(c, layout) for c in crops))
        first = z_ref is None
        if first:  # identity (and the lips' rest shape) from the video's first frame
            z_ref = backend.encode(np.stack(regions[:1]))[0]
            anchor = lip_anchor(crops[0], backend.lip_rest)
        z_m = backend.encode(np.stack(masked))
        if first:  # the first frame's own pose is the one calibration draws
            fit = calibrate(backend, crops[0], z_ref, z_m[0], anchor)
        tokens, offsets = backend.audio(windows[start:start + gen_n])
        z0 = sample_latents(backend, np.repeat(noise[None], gen_n, 0), z_m, np.repeat(z_ref[None], gen_n, 0),
                            tokens, steps, cfg.serving.sampling.default_guidance,
                            lip_points=lip_points(anchor, offsets, backend.lip_rest))
        gen = backend.decode(z0)
        # The server's compositing, with the whole source frame as the texture: no rescaling, original resolution.
        state = AvatarState(textures=np.stack(buf[:gen_n]),
                            crop_to_texture=np.stack([cv2.invertAffineTransform(mm) for mm in m]).astype(np.float32),
                            z_masked=z_m, z_ref=z_ref, layout=layout, mouth_fit=fit)
        for i in range(gen_n):
            yield state.composite(i, gen[i])[0]
        yield from buf[gen_n:]

    write_mp4(out, generate(), rate, out_audio, cfg.mel.sample_rate_hz)
    log(f"wrote {out}: {n_out} frames at {fps:g} fps, mouth regenerated on {n_gen}", file=sys.stderr)
    return {"frames": n_out, "generated": n_gen, "fps": fps}


def run(args) -> int:
    dub(args.video, args.audio, args.out, args.model, args.backend, args.steps, args.seed, args.trim,
        renderer=args.renderer, motion=args.motion, mouth_fill=args.mouth_fill)
    return 0
