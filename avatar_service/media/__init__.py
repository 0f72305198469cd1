"""Media I/O, in one place: untrusted uploads and audio files (untrusted.py), talking clips decoded onto
a fixed frame grid for training data (clips.py: `avatar_service.media.clips`, imported on its own as it
needs PyAV at import), and mp4/PNG output (write.py)."""
from avatar_service.media.untrusted import MediaError, MediaTooLarge, decode_image, decode_video, read_audio
from avatar_service.media.write import grid, save_png, write_mp4

__all__ = ["MediaError", "MediaTooLarge", "decode_image", "decode_video", "read_audio", "grid", "save_png", "write_mp4"]
