"""`avatarlab eval --renderer warp`'s rows on a real clip: the oracles, driven by the clip's own measured
geometry, put the lips where the real ones are (far closer than the still portrait does), and every row
follows the real head's placement."""
import numpy as np

from avatar_service.media import decode_video, read_audio
from conftest import need_data


def test_warp_eval_rows_on_a_real_clip():
    from avatar_service.data.meshes import clip_meshes
    from avatar_service.evaluation import metrics
    from avatar_service.evaluation.evaluate import synthesize_warp
    from avatar_service.runtime.warp_renderer import MotionModel

    src = need_data("talking", "lrs39_00002.mp4")  # 35 frames, 160x160, 25 fps, a face crop
    crops = np.stack(decode_video(src, 60))
    audio = read_audio(src)
    real = metrics.mouth_track(crops)
    rows = synthesize_warp(MotionModel.default(), crops, audio, 25.0, clip_meshes(crops), real.mesh)
    assert set(rows) == {"warp", "oracle", "oracle_motion", "still"}
    assert all(v.shape == crops.shape and v.dtype == np.uint8 for v in rows.values())
    iod = np.where(np.isfinite(real.inter_ocular), real.inter_ocular, np.nanmedian(real.inter_ocular))
    lmd = {k: metrics.lmd(metrics.mouth_track(v).lips, real.lips, iod) for k, v in rows.items()}
    print({k: round(v, 4) for k, v in lmd.items()})
    assert lmd["oracle"] < 0.6 * lmd["still"]
    assert lmd["oracle_motion"] < lmd["still"]
    # the still row is the first frame itself, placed like each real frame: frame 0 is (nearly) unchanged
    assert np.abs(rows["still"][0].astype(int) - crops[0]).mean() < 3.0


def test_dub_protocol_rows_revoice_each_real_frame_in_place():
    """--protocol dub: each real frame keeps its own pixels above the mouth; the still row holds the
    person's closed mouth, so it reads far less open than the real video; a frame without a mesh is
    left as it is."""
    from avatar_service.data.meshes import clip_meshes
    from avatar_service.evaluation import metrics
    from avatar_service.evaluation.evaluate import synthesize_dub
    from avatar_service.face.mesh import NOSE_TIP
    from avatar_service.runtime.warp_renderer import MotionModel

    src = need_data("talking", "lrs39_00002.mp4")
    crops = np.stack(decode_video(src, 60))
    audio = read_audio(src)
    meshes = clip_meshes(crops)
    meshes[3] = np.nan  # as if the face mesh missed this frame
    rows = synthesize_dub(MotionModel.default(), crops, audio, 25.0, meshes)
    assert set(rows) == {"dub", "still"}
    assert all(v.shape == crops.shape and v.dtype == np.uint8 for v in rows.values())
    assert all(np.array_equal(v[3], crops[3]) for v in rows.values())
    above = int(np.nanmin(meshes[:, NOSE_TIP, 1])) - 8  # the eyes and everything above them
    assert all(np.array_equal(v[:, :above], crops[:, :above]) for v in rows.values())
    assert not np.array_equal(rows["dub"], rows["still"])
    real_open = metrics.mouth_track(crops).mouth_open
    still_open = metrics.mouth_track(rows["still"]).mouth_open
    print("mouth open: real", np.nanmean(real_open), "still", np.nanmean(still_open))
    assert np.nanmean(still_open) < 0.6 * np.nanmean(real_open)
