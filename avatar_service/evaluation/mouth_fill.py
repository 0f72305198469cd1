"""The inner mouth seen up close: the warp renderer's oracle path (each clip's first frame warped to every
frame's measured geometry, placed like the real head) cut to mouth crops, for training the diffusion fill
(training/mouth_fill.py) and for looking at both fills beside the real mouth.

    avatarlab fill-sheet --clips DATASET --out DIR [--split val] [--fill-model default]

writes DIR/<clip>.png per clip (rows: real | plain fill | diffusion fill, on the clip's most open frames
where the renderer draws an interior), DIR/all.png (two frames of each clip) and DIR/scores.json: on
every frame where a fill runs, the error and texture inside the real inner lips (`interior_scores`).
Sheets of the shared clips stay out of the repository.
"""
from __future__ import annotations

import json
import pathlib

import numpy as np

from avatar_service.face.lips import LIP_INDICES
from avatar_service.face.mesh import INNER_LIP
from avatar_service.face.mouth_crop import MouthCrop, MouthCropConfig, inner_mask
from avatar_service.face.warp import WarpConfig


def oracle_pairs(crops: np.ndarray, real_mesh3d: np.ndarray, basis, ref_mesh: np.ndarray, crop_cfg: MouthCropConfig,
                 warp: WarpConfig = WarpConfig()):
    """One clip's frames where the warp renderer draws an interior (the target opens wider than the
    portrait's own mouth): a list of (rendered crop, real crop, target lip points crop-relative (40, 2),
    real inner-lip mask (px, px), frame index), and the portrait's own mouth crop."""
    import cv2

    from avatar_service.evaluation.evaluate import placements
    from avatar_service.runtime.warp_renderer import WarpFace

    face = WarpFace(crops[0], ref_mesh, basis, warp)
    ok = np.isfinite(real_mesh3d).all(axis=(1, 2))
    coeffs = basis.coefficients(real_mesh3d[ok])
    moves = placements(ref_mesh, real_mesh3d)
    px, s = crop_cfg.px, crops.shape[1]
    out = []
    for k, t in enumerate(np.flatnonzero(ok)):
        target = face.target(coeffs[k] - coeffs[0])
        if face.interior.strength(target) <= 0:
            continue
        frame = face.render_delta(coeffs[k] - coeffs[0]).frame
        a = moves[t]
        placed = cv2.warpAffine(frame, a, (s, s), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        placed_target = target[:, :2] @ a[:, :2].T + a[:, 2]
        crop = MouthCrop.of(placed_target, crop_cfg)
        lips = crop.points(placed_target[list(LIP_INDICES)]) / px
        inner = inner_mask(crop.points(real_mesh3d[t][list(INNER_LIP)]), (px, px), dilate_px=1.0)
        out.append((crop.cut(placed), crop.cut(crops[t]), lips.astype(np.float32), inner, int(t)))
    return out, MouthCrop.of(ref_mesh, crop_cfg).cut(crops[0])


def interior_scores(rows) -> dict[str, float]:
    """Over oracle_pairs rows: inside the real inner lips (their mask shrunk by two pixels, so the lips'
    edge does not count), the mean absolute RGB error (0-255) of the rendered crop against the real one,
    and the rendered crop's mean gradient magnitude there over the real one's (1 = as much texture)."""
    import cv2

    from avatar_service.evaluation.metrics import masked_error_and_detail

    l1, texture, n = masked_error_and_detail(
        (rendered, real, cv2.erode((inner > 0.5).astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool))
        for rendered, real, _, inner, _ in rows)
    return {"l1": l1, "texture": texture, "frames": n}


def fill_sheets(dataset: str | pathlib.Path, out_dir: str | pathlib.Path, fill_model: str = "default",
                split: str = "val", frames: int = 8, max_seconds: float = 6.0, log=print) -> dict:
    """Writes the sheets; returns interior scores per clip and overall (frames where a fill ran)."""
    from PIL import Image

    from avatar_service.data import meshes
    from avatar_service.runtime.warp_renderer import MotionModel, measure_mesh

    root, out = pathlib.Path(dataset), pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    manifest = json.loads((root / "manifest.json").read_text())
    fps = float(manifest.get("fps", 25))
    basis = MotionModel.default().basis
    crop_cfg = MouthCropConfig()
    overview, scores = [], {"plain": [], "diffusion": []}
    for c in (c for c in manifest["clips"] if c["split"] == split):
        with np.load(root / c["path"]) as z:
            crops = z["crops"][: int(max_seconds * fps)]
        mesh3d = meshes.load(root, c["id"])[: len(crops)]
        ref_mesh = measure_mesh(crops[0])
        rows = {fill: oracle_pairs(crops, mesh3d, basis, ref_mesh, crop_cfg, WarpConfig(mouth_fill=fill, fill_model=fill_model))[0]
                for fill in ("plain", "diffusion")}
        if not rows["plain"]:
            log(f"{c['id']}: the mouth never opens wider than the first frame's; no sheet")
            continue
        for fill, r in rows.items():
            scores[fill].append({"clip": c["id"], **interior_scores(r)})
        gap = np.array([r[3].sum() for r in rows["plain"]])  # the real opening's area
        pick = np.sort(np.argsort(-gap)[:frames])
        sheet = np.concatenate([np.concatenate([rows["plain"][i][1] for i in pick], 1),
                                np.concatenate([rows["plain"][i][0] for i in pick], 1),
                                np.concatenate([rows["diffusion"][i][0] for i in pick], 1)], 0)
        Image.fromarray(sheet.repeat(3, 0).repeat(3, 1)).save(out / f"{c['id']}.png")
        overview.append(np.concatenate([sheet[:, : 2 * crop_cfg.px]], 1))
        log(f"{c['id']}: {len(rows['plain'])} frames with an interior; sheet of frames {[rows['plain'][i][4] for i in pick]}; "
            + ", ".join(f"{f} L1 {scores[f][-1]['l1']:.1f} texture {scores[f][-1]['texture']:.2f}" for f in rows))
    Image.fromarray(np.concatenate(overview, 1).repeat(2, 0).repeat(2, 1)).save(out / "all.png")
    result = {"split": split, "max_seconds": max_seconds, "per_clip": scores}
    for fill, rows_ in scores.items():  # frame-weighted over clips
        w = np.array([r["frames"] for r in rows_], np.float64)
        result[fill] = {k: float(np.sum(w * [r[k] for r in rows_]) / w.sum()) for k in ("l1", "texture")} | {"frames": int(w.sum())}
    (out / "scores.json").write_text(json.dumps(result, indent=2))
    return result


def register(sub) -> None:
    p = sub.add_parser("fill-sheet", help="mouth crops of held-out clips: real | plain fill | diffusion fill (PNG)")
    p.add_argument("--clips", required=True, help="a dataset folder written by `avatarlab prepare` (meshes cached)")
    p.add_argument("--out", required=True, help="folder for the PNGs (keep sheets of shared clips out of the repository)")
    p.add_argument("--split", default="val")
    p.add_argument("--fill-model", default="default", help="the diffusion fill's model folder (default: the embedded one)")
    p.add_argument("--frames", type=int, default=8, help="most open frames per clip")
    p.set_defaults(func=_run)


def _run(args) -> int:
    r = fill_sheets(args.clips, args.out, args.fill_model, args.split, args.frames)
    for fill in ("plain", "diffusion"):
        print(f"{fill:10} interior L1 {r[fill]['l1']:.2f}  texture {r[fill]['texture']:.3f}  ({r[fill]['frames']} frames)")
    print(f"wrote {args.out}/*.png and scores.json")
    return 0
