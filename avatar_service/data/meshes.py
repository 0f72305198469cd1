"""3D face meshes of a prepared dataset's aligned crops: DATASET/meshes/<clip id>.npz with
`mesh` float32 (T, 478, 3) in crop pixels (NaN rows where mediapipe found no face).

They feed the lower-face motion basis (face/motion.py) and the speech -> motion model, and give the
evaluation its measured (oracle) geometry. Extraction tracks through each clip (video mode), so it is
done once and cached; it shows progress per clip.
"""
from __future__ import annotations

import json
import os
import pathlib

import numpy as np
from tqdm import tqdm

from avatar_service.face.mesh import N_VERTICES, FaceMesher

# mediapipe finds faces in small crops less reliably; its landmark model works at 192 px anyway.
MESH_INPUT_PX = 256


def mesh_path(dataset: str | os.PathLike, clip_id: str) -> pathlib.Path:
    return pathlib.Path(dataset) / "meshes" / f"{clip_id}.npz"


def clip_meshes(crops: np.ndarray) -> np.ndarray:
    """(T, S, S, 3) aligned crops -> (T, 478, 3) meshes in crop pixels."""
    import cv2

    out = np.full((len(crops), N_VERTICES, 3), np.nan, np.float32)
    s = crops.shape[1]
    scale = MESH_INPUT_PX / s
    with FaceMesher(static=False) as mesher:
        for i, c in enumerate(crops):
            big = cv2.resize(c, (MESH_INPUT_PX, MESH_INPUT_PX), interpolation=cv2.INTER_CUBIC) if scale != 1 else c
            m = mesher(big)
            if m is not None:
                out[i] = m / scale
    return out


def extract(dataset: str | os.PathLike, force: bool = False) -> list[pathlib.Path]:
    """Write (or reuse) the mesh file of every clip in the dataset's manifest."""
    root = pathlib.Path(dataset)
    manifest = json.loads((root / "manifest.json").read_text())
    paths = []
    for c in tqdm(manifest["clips"], desc="face meshes", unit="clip"):
        out = mesh_path(root, c["id"])
        paths.append(out)
        if out.exists() and not force:
            continue
        with np.load(root / c["path"]) as z:
            meshes = clip_meshes(z["crops"])
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp.npz")
        np.savez_compressed(tmp, mesh=meshes)
        os.replace(tmp, out)
    return paths


def load(dataset: str | os.PathLike, clip_id: str) -> np.ndarray:
    with np.load(mesh_path(dataset, clip_id)) as z:
        return z["mesh"]
