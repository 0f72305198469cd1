from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AvatarSourceKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AVATAR_SOURCE_KIND_UNSPECIFIED: _ClassVar[AvatarSourceKind]
    AVATAR_SOURCE_KIND_PORTRAIT: _ClassVar[AvatarSourceKind]
    AVATAR_SOURCE_KIND_IDLE_VIDEO: _ClassVar[AvatarSourceKind]

class AudioEncoding(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AUDIO_ENCODING_UNSPECIFIED: _ClassVar[AudioEncoding]
    AUDIO_ENCODING_PCM_S16LE: _ClassVar[AudioEncoding]
    AUDIO_ENCODING_PCM_F32LE: _ClassVar[AudioEncoding]

class PixelFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PIXEL_FORMAT_UNSPECIFIED: _ClassVar[PixelFormat]
    PIXEL_FORMAT_RGBA8: _ClassVar[PixelFormat]
    PIXEL_FORMAT_RGB8: _ClassVar[PixelFormat]
    PIXEL_FORMAT_JPEG: _ClassVar[PixelFormat]

class FrameMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FRAME_MODE_UNSPECIFIED: _ClassVar[FrameMode]
    FRAME_MODE_FULL: _ClassVar[FrameMode]
    FRAME_MODE_DELTA: _ClassVar[FrameMode]
AVATAR_SOURCE_KIND_UNSPECIFIED: AvatarSourceKind
AVATAR_SOURCE_KIND_PORTRAIT: AvatarSourceKind
AVATAR_SOURCE_KIND_IDLE_VIDEO: AvatarSourceKind
AUDIO_ENCODING_UNSPECIFIED: AudioEncoding
AUDIO_ENCODING_PCM_S16LE: AudioEncoding
AUDIO_ENCODING_PCM_F32LE: AudioEncoding
PIXEL_FORMAT_UNSPECIFIED: PixelFormat
PIXEL_FORMAT_RGBA8: PixelFormat
PIXEL_FORMAT_RGB8: PixelFormat
PIXEL_FORMAT_JPEG: PixelFormat
FRAME_MODE_UNSPECIFIED: FrameMode
FRAME_MODE_FULL: FrameMode
FRAME_MODE_DELTA: FrameMode

class CreateAvatarRequest(_message.Message):
    __slots__ = ("display_name", "portrait_image", "idle_video")
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    PORTRAIT_IMAGE_FIELD_NUMBER: _ClassVar[int]
    IDLE_VIDEO_FIELD_NUMBER: _ClassVar[int]
    display_name: str
    portrait_image: bytes
    idle_video: bytes
    def __init__(self, display_name: _Optional[str] = ..., portrait_image: _Optional[bytes] = ..., idle_video: _Optional[bytes] = ...) -> None: ...

class Avatar(_message.Message):
    __slots__ = ("avatar_id", "display_name", "source_kind", "face_width_px", "face_height_px", "pose_frame_count", "create_time_unix_ms", "model_id")
    AVATAR_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    SOURCE_KIND_FIELD_NUMBER: _ClassVar[int]
    FACE_WIDTH_PX_FIELD_NUMBER: _ClassVar[int]
    FACE_HEIGHT_PX_FIELD_NUMBER: _ClassVar[int]
    POSE_FRAME_COUNT_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    avatar_id: str
    display_name: str
    source_kind: AvatarSourceKind
    face_width_px: int
    face_height_px: int
    pose_frame_count: int
    create_time_unix_ms: int
    model_id: str
    def __init__(self, avatar_id: _Optional[str] = ..., display_name: _Optional[str] = ..., source_kind: _Optional[_Union[AvatarSourceKind, str]] = ..., face_width_px: _Optional[int] = ..., face_height_px: _Optional[int] = ..., pose_frame_count: _Optional[int] = ..., create_time_unix_ms: _Optional[int] = ..., model_id: _Optional[str] = ...) -> None: ...

class GetAvatarRequest(_message.Message):
    __slots__ = ("avatar_id",)
    AVATAR_ID_FIELD_NUMBER: _ClassVar[int]
    avatar_id: str
    def __init__(self, avatar_id: _Optional[str] = ...) -> None: ...

class ListAvatarsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListAvatarsResponse(_message.Message):
    __slots__ = ("avatars", "next_page_token")
    AVATARS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    avatars: _containers.RepeatedCompositeFieldContainer[Avatar]
    next_page_token: str
    def __init__(self, avatars: _Optional[_Iterable[_Union[Avatar, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteAvatarRequest(_message.Message):
    __slots__ = ("avatar_id",)
    AVATAR_ID_FIELD_NUMBER: _ClassVar[int]
    avatar_id: str
    def __init__(self, avatar_id: _Optional[str] = ...) -> None: ...

class DeleteAvatarResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AudioFormat(_message.Message):
    __slots__ = ("encoding", "sample_rate_hz", "channels")
    ENCODING_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    encoding: AudioEncoding
    sample_rate_hz: int
    channels: int
    def __init__(self, encoding: _Optional[_Union[AudioEncoding, str]] = ..., sample_rate_hz: _Optional[int] = ..., channels: _Optional[int] = ...) -> None: ...

class VideoOptions(_message.Message):
    __slots__ = ("fps", "width_px", "height_px", "pixel_format", "jpeg_quality", "frame_mode")
    FPS_FIELD_NUMBER: _ClassVar[int]
    WIDTH_PX_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_PX_FIELD_NUMBER: _ClassVar[int]
    PIXEL_FORMAT_FIELD_NUMBER: _ClassVar[int]
    JPEG_QUALITY_FIELD_NUMBER: _ClassVar[int]
    FRAME_MODE_FIELD_NUMBER: _ClassVar[int]
    fps: int
    width_px: int
    height_px: int
    pixel_format: PixelFormat
    jpeg_quality: int
    frame_mode: FrameMode
    def __init__(self, fps: _Optional[int] = ..., width_px: _Optional[int] = ..., height_px: _Optional[int] = ..., pixel_format: _Optional[_Union[PixelFormat, str]] = ..., jpeg_quality: _Optional[int] = ..., frame_mode: _Optional[_Union[FrameMode, str]] = ...) -> None: ...

class GenerationOptions(_message.Message):
    __slots__ = ("seed", "sampler_steps", "guidance_scale")
    SEED_FIELD_NUMBER: _ClassVar[int]
    SAMPLER_STEPS_FIELD_NUMBER: _ClassVar[int]
    GUIDANCE_SCALE_FIELD_NUMBER: _ClassVar[int]
    seed: int
    sampler_steps: int
    guidance_scale: float
    def __init__(self, seed: _Optional[int] = ..., sampler_steps: _Optional[int] = ..., guidance_scale: _Optional[float] = ...) -> None: ...

class AnimateConfig(_message.Message):
    __slots__ = ("avatar_id", "audio_format", "video", "generation", "motion_only", "max_frames_per_message")
    AVATAR_ID_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FORMAT_FIELD_NUMBER: _ClassVar[int]
    VIDEO_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    MOTION_ONLY_FIELD_NUMBER: _ClassVar[int]
    MAX_FRAMES_PER_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    avatar_id: str
    audio_format: AudioFormat
    video: VideoOptions
    generation: GenerationOptions
    motion_only: bool
    max_frames_per_message: int
    def __init__(self, avatar_id: _Optional[str] = ..., audio_format: _Optional[_Union[AudioFormat, _Mapping]] = ..., video: _Optional[_Union[VideoOptions, _Mapping]] = ..., generation: _Optional[_Union[GenerationOptions, _Mapping]] = ..., motion_only: bool = ..., max_frames_per_message: _Optional[int] = ...) -> None: ...

class AudioChunk(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    def __init__(self, data: _Optional[bytes] = ...) -> None: ...

class EndOfAudio(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AnimateRequest(_message.Message):
    __slots__ = ("config", "audio", "end_of_audio")
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    END_OF_AUDIO_FIELD_NUMBER: _ClassVar[int]
    config: AnimateConfig
    audio: AudioChunk
    end_of_audio: EndOfAudio
    def __init__(self, config: _Optional[_Union[AnimateConfig, _Mapping]] = ..., audio: _Optional[_Union[AudioChunk, _Mapping]] = ..., end_of_audio: _Optional[_Union[EndOfAudio, _Mapping]] = ...) -> None: ...

class Rect(_message.Message):
    __slots__ = ("x", "y", "width", "height")
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    x: int
    y: int
    width: int
    height: int
    def __init__(self, x: _Optional[int] = ..., y: _Optional[int] = ..., width: _Optional[int] = ..., height: _Optional[int] = ...) -> None: ...

class VideoFrame(_message.Message):
    __slots__ = ("index", "pts_ms", "duration_ms", "rect", "pixels", "mouth")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    PTS_MS_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    RECT_FIELD_NUMBER: _ClassVar[int]
    PIXELS_FIELD_NUMBER: _ClassVar[int]
    MOUTH_FIELD_NUMBER: _ClassVar[int]
    index: int
    pts_ms: int
    duration_ms: int
    rect: Rect
    pixels: bytes
    mouth: MouthMotion
    def __init__(self, index: _Optional[int] = ..., pts_ms: _Optional[int] = ..., duration_ms: _Optional[int] = ..., rect: _Optional[_Union[Rect, _Mapping]] = ..., pixels: _Optional[bytes] = ..., mouth: _Optional[_Union[MouthMotion, _Mapping]] = ...) -> None: ...

class MouthMotion(_message.Message):
    __slots__ = ("visemes", "blendshapes")
    VISEMES_FIELD_NUMBER: _ClassVar[int]
    BLENDSHAPES_FIELD_NUMBER: _ClassVar[int]
    visemes: _containers.RepeatedScalarFieldContainer[float]
    blendshapes: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, visemes: _Optional[_Iterable[float]] = ..., blendshapes: _Optional[_Iterable[float]] = ...) -> None: ...

class SessionStarted(_message.Message):
    __slots__ = ("session_id", "fps", "width_px", "height_px", "pixel_format", "frame_mode", "base_frame", "lookahead_ms", "sampler_steps", "guidance_scale", "viseme_names", "blendshape_names", "motion_only")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    FPS_FIELD_NUMBER: _ClassVar[int]
    WIDTH_PX_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_PX_FIELD_NUMBER: _ClassVar[int]
    PIXEL_FORMAT_FIELD_NUMBER: _ClassVar[int]
    FRAME_MODE_FIELD_NUMBER: _ClassVar[int]
    BASE_FRAME_FIELD_NUMBER: _ClassVar[int]
    LOOKAHEAD_MS_FIELD_NUMBER: _ClassVar[int]
    SAMPLER_STEPS_FIELD_NUMBER: _ClassVar[int]
    GUIDANCE_SCALE_FIELD_NUMBER: _ClassVar[int]
    VISEME_NAMES_FIELD_NUMBER: _ClassVar[int]
    BLENDSHAPE_NAMES_FIELD_NUMBER: _ClassVar[int]
    MOTION_ONLY_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    fps: int
    width_px: int
    height_px: int
    pixel_format: PixelFormat
    frame_mode: FrameMode
    base_frame: VideoFrame
    lookahead_ms: int
    sampler_steps: int
    guidance_scale: float
    viseme_names: _containers.RepeatedScalarFieldContainer[str]
    blendshape_names: _containers.RepeatedScalarFieldContainer[str]
    motion_only: bool
    def __init__(self, session_id: _Optional[str] = ..., fps: _Optional[int] = ..., width_px: _Optional[int] = ..., height_px: _Optional[int] = ..., pixel_format: _Optional[_Union[PixelFormat, str]] = ..., frame_mode: _Optional[_Union[FrameMode, str]] = ..., base_frame: _Optional[_Union[VideoFrame, _Mapping]] = ..., lookahead_ms: _Optional[int] = ..., sampler_steps: _Optional[int] = ..., guidance_scale: _Optional[float] = ..., viseme_names: _Optional[_Iterable[str]] = ..., blendshape_names: _Optional[_Iterable[str]] = ..., motion_only: bool = ...) -> None: ...

class SessionStats(_message.Message):
    __slots__ = ("frames_sent", "audio_received_ms", "first_frame_latency_ms", "mean_generate_ms", "bytes_sent")
    FRAMES_SENT_FIELD_NUMBER: _ClassVar[int]
    AUDIO_RECEIVED_MS_FIELD_NUMBER: _ClassVar[int]
    FIRST_FRAME_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    MEAN_GENERATE_MS_FIELD_NUMBER: _ClassVar[int]
    BYTES_SENT_FIELD_NUMBER: _ClassVar[int]
    frames_sent: int
    audio_received_ms: int
    first_frame_latency_ms: float
    mean_generate_ms: float
    bytes_sent: int
    def __init__(self, frames_sent: _Optional[int] = ..., audio_received_ms: _Optional[int] = ..., first_frame_latency_ms: _Optional[float] = ..., mean_generate_ms: _Optional[float] = ..., bytes_sent: _Optional[int] = ...) -> None: ...

class SessionEnded(_message.Message):
    __slots__ = ("stats",)
    STATS_FIELD_NUMBER: _ClassVar[int]
    stats: SessionStats
    def __init__(self, stats: _Optional[_Union[SessionStats, _Mapping]] = ...) -> None: ...

class FrameBatch(_message.Message):
    __slots__ = ("frames",)
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    frames: _containers.RepeatedCompositeFieldContainer[VideoFrame]
    def __init__(self, frames: _Optional[_Iterable[_Union[VideoFrame, _Mapping]]] = ...) -> None: ...

class AnimateResponse(_message.Message):
    __slots__ = ("started", "frame", "ended", "frames")
    STARTED_FIELD_NUMBER: _ClassVar[int]
    FRAME_FIELD_NUMBER: _ClassVar[int]
    ENDED_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    started: SessionStarted
    frame: VideoFrame
    ended: SessionEnded
    frames: FrameBatch
    def __init__(self, started: _Optional[_Union[SessionStarted, _Mapping]] = ..., frame: _Optional[_Union[VideoFrame, _Mapping]] = ..., ended: _Optional[_Union[SessionEnded, _Mapping]] = ..., frames: _Optional[_Union[FrameBatch, _Mapping]] = ...) -> None: ...

class SpeakRequest(_message.Message):
    __slots__ = ("avatar_id", "text", "voice_id", "video", "generation", "audio_sample_rate_hz", "motion_only", "max_frames_per_message")
    AVATAR_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    VOICE_ID_FIELD_NUMBER: _ClassVar[int]
    VIDEO_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    AUDIO_SAMPLE_RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    MOTION_ONLY_FIELD_NUMBER: _ClassVar[int]
    MAX_FRAMES_PER_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    avatar_id: str
    text: str
    voice_id: str
    video: VideoOptions
    generation: GenerationOptions
    audio_sample_rate_hz: int
    motion_only: bool
    max_frames_per_message: int
    def __init__(self, avatar_id: _Optional[str] = ..., text: _Optional[str] = ..., voice_id: _Optional[str] = ..., video: _Optional[_Union[VideoOptions, _Mapping]] = ..., generation: _Optional[_Union[GenerationOptions, _Mapping]] = ..., audio_sample_rate_hz: _Optional[int] = ..., motion_only: bool = ..., max_frames_per_message: _Optional[int] = ...) -> None: ...

class SpeechAudio(_message.Message):
    __slots__ = ("pcm_s16le", "pts_ms")
    PCM_S16LE_FIELD_NUMBER: _ClassVar[int]
    PTS_MS_FIELD_NUMBER: _ClassVar[int]
    pcm_s16le: bytes
    pts_ms: int
    def __init__(self, pcm_s16le: _Optional[bytes] = ..., pts_ms: _Optional[int] = ...) -> None: ...

class SpeechStarted(_message.Message):
    __slots__ = ("video", "audio_sample_rate_hz", "voice_id")
    VIDEO_FIELD_NUMBER: _ClassVar[int]
    AUDIO_SAMPLE_RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    VOICE_ID_FIELD_NUMBER: _ClassVar[int]
    video: SessionStarted
    audio_sample_rate_hz: int
    voice_id: str
    def __init__(self, video: _Optional[_Union[SessionStarted, _Mapping]] = ..., audio_sample_rate_hz: _Optional[int] = ..., voice_id: _Optional[str] = ...) -> None: ...

class SpeakResponse(_message.Message):
    __slots__ = ("started", "audio", "frame", "ended", "frames")
    STARTED_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    FRAME_FIELD_NUMBER: _ClassVar[int]
    ENDED_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    started: SpeechStarted
    audio: SpeechAudio
    frame: VideoFrame
    ended: SessionEnded
    frames: FrameBatch
    def __init__(self, started: _Optional[_Union[SpeechStarted, _Mapping]] = ..., audio: _Optional[_Union[SpeechAudio, _Mapping]] = ..., frame: _Optional[_Union[VideoFrame, _Mapping]] = ..., ended: _Optional[_Union[SessionEnded, _Mapping]] = ..., frames: _Optional[_Union[FrameBatch, _Mapping]] = ...) -> None: ...

class GetServerInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Limits(_message.Message):
    __slots__ = ("max_concurrent_sessions", "max_sessions_per_client", "max_audio_seconds_per_session", "max_message_bytes", "max_portrait_pixels", "max_avatars", "max_text_chars", "max_idle_video_seconds")
    MAX_CONCURRENT_SESSIONS_FIELD_NUMBER: _ClassVar[int]
    MAX_SESSIONS_PER_CLIENT_FIELD_NUMBER: _ClassVar[int]
    MAX_AUDIO_SECONDS_PER_SESSION_FIELD_NUMBER: _ClassVar[int]
    MAX_MESSAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_PORTRAIT_PIXELS_FIELD_NUMBER: _ClassVar[int]
    MAX_AVATARS_FIELD_NUMBER: _ClassVar[int]
    MAX_TEXT_CHARS_FIELD_NUMBER: _ClassVar[int]
    MAX_IDLE_VIDEO_SECONDS_FIELD_NUMBER: _ClassVar[int]
    max_concurrent_sessions: int
    max_sessions_per_client: int
    max_audio_seconds_per_session: int
    max_message_bytes: int
    max_portrait_pixels: int
    max_avatars: int
    max_text_chars: int
    max_idle_video_seconds: int
    def __init__(self, max_concurrent_sessions: _Optional[int] = ..., max_sessions_per_client: _Optional[int] = ..., max_audio_seconds_per_session: _Optional[int] = ..., max_message_bytes: _Optional[int] = ..., max_portrait_pixels: _Optional[int] = ..., max_avatars: _Optional[int] = ..., max_text_chars: _Optional[int] = ..., max_idle_video_seconds: _Optional[int] = ...) -> None: ...

class Voice(_message.Message):
    __slots__ = ("voice_id", "language", "backend", "sample_rate_hz", "license")
    VOICE_ID_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    LICENSE_FIELD_NUMBER: _ClassVar[int]
    voice_id: str
    language: str
    backend: str
    sample_rate_hz: int
    license: str
    def __init__(self, voice_id: _Optional[str] = ..., language: _Optional[str] = ..., backend: _Optional[str] = ..., sample_rate_hz: _Optional[int] = ..., license: _Optional[str] = ...) -> None: ...

class ServerInfo(_message.Message):
    __slots__ = ("server_version", "api_version", "model_id", "backend", "device", "model_sample_rate_hz", "face_size_px", "default_sampler_steps", "default_guidance_scale", "limits", "voices", "versions")
    class VersionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SERVER_VERSION_FIELD_NUMBER: _ClassVar[int]
    API_VERSION_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    MODEL_SAMPLE_RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    FACE_SIZE_PX_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_SAMPLER_STEPS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_GUIDANCE_SCALE_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    VOICES_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    server_version: str
    api_version: str
    model_id: str
    backend: str
    device: str
    model_sample_rate_hz: int
    face_size_px: int
    default_sampler_steps: int
    default_guidance_scale: float
    limits: Limits
    voices: _containers.RepeatedCompositeFieldContainer[Voice]
    versions: _containers.ScalarMap[str, str]
    def __init__(self, server_version: _Optional[str] = ..., api_version: _Optional[str] = ..., model_id: _Optional[str] = ..., backend: _Optional[str] = ..., device: _Optional[str] = ..., model_sample_rate_hz: _Optional[int] = ..., face_size_px: _Optional[int] = ..., default_sampler_steps: _Optional[int] = ..., default_guidance_scale: _Optional[float] = ..., limits: _Optional[_Union[Limits, _Mapping]] = ..., voices: _Optional[_Iterable[_Union[Voice, _Mapping]]] = ..., versions: _Optional[_Mapping[str, str]] = ...) -> None: ...
