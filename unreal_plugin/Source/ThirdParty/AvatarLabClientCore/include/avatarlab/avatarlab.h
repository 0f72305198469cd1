/*
 * AvatarLab native client core: the one C API the Unity and Unreal plugins bind to.
 *
 * It talks to the AvatarLab service (avatarlab.v1.AvatarService, gRPC), manages avatars, runs
 * Animate and Speak sessions, and turns the frame stream into a persistent RGBA surface that
 * follows the engine's audio clock.
 *
 * Conventions (the same for every function, so bindings can be mechanical):
 *  - Every name is prefixed `avl_` / `AVL_`. Objects are opaque handles.
 *  - Functions that can fail return `avl_status`: AVL_OK (0), a positive informational code, or
 *    a negative AVL_ERR_* code. `avl_status_string` names a code; `avl_last_error` gives the
 *    detailed message of the last failing call on the calling thread.
 *  - Objects come from `avl_*_create` / `avl_client_open_*` / list getters and go back with
 *    `avl_*_release(&handle)`, which takes a pointer, releases, and sets the handle to NULL.
 *    Releasing a NULL handle (or a pointer to NULL) is a no-op.
 *  - Strings are UTF-8, NUL-terminated. Input strings and buffers are only read during the call
 *    and copied if kept; the caller keeps ownership. Where a function returns `const char*`, the
 *    pointer is owned by the library and its lifetime is stated on the function.
 *  - Structs contain only fixed-size integers and floats (blittable for C# P/Invoke with
 *    [StructLayout(LayoutKind.Sequential)]); fields are laid out without implicit padding.
 *    A zeroed struct always means "all defaults" (as in the proto: 0 = server default).
 *  - Callbacks take a `void* user` pointer passed through unchanged, and may run on library
 *    threads (stated on each). A callback must not release the object that invoked it.
 *  - No C++ exception crosses this boundary; allocation failure returns AVL_ERR_OUT_OF_MEMORY.
 *  - Thread safety: every function may be called from any thread unless stated otherwise.
 *    The exceptions are the "presentation" functions of a session (avl_session_present,
 *    avl_session_surface_pixels, avl_session_copy_surface), which one thread at a time
 *    (normally the engine's game or render thread) must call.
 *
 * API version: AVL_API_VERSION is checked by avl_context_create; a library accepts callers with
 * the same major version and a minor version less than or equal to its own. Later versions of
 * this header only add functions, enum values, status codes and struct fields at the end of a
 * struct; a field added in minor version N is read only from callers whose context was created
 * with minor >= N, so a caller built for an older header never has bytes read past its struct.
 * 1.1 added: keepalive and stream deadline fields in avl_client_settings, the playback policy
 * (avl_session_set_playback, avl_session_present_playback).
 * 1.2 added: mouth motion for 3D rigs and motion-only sessions (avl_session_settings.motion_only,
 * the mouth fields of avl_session_info, avl_session_mouth_count / _name, avl_session_mouth,
 * avl_session_mouth_latest).
 */
#ifndef AVATARLAB_AVATARLAB_H_
#define AVATARLAB_AVATARLAB_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ export and calling convention */

#if defined(_WIN32)
#  if defined(AVL_BUILDING_LIBRARY)
#    define AVL_API __declspec(dllexport)
#  elif defined(AVL_STATIC)
#    define AVL_API
#  else
#    define AVL_API __declspec(dllimport)
#  endif
#  define AVL_CALL __cdecl
#else
#  if defined(AVL_BUILDING_LIBRARY)
#    define AVL_API __attribute__((visibility("default")))
#  else
#    define AVL_API
#  endif
#  define AVL_CALL
#endif

/* ------------------------------------------------------------------ version */

#define AVL_API_VERSION_MAJOR 1
#define AVL_API_VERSION_MINOR 2
#define AVL_API_VERSION_PATCH 0
/* Pass this to avl_context_create. (major << 16) | (minor << 8) | patch. */
#define AVL_API_VERSION \
  ((AVL_API_VERSION_MAJOR << 16) | (AVL_API_VERSION_MINOR << 8) | AVL_API_VERSION_PATCH)

/* The version the library was built with, in the AVL_API_VERSION encoding. */
AVL_API uint32_t AVL_CALL avl_get_version(void);

/* ------------------------------------------------------------------ status codes */

typedef int32_t avl_status;

enum {
  AVL_OK = 0,
  /* Informational, not an error: avl_session_present left the surface unchanged. */
  AVL_NO_NEW_FRAME = 1,

  /* Caller errors. */
  AVL_ERR_INVALID_ARGUMENT = -1,    /* NULL where not allowed, out-of-range option, bad UTF-8 */
  AVL_ERR_VERSION_MISMATCH = -2,    /* avl_context_create: caller's API version not supported */
  AVL_ERR_BAD_STATE = -3,           /* call not valid in the object's current state */
  AVL_ERR_BUFFER_TOO_SMALL = -4,    /* destination buffer too small; nothing written */
  AVL_ERR_OUT_OF_MEMORY = -5,

  /* Service errors, one per gRPC status the service documents. */
  AVL_ERR_UNAVAILABLE = -10,        /* service down, unreachable, restarting or not ready */
  AVL_ERR_UNAUTHENTICATED = -11,    /* missing or wrong bearer token */
  AVL_ERR_NOT_FOUND = -12,          /* unknown avatar or voice */
  AVL_ERR_RESOURCE_EXHAUSTED = -13, /* too many sessions, audio or text over a limit */
  AVL_ERR_FAILED_PRECONDITION = -14,/* e.g. Speak with no text-to-speech backend */
  AVL_ERR_DEADLINE_EXCEEDED = -15,  /* a call or connection attempt timed out */
  AVL_ERR_CANCELLED = -16,          /* cancelled by avl_session_cancel or the server */
  AVL_ERR_REJECTED = -17,           /* the service rejected a request (INVALID_ARGUMENT) */
  AVL_ERR_SERVER_INTERNAL = -18,    /* server-side failure; message carries the incident id */

  /* Client-side data errors. */
  AVL_ERR_PROTOCOL = -30,           /* the server sent a message this client cannot use */
  AVL_ERR_DECODE = -31,             /* a frame's pixels could not be decoded */

  AVL_ERR_INTERNAL = -99            /* bug in this library; the message says where */
};

/* A static English name and one-line meaning for a status code, e.g.
 * "AVL_ERR_UNAVAILABLE: service unreachable or not ready". Never NULL; unknown codes give
 * "AVL_ERR_UNKNOWN". The string is static: never free it. */
AVL_API const char* AVL_CALL avl_status_string(avl_status status);

/* Detailed message of the last call on THIS thread that returned a negative status, e.g.
 * "ListAvatars: connect to 127.0.0.1:50051 failed (UNAVAILABLE): ...". "" if none yet.
 * Owned by the library; valid until the next avl_ call on the same thread. Copy it if kept. */
AVL_API const char* AVL_CALL avl_last_error(void);

/* ------------------------------------------------------------------ handles */

typedef struct avl_context avl_context;         /* logging and library-wide state */
typedef struct avl_client avl_client;           /* one connection (gRPC channel) to a service */
typedef struct avl_avatar avl_avatar;           /* an immutable copy of an avatar's metadata */
typedef struct avl_avatar_list avl_avatar_list; /* an immutable list of avatars */
typedef struct avl_session avl_session;         /* one Animate or Speak session */

/* ------------------------------------------------------------------ context and logging */

typedef enum avl_log_level {
  AVL_LOG_DEBUG = 0,
  AVL_LOG_INFO = 1,
  AVL_LOG_WARNING = 2,
  AVL_LOG_ERROR = 3,
  AVL_LOG_OFF = 4
} avl_log_level;

/* Receives log lines at or above the context's level. `message` is UTF-8, without a trailing
 * newline, valid only during the call. Called from any library thread, possibly concurrently;
 * keep it short and thread-safe (e.g. enqueue for the game thread). */
typedef void(AVL_CALL* avl_log_fn)(void* user, int32_t level, const char* message);

/* Creates the library context. Checks `api_version` (pass AVL_API_VERSION) against the
 * library's and returns AVL_ERR_VERSION_MISMATCH, without creating anything, if the majors
 * differ or the caller's minor is newer. `log_fn` may be NULL (no logging); `log_user` is passed
 * to it. `min_level` is an avl_log_level. On success *out_context owns a new context; release it
 * with avl_context_release after every object made from it has been released. */
AVL_API avl_status AVL_CALL avl_context_create(uint32_t api_version, avl_log_fn log_fn,
                                               void* log_user, int32_t min_level,
                                               avl_context** out_context);

/* Changes the minimum log level. */
AVL_API avl_status AVL_CALL avl_context_set_log_level(avl_context* context, int32_t min_level);

/* Releases the context and sets *context to NULL. Objects created from it keep it alive
 * internally, so release order is not an error; but the log callback is never called after
 * this returns. */
AVL_API void AVL_CALL avl_context_release(avl_context** context);

/* ------------------------------------------------------------------ client (connection) */

typedef enum avl_transport {
  AVL_TRANSPORT_PLAINTEXT = 0, /* default: local development, loopback */
  AVL_TRANSPORT_TLS = 1        /* system roots, or the PEM given to avl_client_create */
} avl_transport;

/* Connection settings; zero in any field means its default. 40 bytes, no padding (24 in API 1.0). */
typedef struct avl_client_settings {
  int32_t transport;                    /* avl_transport */
  int32_t connect_timeout_ms;           /* wait for the channel to connect; 0 = 5000 */
  int32_t call_timeout_ms;              /* deadline of unary calls; 0 = 30000 (CreateAvatar
                                           takes several seconds on CPU) */
  int32_t retry_max_attempts;           /* attempts to open a NEW session while the service is
                                           UNAVAILABLE; 0 = 6, 1 = no retry */
  int32_t retry_initial_backoff_ms;     /* first wait between attempts; 0 = 250; then doubled */
  int32_t retry_max_backoff_ms;         /* cap on the wait; 0 = 4000 */
  /* Since API 1.1 (ignored for a context created with minor 0). A connection that dies without a
   * FIN (mobile network gone, server host frozen) would otherwise hang a session forever. */
  int32_t keepalive_time_ms;            /* HTTP/2 PING this often while a session is open;
                                           0 = 15000, -1 = off. The service accepts pings at
                                           most every 5000 ms (faster ones get the connection
                                           closed with ENHANCE_YOUR_CALM), so values below 5000
                                           are raised to 5000. */
  int32_t keepalive_timeout_ms;         /* a PING unanswered this long closes the connection;
                                           its sessions fail with AVL_ERR_UNAVAILABLE; 0 = 5000 */
  int32_t stream_deadline_ms;           /* whole-stream deadline of one Animate/Speak session,
                                           from its (re)open; past it the session fails with
                                           AVL_ERR_DEADLINE_EXCEEDED. 0 = 1800000 (30 min),
                                           -1 = none */
  int32_t reserved;                     /* set 0 */
} avl_client_settings;

/* Creates a client for `target` ("host:port", or any gRPC target string such as
 * "dns:///avatars.example.com:443"). Does not connect yet: the channel connects on first use,
 * so a client can be created while the service is still starting.
 * `settings` may be NULL (all defaults). `tls_root_certs_pem` may be NULL (system roots) and is
 * only used with AVL_TRANSPORT_TLS. `bearer_token` may be NULL or "" (no authorization);
 * otherwise every call carries metadata `authorization: Bearer <token>`.
 * On success *out_client owns a new client; release with avl_client_release. */
AVL_API avl_status AVL_CALL avl_client_create(avl_context* context, const char* target,
                                              const avl_client_settings* settings,
                                              const char* tls_root_certs_pem,
                                              const char* bearer_token,
                                              avl_client** out_client);

/* Replaces the bearer token used by calls and sessions started after this returns. NULL or ""
 * removes it. */
AVL_API avl_status AVL_CALL avl_client_set_bearer_token(avl_client* client,
                                                        const char* bearer_token);

/* Blocks up to `timeout_ms` until the service's grpc.health.v1 status for
 * "avatarlab.v1.AvatarService" is SERVING. Returns AVL_OK, or AVL_ERR_UNAVAILABLE /
 * AVL_ERR_DEADLINE_EXCEEDED (see avl_last_error). Do not call on a game thread. */
AVL_API avl_status AVL_CALL avl_client_wait_ready(avl_client* client, int32_t timeout_ms);

/* Releases the client and sets *client to NULL. Sessions opened from it keep the connection
 * alive until they are released. */
AVL_API void AVL_CALL avl_client_release(avl_client** client);

/* ------------------------------------------------------------------ server info */

/* Numeric part of avatarlab.v1.ServerInfo. 40 bytes, no padding. */
typedef struct avl_server_info {
  int32_t model_sample_rate_hz;
  int32_t face_size_px;
  int32_t default_sampler_steps;
  float default_guidance_scale;
  int32_t max_concurrent_sessions;
  int32_t max_sessions_per_client;
  int32_t max_audio_seconds_per_session;
  int32_t max_message_bytes;
  int32_t max_text_chars;
  int32_t voice_count;
} avl_server_info;

/* Calls GetServerInfo (blocking, call_timeout_ms). Fills *out_info. If `version_buffer` is not
 * NULL, also copies "server_version model_id backend device" (UTF-8, NUL-terminated, truncated to
 * fit) into it. Do not call on a game thread. */
AVL_API avl_status AVL_CALL avl_client_get_server_info(avl_client* client,
                                                       avl_server_info* out_info,
                                                       char* version_buffer,
                                                       int32_t version_buffer_size);

/* ------------------------------------------------------------------ avatars */

typedef enum avl_avatar_source {
  AVL_AVATAR_SOURCE_UNSPECIFIED = 0,
  AVL_AVATAR_SOURCE_PORTRAIT = 1,   /* PNG or JPEG image with one face */
  AVL_AVATAR_SOURCE_IDLE_VIDEO = 2  /* mp4 / mov / mkv / webm, a few seconds */
} avl_avatar_source;

/* Numeric part of avatarlab.v1.Avatar. 24 bytes, no padding. */
typedef struct avl_avatar_info {
  int64_t create_time_unix_ms;
  int32_t source;            /* avl_avatar_source */
  int32_t face_width_px;
  int32_t face_height_px;
  int32_t pose_frame_count;
} avl_avatar_info;

/* Registers an avatar (CreateAvatar, blocking, call_timeout_ms; several seconds on CPU).
 * `media`/`media_size` are the file's bytes (copied during the call). `source` is
 * AVL_AVATAR_SOURCE_PORTRAIT or AVL_AVATAR_SOURCE_IDLE_VIDEO. `display_name` may be NULL.
 * On success *out_avatar owns a new avatar handle; release with avl_avatar_release. Rejections
 * (no face, several faces, ...) give AVL_ERR_REJECTED with the server's reason in
 * avl_last_error. Do not call on a game thread. */
AVL_API avl_status AVL_CALL avl_client_create_avatar(avl_client* client, const char* display_name,
                                                     int32_t source, const uint8_t* media,
                                                     size_t media_size, avl_avatar** out_avatar);

/* Fetches one avatar by id (GetAvatar). AVL_ERR_NOT_FOUND if unknown. */
AVL_API avl_status AVL_CALL avl_client_get_avatar(avl_client* client, const char* avatar_id,
                                                  avl_avatar** out_avatar);

/* Deletes an avatar by id. Sessions already running on it finish normally. */
AVL_API avl_status AVL_CALL avl_client_delete_avatar(avl_client* client, const char* avatar_id);

/* Lists every avatar, oldest first (follows all pages). On success *out_list owns a new list;
 * release with avl_avatar_list_release. */
AVL_API avl_status AVL_CALL avl_client_list_avatars(avl_client* client, avl_avatar_list** out_list);

/* Number of avatars in the list (0 if `list` is NULL). */
AVL_API int32_t AVL_CALL avl_avatar_list_count(const avl_avatar_list* list);

/* Copies entry `index` (0-based) into a new avatar handle owned by the caller; release it with
 * avl_avatar_release. The list stays valid. */
AVL_API avl_status AVL_CALL avl_avatar_list_get(const avl_avatar_list* list, int32_t index,
                                                avl_avatar** out_avatar);

/* Releases the list and sets *list to NULL. Avatars already taken out stay valid. */
AVL_API void AVL_CALL avl_avatar_list_release(avl_avatar_list** list);

/* The avatar's id / display name / model id. Owned by the avatar; valid until it is released.
 * Never NULL for a valid avatar ("" if empty); NULL if `avatar` is NULL. */
AVL_API const char* AVL_CALL avl_avatar_id(const avl_avatar* avatar);
AVL_API const char* AVL_CALL avl_avatar_display_name(const avl_avatar* avatar);
AVL_API const char* AVL_CALL avl_avatar_model_id(const avl_avatar* avatar);

/* Fills *out_info with the avatar's numeric fields. */
AVL_API avl_status AVL_CALL avl_avatar_get_info(const avl_avatar* avatar,
                                                avl_avatar_info* out_info);

/* Releases the avatar handle (not the avatar on the server) and sets *avatar to NULL. */
AVL_API void AVL_CALL avl_avatar_release(avl_avatar** avatar);

/* ------------------------------------------------------------------ sessions: options */

typedef enum avl_audio_encoding {
  AVL_AUDIO_UNSPECIFIED = 0,
  AVL_AUDIO_PCM_S16LE = 1,  /* int16 little-endian, channels interleaved */
  AVL_AUDIO_PCM_F32LE = 2   /* float32 little-endian in [-1, 1], channels interleaved */
} avl_audio_encoding;

/* How frames travel on the wire. The surface the engine reads is always RGBA8. */
typedef enum avl_wire_format {
  AVL_WIRE_DEFAULT = 0,  /* server default (RGBA8) */
  AVL_WIRE_RGBA8 = 1,
  AVL_WIRE_RGB8 = 2,
  AVL_WIRE_JPEG = 3      /* smallest; decoded here with libjpeg-turbo */
} avl_wire_format;

typedef enum avl_frame_mode {
  AVL_FRAME_MODE_DEFAULT = 0,  /* FULL */
  AVL_FRAME_MODE_FULL = 1,     /* every frame carries the whole image */
  AVL_FRAME_MODE_DELTA = 2     /* base image once, then only changed rectangles */
} avl_frame_mode;

/* Session options; zero in any field means the server's (or this library's) default.
 * 64 bytes, no padding (the 64-bit seed comes first; 56 in API 1.0 and 1.1). */
typedef struct avl_session_settings {
  uint64_t seed;              /* used only if has_seed != 0; same seed + avatar + audio =
                                 same frames */
  int32_t has_seed;           /* 0: random noise */
  int32_t audio_encoding;     /* avl_audio_encoding; Animate only, required there */
  int32_t sample_rate_hz;     /* Animate: input rate, required (8000..192000).
                                 Speak: output audio rate, 0 = voice's native rate */
  int32_t channels;           /* Animate only: 1 or 2 (0 = 1) */
  int32_t fps;                /* 1..60, 0 = 25 */
  int32_t width_px;           /* 16..1024, 0 = avatar's face size */
  int32_t height_px;
  int32_t wire_format;        /* avl_wire_format */
  int32_t jpeg_quality;       /* 1..100, 0 = 85; only with AVL_WIRE_JPEG */
  int32_t frame_mode;         /* avl_frame_mode */
  int32_t sampler_steps;      /* 1..50, 0 = model default */
  float guidance_scale;       /* 0..10, 0 = model default */
  /* Since API 1.2 (ignored for a context created with minor < 2). */
  int32_t motion_only;        /* 1: frames carry only the mouth block (avl_session_mouth), no
                                 pixels: no image is generated, so the server holds many more
                                 sessions; the surface is 0x0. 0: pixels and, where the server
                                 sends it, the mouth block */
  int32_t reserved;           /* set 0 */
} avl_session_settings;

/* ------------------------------------------------------------------ sessions: lifecycle */

typedef enum avl_session_state {
  AVL_SESSION_CONNECTING = 1, /* opening the stream (retrying with backoff while UNAVAILABLE) */
  AVL_SESSION_STREAMING = 2,  /* SessionStarted received; frames arriving */
  AVL_SESSION_ENDED = 3,      /* SessionEnded received: every frame has arrived (terminal) */
  AVL_SESSION_FAILED = 4,     /* stopped by an error, see avl_session_error (terminal) */
  AVL_SESSION_CANCELLED = 5   /* stopped by avl_session_cancel (terminal) */
} avl_session_state;

typedef enum avl_event_type {
  AVL_EVENT_STARTED = 1,     /* SessionStarted arrived; avl_session_get_info is now valid */
  AVL_EVENT_FRAME_READY = 2, /* a frame arrived in the jitter buffer (frame_index, pts_ms) */
  AVL_EVENT_AUDIO_READY = 3, /* Speak: speech audio arrived (pts_ms of its first sample) */
  AVL_EVENT_ENDED = 4,       /* terminal: session ended normally */
  AVL_EVENT_ERROR = 5,       /* terminal: status holds the error (AVL_ERR_CANCELLED if
                                cancelled); message via avl_session_error */
  AVL_EVENT_RETRYING = 6     /* opening failed with UNAVAILABLE; retrying after pts_ms ms
                                (attempt number in frame_index) */
} avl_event_type;

/* One session event. 24 bytes, no padding. */
typedef struct avl_event {
  int32_t type;         /* avl_event_type */
  avl_status status;    /* AVL_OK, or the error for AVL_EVENT_ERROR */
  int64_t frame_index;  /* FRAME_READY: the frame's index; otherwise see the event */
  int64_t pts_ms;       /* FRAME_READY / AUDIO_READY: presentation time */
} avl_event;

/* Session event callback. Runs on the session's receive thread (never the caller's), one event
 * at a time per session, in order. `event` is valid only during the call. Must not call
 * avl_session_release on `session`; may call any other function, including avl_session_cancel.
 * With no callback (NULL), events are queued instead and read with avl_session_poll_event. */
typedef void(AVL_CALL* avl_event_fn)(void* user, avl_session* session, const avl_event* event);

/* Opens an Animate session on `avatar_id` and returns at once: the stream is opened on the
 * session's own threads. Audio pushed before the stream is up is kept and sent in order.
 * If the service is UNAVAILABLE while opening, the session retries with exponential backoff
 * (client settings) and re-sends the audio pushed so far; once SessionStarted has arrived, a
 * lost connection ends the session with AVL_EVENT_ERROR (AVL_ERR_UNAVAILABLE) instead, since
 * the server-side session is gone; open a new one.
 * `settings` is required (audio_encoding and sample_rate_hz must be set). `event_fn` may be
 * NULL (poll instead). On success *out_session owns a new session; release it with
 * avl_session_release. Invalid settings give AVL_ERR_INVALID_ARGUMENT here; everything the
 * server rejects arrives as AVL_EVENT_ERROR. */
AVL_API avl_status AVL_CALL avl_client_open_animate(avl_client* client, const char* avatar_id,
                                                    const avl_session_settings* settings,
                                                    avl_event_fn event_fn, void* user,
                                                    avl_session** out_session);

/* Opens a Speak session: the server synthesizes `text` with `voice_id` (NULL or "" = default
 * voice) and streams speech audio and frames. Read the audio with avl_session_read_audio, play
 * it, and report its playback position to avl_session_present. Otherwise as
 * avl_client_open_animate (audio_encoding and channels are ignored). */
AVL_API avl_status AVL_CALL avl_client_open_speak(avl_client* client, const char* avatar_id,
                                                  const char* text, const char* voice_id,
                                                  const avl_session_settings* settings,
                                                  avl_event_fn event_fn, void* user,
                                                  avl_session** out_session);

/* Animate only: queues `size_bytes` of audio in the session's encoding (copied; any size, but
 * across all pushes whole samples only). Any thread; never blocks on the network.
 * AVL_ERR_BAD_STATE after avl_session_end_audio or once the session is terminal. */
AVL_API avl_status AVL_CALL avl_session_push_audio(avl_session* session, const void* data,
                                                   size_t size_bytes);

/* Animate only: no more audio. The server then sends the remaining frames and ends. */
AVL_API avl_status AVL_CALL avl_session_end_audio(avl_session* session);

/* Cancels the session: the stream is cancelled, the state becomes AVL_SESSION_CANCELLED and an
 * AVL_EVENT_ERROR with AVL_ERR_CANCELLED is delivered (unless already terminal, in which case
 * this is a no-op returning AVL_OK). Frames already buffered stay presentable. Non-blocking. */
AVL_API avl_status AVL_CALL avl_session_cancel(avl_session* session);

/* The current avl_session_state (0 if `session` is NULL). */
AVL_API int32_t AVL_CALL avl_session_get_state(const avl_session* session);

/* Blocks up to `timeout_ms` (negative = forever) until the session is terminal. Returns AVL_OK
 * if it ended normally, the session's error if it failed or was cancelled, or
 * AVL_ERR_DEADLINE_EXCEEDED on timeout. Not for game threads; meant for tools and tests. */
AVL_API avl_status AVL_CALL avl_session_wait(avl_session* session, int32_t timeout_ms);

/* Takes the oldest queued event (only when opened without a callback). Returns AVL_OK and fills
 * *out_event, or AVL_NO_NEW_FRAME if the queue is empty. The queue holds at most 4096 events;
 * when full, the oldest FRAME_READY / AUDIO_READY events are dropped (terminal events never). */
AVL_API avl_status AVL_CALL avl_session_poll_event(avl_session* session, avl_event* out_event);

/* The session's terminal error: returns its status (AVL_OK if none) and, if `buffer` is not
 * NULL, copies its message (UTF-8, NUL-terminated, truncated to `buffer_size`). If
 * `out_message_length` is not NULL it receives the full message length in bytes, without NUL. */
AVL_API avl_status AVL_CALL avl_session_error(const avl_session* session, char* buffer,
                                              int32_t buffer_size, int32_t* out_message_length);

/* Cancels if still running, joins the session's threads, frees everything and sets *session to
 * NULL. Pointers from avl_session_surface_pixels become invalid. Blocks briefly (milliseconds);
 * must not be called from the session's own event callback. */
AVL_API void AVL_CALL avl_session_release(avl_session** session);

/* ------------------------------------------------------------------ sessions: stream info */

/* What the server granted (SessionStarted). 64 bytes, no padding (48 in API 1.0 and 1.1). */
typedef struct avl_session_info {
  int32_t state;            /* avl_session_state */
  int32_t fps;
  int32_t width_px;         /* the surface's size */
  int32_t height_px;
  int32_t wire_format;      /* avl_wire_format actually used */
  int32_t frame_mode;       /* avl_frame_mode actually used */
  int32_t lookahead_ms;     /* audio the server needs past a frame's end before generating it */
  int32_t sampler_steps;
  float guidance_scale;
  int32_t audio_sample_rate_hz; /* Speak: the speech audio's rate; Animate: 0 */
  int64_t frames_received;
  /* Since API 1.2 (written only for a context created with minor >= 2). */
  int32_t motion_only;      /* 1: the server sends motion only (width_px and height_px are 0) */
  int32_t viseme_count;     /* curves in each frame's mouth block (avl_session_mouth_count); */
  int32_t blendshape_count; /* 0 when the server sends no mouth block */
  int32_t reserved;
} avl_session_info;

/* Fills *out_info. AVL_ERR_BAD_STATE before AVL_EVENT_STARTED (state still CONNECTING; the
 * state field is filled anyway). */
AVL_API avl_status AVL_CALL avl_session_get_info(const avl_session* session,
                                                 avl_session_info* out_info);

/* Copies the server's session id (UTF-8, NUL-terminated, truncated to fit). "" before STARTED. */
AVL_API avl_status AVL_CALL avl_session_id(const avl_session* session, char* buffer,
                                           int32_t buffer_size);

/* Final statistics (SessionEnded.stats), valid after AVL_EVENT_ENDED. 40 bytes, no padding. */
typedef struct avl_session_stats {
  int64_t frames_sent;
  int64_t audio_received_ms;
  int64_t bytes_sent;
  double first_frame_latency_ms;
  double mean_generate_ms;
} avl_session_stats;

AVL_API avl_status AVL_CALL avl_session_get_stats(const avl_session* session,
                                                  avl_session_stats* out_stats);

/* ------------------------------------------------------------------ sessions: presentation */

/* What avl_session_present did. 56 bytes, no padding. */
typedef struct avl_frame_info {
  int64_t frame_index;     /* frame now on the surface; -1 = the base (idle) image */
  int64_t pts_ms;          /* its presentation time on the audio clock */
  int64_t duration_ms;
  int32_t dirty_x;         /* bounding box of the pixels changed by this call, in surface */
  int32_t dirty_y;         /* pixels; width/height 0 when nothing changed. Upload just this */
  int32_t dirty_width;     /* region of the surface to the engine texture. */
  int32_t dirty_height;
  int32_t frames_applied;  /* frames drawn by this call (DELTA applies every frame in order) */
  int32_t frames_dropped;  /* FULL: frames skipped because the clock was already past them */
  int32_t frames_buffered; /* frames still waiting in the jitter buffer */
  int32_t starved;         /* 1 if the clock is past the newest received frame's end while the
                              session is still streaming (video waits for the generator) */
} avl_frame_info;

/* The clock API. The engine reports how far its audio playback has got (ms on the session's
 * audio clock: 0 = first sample sent or received) and the surface is brought to the frame that
 * belongs at that time: the newest frame with pts_ms <= audio_position_ms. Frames older than it
 * leave the jitter buffer. Because the audio clock picks the frame, video cannot drift from
 * audio, whether the device clock runs fast or slow. A position before the first frame shows
 * the base image. Positions going backwards do not rewind (frames already shown are gone).
 * Returns AVL_OK if the surface changed (dirty rect in *out_info), AVL_NO_NEW_FRAME if not,
 * AVL_ERR_BAD_STATE before STARTED, AVL_ERR_DECODE if a frame could not be decoded or
 * AVL_ERR_PROTOCOL if it was malformed (in both cases the session then fails). `out_info` may
 * be NULL. Presentation thread only (see top of file). */
AVL_API avl_status AVL_CALL avl_session_present(avl_session* session, int64_t audio_position_ms,
                                                avl_frame_info* out_info);

/* The persistent RGBA8 surface: width_px * height_px * 4 bytes, rows top to bottom, stride
 * width_px * 4, alpha 255. Owned by the session; the address is fixed from AVL_EVENT_STARTED
 * until avl_session_release; its contents change only inside avl_session_present. NULL before
 * STARTED and in a motion-only session. Read it on the presentation thread, or copy it before the next present. */
AVL_API const uint8_t* AVL_CALL avl_session_surface_pixels(const avl_session* session);

/* Copies the rectangle (x, y, width, height) of the surface into `dst`, rows `dst_stride` bytes
 * apart (>= width * 4), RGBA8. `dst_size` is the buffer's size in bytes; needs
 * (height - 1) * dst_stride + width * 4. Presentation thread only. Handy for uploading only the
 * dirty rect from managed code. */
AVL_API avl_status AVL_CALL avl_session_copy_surface(const avl_session* session, int32_t x,
                                                     int32_t y, int32_t width, int32_t height,
                                                     uint8_t* dst, int32_t dst_stride,
                                                     size_t dst_size);

/* ------------------------------------------------------------------ sessions: playback policy (API 1.1)
 * The rules between an engine's audio player and the surface, kept here so every engine behaves
 * the same and they are tested once: when to start the voice (preroll), which frame belongs to
 * what the listener hears (output latency), and when a line is over (drain). An engine reports
 * what its player has done; the session presents the right frame and advises. */

/* Zero in a field means its default. 8 bytes, no padding. */
typedef struct avl_playback_settings {
  int32_t preroll_ms;        /* video received (newest frame's end), and audio handed to the
                                player, before the voice starts, so frames are there in time;
                                0 = 300 */
  int32_t output_latency_ms; /* audio the player has consumed but the listener has not heard yet
                                (mixer and device buffers; large on Android, ~40 ms elsewhere).
                                Subtracted from audio_played_ms, so the mouth does not lead the
                                voice. 0 = none; -1 is invalid */
} avl_playback_settings;

/* Sets the session's playback policy (any time; applies to the next present). NULL = defaults. */
AVL_API avl_status AVL_CALL avl_session_set_playback(avl_session* session,
                                                     const avl_playback_settings* settings);

/* What the engine's audio player has done, in ms of the session's audio clock. 16 bytes. */
typedef struct avl_playback_clock {
  int64_t audio_buffered_ms; /* audio handed to the player so far (queued; Animate: pushed and
                                queued for playback, Speak: read with avl_session_read_audio) */
  int64_t audio_played_ms;   /* audio the player has consumed; -1 while it has not started */
} avl_playback_clock;

/* The session's advice after a present. 16 bytes, no padding. */
typedef struct avl_playback_advice {
  int32_t start_playback;    /* 1: the voice should be playing (preroll reached, or every frame has
                                arrived); stays 1 once given */
  int32_t finished;          /* 1: every frame has arrived and been shown and the last audio has
                                been heard (output latency included): release the session */
  int64_t heard_ms;          /* the position presented: audio_played_ms - output_latency_ms,
                                -1 (base image) before anything was heard */
} avl_playback_advice;

/* avl_session_present at the heard position (audio_played_ms - output_latency_ms), then fills
 * *out_advice. `clock` is required; `out_advice` and `out_info` may be NULL. Returns as
 * avl_session_present. Presentation thread only. */
AVL_API avl_status AVL_CALL avl_session_present_playback(avl_session* session,
                                                         const avl_playback_clock* clock,
                                                         avl_playback_advice* out_advice,
                                                         avl_frame_info* out_info);

/* Speak only: takes up to `max_samples` mono int16 samples of received speech audio, in order,
 * into `dst`; *out_samples receives the number taken (0 if none buffered yet). Any thread
 * (normally the engine's audio thread); never blocks. */
AVL_API avl_status AVL_CALL avl_session_read_audio(avl_session* session, int16_t* dst,
                                                   int32_t max_samples, int32_t* out_samples);

/* ------------------------------------------------------------------ sessions: mouth motion (API 1.2)
 * Every frame may carry a mouth block on the audio clock: the 15 viseme weights game engines use
 * (sil PP FF TH DD kk CH SS nn RR aa E ih oh ou, summing to 1; silence is `sil`) and ARKit-named
 * mouth and jaw blendshape weights (jawOpen, mouthClose, mouthFunnel, ...), each in [0, 1]. The
 * order of the arrays is the session's (SessionStarted names it): map curves BY NAME once per
 * session (avl_session_mouth_name), never by position. A motion-only session (settings.motion_only)
 * sends only these; it is presented on the audio clock like pixels (avl_session_present or
 * avl_session_present_playback), which picks the frame avl_session_mouth reads. */

typedef enum avl_mouth_set {
  AVL_MOUTH_VISEMES = 1,
  AVL_MOUTH_BLENDSHAPES = 2
} avl_mouth_set;

/* Number of curves of `set` (avl_mouth_set) in this session's mouth blocks. 0 before
 * AVL_EVENT_STARTED, for an unknown set, or when the server sends no mouth block. */
AVL_API int32_t AVL_CALL avl_session_mouth_count(const avl_session* session, int32_t set);

/* Name of curve `index` of `set`, e.g. "sil" or "jawOpen". Owned by the session; valid until
 * avl_session_release. NULL before AVL_EVENT_STARTED or when out of range. */
AVL_API const char* AVL_CALL avl_session_mouth_name(const avl_session* session, int32_t set,
                                                    int32_t index);

/* The mouth block of the frame the last present chose on the audio clock (the one on the surface;
 * in a motion-only session, the one that would be). Copies min(n, count) weights into each array
 * in the session's order and sets entries past the count to 0, so a caller may size its arrays
 * from avl_session_mouth_count or use a fixed size. `visemes` / `blendshapes` may be NULL with
 * n 0. *out_pts_ms (may be NULL) receives the frame's pts_ms.
 * Returns AVL_OK; or AVL_NO_NEW_FRAME when no frame with a mouth block has been presented yet, the
 * arrays then hold the rest pose (the `sil` viseme 1, every other weight 0) and *out_pts_ms -1;
 * AVL_ERR_INVALID_ARGUMENT for a negative n or a NULL array with n > 0. Any thread. */
AVL_API avl_status AVL_CALL avl_session_mouth(const avl_session* session, float* visemes,
                                              int32_t n_visemes, float* blendshapes,
                                              int32_t n_blendshapes, int64_t* out_pts_ms);

/* As avl_session_mouth, for the newest frame received (not yet due on the audio clock): for
 * tools and engines that keep their own curve buffer. */
AVL_API avl_status AVL_CALL avl_session_mouth_latest(const avl_session* session, float* visemes,
                                                     int32_t n_visemes, float* blendshapes,
                                                     int32_t n_blendshapes, int64_t* out_pts_ms);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* AVATARLAB_AVATARLAB_H_ */
