"""Face finding, alignment, mouth masking and seamless paste-back, shared by serving and training."""
from avatar_service.face.align import FaceLayout, align_matrix, warp_to_crop
from avatar_service.face.detect import Face, FaceDetector, FaceError

__all__ = ["Face", "FaceDetector", "FaceError", "FaceLayout", "align_matrix", "warp_to_crop"]
