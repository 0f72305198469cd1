"""The warp renderer: the person's own pixels, moved to the mouth geometry that speech asks for.

Per avatar pose (a portrait, or each frame of an idle video) a `WarpFace` holds the image's face mesh,
its triangulation (face/warp.py) and where its mouth stands in the motion basis: its own coefficients
and its estimated closed mouth. Per frame the speech model's motion (about a closed mouth, in units of
each component's spread) becomes a target mesh and the image is warped to it; a mouth that opens wider
than the image's own gets an interior (face/warp.py MouthInterior). Cost: about 1-3 ms a frame at
256 px on one core, no neural network but the speech model's small read-out.
"""
from __future__ import annotations

import dataclasses
import functools
import pathlib

import numpy as np

from avatar_service.face.mesh import FaceMesher, MeshError, mouth_opening
from avatar_service.face.motion import MotionBasis
from avatar_service.face.rig import CONFIG_NAME as RIG_NAME, MouthRig
from avatar_service.face.warp import MeshWarp, MouthInterior, WarpConfig, WarpResult
from avatar_service.model.motion import MotionPredictor
from avatar_service.model.motion_student import MotionStudent

EMBEDDED_MOTION = pathlib.Path(__file__).resolve().parents[1] / "assets" / "motion"


@dataclasses.dataclass
class MotionModel:
    """The lower-face basis, the speech -> motion predictor, the mouth rig (motion -> visemes and
    blendshapes, face/rig.py) and the predictor's log-mel student (model/motion_student.py: motion-only
    sessions without Whisper), saved side by side in one folder."""
    basis: MotionBasis
    predictor: MotionPredictor
    rig: MouthRig | None = None
    student: MotionStudent | None = None

    @classmethod
    def from_pretrained(cls, folder: str | pathlib.Path) -> "MotionModel":
        folder = pathlib.Path(folder)
        if not (folder / "motion_basis.json").exists():
            raise FileNotFoundError(f"{folder} has no motion model (motion_basis.json): run `avatarlab train motion`")
        basis = MotionBasis.from_pretrained(folder)
        rig = MouthRig.from_pretrained(folder, basis) if (folder / RIG_NAME).exists() else None
        student = MotionStudent.from_pretrained(folder) if MotionStudent.present(folder) else None
        return cls(basis, MotionPredictor.from_pretrained(folder), rig, student)

    @classmethod
    @functools.lru_cache(maxsize=1)
    def default(cls) -> "MotionModel":
        return cls.from_pretrained(EMBEDDED_MOTION)

    def features(self, sample_rate_hz: int = 16000, device: str = "cpu"):
        """The audio features the predictor reads (Whisper-tiny encoder states at the predictor's own
        settings, shared per process)."""
        from avatar_service.model.whisper import WhisperFeatures

        return WhisperFeatures.shared(self.predictor.config.features, sample_rate_hz, device.split(":")[0])

    def predict(self, windows: np.ndarray, audio16k: np.ndarray, start: int, stop: int, fps: float) -> np.ndarray:
        """(stop - start, K) motion of video frames [start, stop): the predictor's read-out of their
        feature windows, closed where the audio is silent (the model's own loudness gate, model/motion.py)."""
        return self.predict_gated(windows, audio16k, start, stop, fps)[0]

    def predict_gated(self, windows: np.ndarray, audio16k: np.ndarray, start: int, stop: int, fps: float
                      ) -> tuple[np.ndarray, np.ndarray]:
        """As `predict`, with the (stop - start,) loudness gate it applied (0 silent, 1 voiced). With a
        student whose `blend` is set, its motion is averaged in (held-out opening r 0.641 -> 0.652 at 0.4,
        docs/speech_to_motion.md); its look-ahead is within the teacher's, so its audio is always in."""
        gate = self.predictor.gate(audio16k, start, stop, fps)
        motion = self.predictor.predict(windows)
        if self.student is not None and self.student.config.blend > 0:
            s = self.student
            mine = s.predict(s.mel_windows(audio16k, s.mel_centres(np.arange(start, stop), fps)))
            motion = (1.0 - s.config.blend) * motion + s.config.blend * mine
        return motion * gate[:, None], gate

    def predict_clip(self, audio16k: np.ndarray, n_frames: int, fps: float) -> np.ndarray:
        """Offline: (n_frames, K) motion for a whole clip's audio, exactly as a stream gets it."""
        feat = self.features()
        spec = self.predictor.config.window
        windows = spec.gather(feat.all(audio16k), 0, spec.mel_centres(np.arange(n_frames), fps, feat), feat)
        return self.predict(windows, audio16k, 0, n_frames, fps)


def measure_mesh(image: np.ndarray) -> np.ndarray:
    """The one face mesh of an image (static mode), or MeshError saying why there is none."""
    with FaceMesher(static=True) as mesher:
        mesh = mesher(image)
    if mesh is None:
        raise MeshError("the face mesh found no face in the portrait, so its mouth cannot be animated; "
                        "use a clearer, more frontal image of the face")
    if not np.isfinite(mouth_opening(mesh)):
        raise MeshError("the face mesh found no usable mouth in the portrait")
    return mesh


def texture_meshes(textures: np.ndarray, required: bool = False) -> np.ndarray | None:
    """(P, 478, 3) face mesh of each avatar texture (an idle video's frames are tracked; a frame without
    a mesh takes its nearest neighbour's). None where no frame has one, unless `required` (MeshError)."""
    try:
        if len(textures) == 1:
            return measure_mesh(textures[0])[None]
        with FaceMesher(static=False) as mesher:
            found = [mesher(t) for t in textures]
    except MeshError:
        if required:
            raise
        return None
    ok = [i for i, m in enumerate(found) if m is not None]
    if not ok:
        if required:
            raise MeshError("the face mesh found no face in the idle video's frames, so its mouth cannot be animated")
        return None
    return np.stack([found[min(ok, key=lambda j: abs(j - i))] for i in range(len(found))]).astype(np.float32)


class WarpFace:
    def __init__(self, image: np.ndarray, mesh: np.ndarray, basis: MotionBasis, warp: WarpConfig = WarpConfig()):
        self.image, self.mesh, self.basis = image, np.asarray(mesh, np.float32), basis
        self.warper = MeshWarp(image, self.mesh, basis.vertices, warp)
        self.interior = MouthInterior(image, self.mesh)
        if warp.mouth_fill == "diffusion":
            from avatar_service.runtime.mouth_fill import DiffusionInterior, load_fill_model

            self.interior = DiffusionInterior(load_fill_model(warp.fill_model), image, self.mesh, self.interior)
        elif warp.mouth_fill != "plain":
            raise ValueError(f"unknown mouth_fill {warp.mouth_fill!r}: use 'plain' or 'diffusion'")
        self.coeffs = basis.coefficients(self.mesh)
        self.closed = basis.closed_coefficients(self.mesh)

    @property
    def rect(self) -> tuple[int, int, int, int]:
        """Everything a frame can change lies in here."""
        return self.warper.rect

    def target(self, delta: np.ndarray) -> np.ndarray:
        return self.basis.target_mesh(self.mesh, delta)

    def render_delta(self, delta: np.ndarray) -> WarpResult:
        """This image with its lower face moved by a coefficient change (absolute units)."""
        return self.render_target(self.target(delta))

    def render_target(self, target: np.ndarray) -> WarpResult:
        """This image warped onto a target image mesh (its lower face moved, the rest as measured)."""
        res = self.warper.warp(target)
        self.interior.fill(res.frame, target)
        return res

    def render(self, motion: np.ndarray) -> WarpResult:
        """motion (K,): about the closed mouth, in spread units (MotionPredictor.predict)."""
        return self.render_delta(self.closed + np.asarray(motion, np.float32) * self.basis.std - self.coeffs)


def bundled_face(texture_px: int, interpolation: int | None = None) -> np.ndarray:
    """The bundled portrait's (assets/astronaut.png) face window, RGB, as a texture_px square texture
    (cv2.INTER_AREA unless `interpolation` says otherwise)."""
    import cv2

    img = cv2.imread(str(EMBEDDED_MOTION.parent / "astronaut.png"))[..., ::-1]
    face = img[10:202, 90:282]  # the astronaut's head, 1.9 face widths as runtime/avatar_setup.py cuts one
    flags = cv2.INTER_AREA if interpolation is None else interpolation
    return np.ascontiguousarray(cv2.resize(face, (texture_px, texture_px), interpolation=flags))


def warmup_avatar(avatar, texture_px: int):
    """A copy of `avatar` showing the bundled portrait with its mesh, so a warm-up frame runs the whole
    warp path (triangulation, warp, interior) before the first session."""
    tex = bundled_face(texture_px)
    return dataclasses.replace(avatar, textures=tex[None], meshes=measure_mesh(tex)[None], derived={})
