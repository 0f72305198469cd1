"""Avatar creation (once per avatar): find and align the face in each frame, cut the face texture,
encode the reference and pose latents, and calibrate the mouth -> an AvatarState."""
from __future__ import annotations

import cv2
import numpy as np

from avatar_service.face.align import FaceLayout, align_matrix, smooth_matrices, warp_to_crop
from avatar_service.face.detect import FaceDetector, FaceError
from avatar_service.runtime.avatar import AvatarState, lip_anchor, masked_region
from avatar_service.runtime.backend import Backend
from avatar_service.runtime.calibration import calibrate
from avatar_service.runtime.warp_renderer import texture_meshes


def texture_window(boxes: np.ndarray, image_hw: tuple[int, int], scale: float = 1.9) -> np.ndarray:
    """A square source window around all face boxes (x, y, w, h): (x0, y0, side)."""
    cx = float(np.mean(boxes[:, 0] + boxes[:, 2] / 2))
    cy = float(np.mean(boxes[:, 1] + boxes[:, 3] / 2))
    side = scale * float(np.max(np.maximum(boxes[:, 2], boxes[:, 3])))
    side = min(side, float(max(image_hw)))
    return np.array([cx - side / 2, cy - side / 2 - 0.05 * side, side], np.float64)


def prepare_avatar(backend: Backend, frames: list[np.ndarray], texture_px: int,
                   detector: FaceDetector | None = None, min_face_px: int = 48, require_mesh: bool = False) -> AvatarState:
    """Frames (one portrait, or an idle video's frames) -> AvatarState. Raises FaceError (MeshError, a
    FaceError, when `require_mesh` and the face mesh finds no mouth to animate: the warp renderer needs it)."""
    layout: FaceLayout = backend.config.layout
    detector = detector or FaceDetector()
    faces = []
    for i, f in enumerate(frames):
        if len(frames) == 1:
            faces.append(detector.one_face(f, min_face_px))
        else:
            found = detector.detect(f)
            faces.append(found[0] if found else None)
    if not any(faces):
        raise FaceError("no face found in any frame of the video")
    if len(frames) > 1 and faces[0] is None:
        raise FaceError("no face in the video's first frame: trim the video to start on the face")
    for i in range(1, len(faces)):  # a missed detection reuses the previous frame's face
        faces[i] = faces[i] or faces[i - 1]
    if min(faces[0].box[2], faces[0].box[3]) < min_face_px:
        raise FaceError(f"face is smaller than {min_face_px} px")
    matrices = smooth_matrices(np.stack([align_matrix(f.landmarks, layout) for f in faces]))
    x0, y0, side = texture_window(np.array([f.box for f in faces]), frames[0].shape[:2])
    s = texture_px / side
    src_to_tex = np.array([[s, 0, -x0 * s], [0, s, -y0 * s]], np.float32)
    textures, crop_to_tex, regions, masked = [], [], [], []
    anchor = reference = None
    for f, m in zip(frames, matrices):
        textures.append(cv2.warpAffine(f, src_to_tex, (texture_px, texture_px),
                                       flags=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE))
        inv = cv2.invertAffineTransform(m)  # crop -> source
        crop_to_tex.append((np.vstack([src_to_tex, [0, 0, 1]]) @ np.vstack([inv, [0, 0, 1]]))[:2])
        crop = warp_to_crop(f, m, layout)
        if reference is None:  # the first frame is the reference
            reference = crop
            anchor = lip_anchor(crop, backend.lip_rest)
        r, mr = masked_region(crop, layout)
        regions.append(r)
        masked.append(mr)
    meshes = texture_meshes(np.stack(textures), require_mesh)  # None without mediapipe, unless required
    z_masked = np.concatenate([backend.encode(np.stack(masked[i:i + 16])) for i in range(0, len(masked), 16)])
    z_ref = backend.encode(regions[0][None])[0]
    return AvatarState(textures=np.stack(textures), crop_to_texture=np.stack(crop_to_tex).astype(np.float32),
                       z_masked=z_masked.astype(np.float32), z_ref=z_ref.astype(np.float32), layout=layout,
                       lip_anchor=anchor, mouth_fit=calibrate(backend, reference, z_ref, z_masked[0], anchor),
                       meshes=meshes)

