// The C boundary: argument checks, handle ownership, and the guarantee that no C++ exception
// escapes. Everything else lives in the modules behind it.
#include <cstddef>
#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "avatarlab/avatarlab.h"
#include "connection.h"
#include "logger.h"
#include "session.h"
#include "status.h"

struct avl_context {
  avl::LoggerPtr logger;
  uint32_t api_minor = 0;  // the caller's header version: which struct fields it knows
};
struct avl_client {
  std::shared_ptr<avl::Connection> connection;
  uint32_t api_minor = 0;  // the context's: which struct fields its caller knows
};
struct avl_avatar {
  avatarlab::v1::Avatar avatar;
};
struct avl_avatar_list {
  std::vector<avatarlab::v1::Avatar> avatars;
};
struct avl_session {
  std::shared_ptr<avl::Session> impl;
  uint32_t api_minor = 0;
};

namespace {

using avl::Fail;

// Runs `body`, turning any exception into a status so none crosses into C, C# or Unreal.
template <typename Body>
avl_status Guard(const char* function, Body&& body) noexcept {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    return Fail(AVL_ERR_OUT_OF_MEMORY, std::string(function) + ": out of memory");
  } catch (const std::exception& e) {
    return Fail(AVL_ERR_INTERNAL, std::string(function) + ": unexpected exception: " + e.what());
  } catch (...) {
    return Fail(AVL_ERR_INTERNAL, std::string(function) + ": unexpected non-standard exception");
  }
}

avl_status Null(const char* function, const char* argument) {
  return Fail(AVL_ERR_INVALID_ARGUMENT, std::string(function) + ": " + argument + " is NULL");
}

// proto3 strings must be UTF-8; catching it here names the argument instead of failing deep in
// serialization.
bool ValidUtf8(const char* s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s);
  while (*p != 0) {
    int extra = 0;
    if (*p < 0x80) extra = 0;
    else if ((*p & 0xE0) == 0xC0 && *p >= 0xC2) extra = 1;
    else if ((*p & 0xF0) == 0xE0) extra = 2;
    else if ((*p & 0xF8) == 0xF0 && *p <= 0xF4) extra = 3;
    else return false;
    ++p;
    for (int i = 0; i < extra; ++i, ++p) {
      if ((*p & 0xC0) != 0x80) return false;
    }
  }
  return true;
}

avl_status CheckText(const char* function, const char* argument, const char* value) {
  if (value != nullptr && !ValidUtf8(value)) {
    return Fail(AVL_ERR_INVALID_ARGUMENT,
                std::string(function) + ": " + argument + " is not valid UTF-8");
  }
  return AVL_OK;
}

// Copies `text` into `buffer` (NUL-terminated, truncated to fit). Returns the full length.
int32_t CopyOut(const std::string& text, char* buffer, int32_t buffer_size) {
  if (buffer != nullptr && buffer_size > 0) {
    const size_t n = std::min(text.size(), static_cast<size_t>(buffer_size - 1));
    std::memcpy(buffer, text.data(), n);
    buffer[n] = '\0';
  }
  return static_cast<int32_t>(text.size());
}

avl_avatar* NewAvatar(avatarlab::v1::Avatar avatar) {
  auto* handle = new avl_avatar;
  handle->avatar = std::move(avatar);
  return handle;
}

avl_status OpenSession(const char* function, avl_client* client, avl::SessionKind kind,
                       const char* avatar_id, const char* text, const char* voice_id,
                       const avl_session_settings* settings, avl_event_fn event_fn, void* user,
                       avl_session** out_session) {
  if (out_session == nullptr) return Null(function, "out_session");
  *out_session = nullptr;
  if (client == nullptr) return Null(function, "client");
  if (avatar_id == nullptr) return Null(function, "avatar_id");
  if (settings == nullptr) return Null(function, "settings");
  for (auto [name, value] : {std::pair<const char*, const char*>{"avatar_id", avatar_id},
                             {"text", text},
                             {"voice_id", voice_id}}) {
    if (avl_status s = CheckText(function, name, value); s != AVL_OK) return s;
  }
  // A caller built for an older header passed a shorter struct: read only the fields it knows.
  avl_session_settings known{};
  std::memcpy(&known, settings,
              client->api_minor >= 2 ? sizeof known : offsetof(avl_session_settings, motion_only));
  avl::SessionRequest request;
  avl::Error error = avl::BuildSessionRequest(kind, avatar_id, text ? text : "",
                                              voice_id ? voice_id : "", known, &request);
  if (!error.ok()) return Fail(error.code, std::string(function) + ": " + error.message);
  auto handle = std::make_unique<avl_session>();
  handle->impl = std::make_shared<avl::Session>(client->connection, std::move(request), event_fn,
                                                user, handle.get());
  handle->api_minor = client->api_minor;
  handle->impl->Start();
  *out_session = handle.release();
  return AVL_OK;
}

void FillFrameInfo(const avl::PresentResult& r, avl_frame_info* out_info) {
  if (out_info == nullptr) return;
  *out_info = avl_frame_info{};
  out_info->frame_index = r.frame_index;
  out_info->pts_ms = r.pts_ms;
  out_info->duration_ms = r.duration_ms;
  out_info->dirty_x = r.dirty.x;
  out_info->dirty_y = r.dirty.y;
  out_info->dirty_width = r.dirty.width;
  out_info->dirty_height = r.dirty.height;
  out_info->frames_applied = r.frames_applied;
  out_info->frames_dropped = r.frames_dropped;
  out_info->frames_buffered = r.frames_buffered;
  out_info->starved = r.starved ? 1 : 0;
}

// avl_session_mouth and avl_session_mouth_latest.
avl_status ReadMouth(const char* function, const avl_session* session, bool latest,
                     float* visemes, int32_t n_visemes, float* blendshapes,
                     int32_t n_blendshapes, int64_t* out_pts_ms) {
  if (out_pts_ms != nullptr) *out_pts_ms = -1;
  if (session == nullptr) return Null(function, "session");
  if (n_visemes < 0 || n_blendshapes < 0) {
    return Fail(AVL_ERR_INVALID_ARGUMENT, std::string(function) + ": n_visemes and n_blendshapes "
                                              "must be >= 0, got " + std::to_string(n_visemes) +
                                              " and " + std::to_string(n_blendshapes));
  }
  if (visemes == nullptr && n_visemes > 0) return Null(function, "visemes");
  if (blendshapes == nullptr && n_blendshapes > 0) return Null(function, "blendshapes");
  avl::MouthBlock block;
  avl::Error error = session->impl->Mouth(latest, &block);
  if (!error.ok()) return Fail(error.code, std::string(function) + ": " + error.message);
  avl::CopyWeights(block.visemes, visemes, n_visemes);
  avl::CopyWeights(block.blendshapes, blendshapes, n_blendshapes);
  if (out_pts_ms != nullptr) *out_pts_ms = block.present ? block.pts_ms : -1;
  return block.present ? AVL_OK : AVL_NO_NEW_FRAME;
}

}  // namespace

extern "C" {

uint32_t avl_get_version(void) { return AVL_API_VERSION; }

const char* avl_status_string(avl_status status) { return avl::StatusString(status); }

const char* avl_last_error(void) { return avl::LastError(); }

// ------------------------------------------------------------------ context

avl_status avl_context_create(uint32_t api_version, avl_log_fn log_fn, void* log_user,
                              int32_t min_level, avl_context** out_context) {
  return Guard(__func__, [&]() -> avl_status {
    if (out_context == nullptr) return Null(__func__, "out_context");
    *out_context = nullptr;
    const uint32_t major = api_version >> 16, minor = (api_version >> 8) & 0xFF;
    if (major != AVL_API_VERSION_MAJOR || minor > AVL_API_VERSION_MINOR) {
      return Fail(AVL_ERR_VERSION_MISMATCH,
                  "avl_context_create: caller built for API " + std::to_string(major) + "." +
                      std::to_string(minor) + " but this library implements " +
                      std::to_string(AVL_API_VERSION_MAJOR) + "." +
                      std::to_string(AVL_API_VERSION_MINOR) +
                      "; ship the libavatarlab_client that matches the plugin");
    }
    if (min_level < AVL_LOG_DEBUG || min_level > AVL_LOG_OFF) {
      return Fail(AVL_ERR_INVALID_ARGUMENT, "avl_context_create: min_level must be 0..4, got " +
                                                std::to_string(min_level));
    }
    auto context = std::make_unique<avl_context>();
    context->logger = std::make_shared<avl::Logger>(log_fn, log_user, min_level);
    context->api_minor = minor;
    context->logger->Log(AVL_LOG_DEBUG, "AvatarLab client core " +
                                            std::to_string(AVL_API_VERSION_MAJOR) + "." +
                                            std::to_string(AVL_API_VERSION_MINOR) + "." +
                                            std::to_string(AVL_API_VERSION_PATCH) + " ready");
    *out_context = context.release();
    return AVL_OK;
  });
}

avl_status avl_context_set_log_level(avl_context* context, int32_t min_level) {
  return Guard(__func__, [&]() -> avl_status {
    if (context == nullptr) return Null(__func__, "context");
    if (min_level < AVL_LOG_DEBUG || min_level > AVL_LOG_OFF) {
      return Fail(AVL_ERR_INVALID_ARGUMENT, "avl_context_set_log_level: min_level must be 0..4");
    }
    context->logger->SetLevel(min_level);
    return AVL_OK;
  });
}

void avl_context_release(avl_context** context) {
  if (context == nullptr || *context == nullptr) return;
  try {
    (*context)->logger->Detach();
    delete *context;
  } catch (...) {
  }
  *context = nullptr;
}

// ------------------------------------------------------------------ client

avl_status avl_client_create(avl_context* context, const char* target,
                             const avl_client_settings* settings, const char* tls_root_certs_pem,
                             const char* bearer_token, avl_client** out_client) {
  return Guard(__func__, [&]() -> avl_status {
    if (out_client == nullptr) return Null(__func__, "out_client");
    *out_client = nullptr;
    if (context == nullptr) return Null(__func__, "context");
    if (target == nullptr || *target == '\0') {
      return Fail(AVL_ERR_INVALID_ARGUMENT,
                  "avl_client_create: target is empty; pass \"host:port\", e.g. "
                  "\"127.0.0.1:50051\"");
    }
    for (auto [name, value] : {std::pair<const char*, const char*>{"target", target},
                               {"bearer_token", bearer_token}}) {
      if (avl_status s = CheckText(__func__, name, value); s != AVL_OK) return s;
    }
    avl::ClientConfig config;
    avl::Error error = avl::ResolveClientSettings(settings, context->api_minor, &config);
    if (error.ok() && tls_root_certs_pem != nullptr && !config.tls) {
      error = avl::MakeError(AVL_ERR_INVALID_ARGUMENT,
                             "tls_root_certs_pem given but settings.transport is not "
                             "AVL_TRANSPORT_TLS");
    }
    if (!error.ok()) return Fail(error.code, std::string(__func__) + ": " + error.message);
    config.target = target;
    if (tls_root_certs_pem != nullptr) config.tls_root_certs_pem = tls_root_certs_pem;
    auto client = std::make_unique<avl_client>();
    client->connection = std::make_shared<avl::Connection>(std::move(config), context->logger);
    client->api_minor = context->api_minor;
    if (bearer_token != nullptr) client->connection->SetBearerToken(bearer_token);
    *out_client = client.release();
    return AVL_OK;
  });
}

avl_status avl_client_set_bearer_token(avl_client* client, const char* bearer_token) {
  return Guard(__func__, [&]() -> avl_status {
    if (client == nullptr) return Null(__func__, "client");
    if (avl_status s = CheckText(__func__, "bearer_token", bearer_token); s != AVL_OK) return s;
    client->connection->SetBearerToken(bearer_token ? bearer_token : "");
    return AVL_OK;
  });
}

avl_status avl_client_wait_ready(avl_client* client, int32_t timeout_ms) {
  return Guard(__func__, [&]() -> avl_status {
    if (client == nullptr) return Null(__func__, "client");
    if (timeout_ms < 0) return Fail(AVL_ERR_INVALID_ARGUMENT, "avl_client_wait_ready: timeout < 0");
    avl::Error error = client->connection->WaitServing(timeout_ms);
    return error.ok() ? AVL_OK : Fail(error);
  });
}

void avl_client_release(avl_client** client) {
  if (client == nullptr || *client == nullptr) return;
  try {
    delete *client;
  } catch (...) {
  }
  *client = nullptr;
}

avl_status avl_client_get_server_info(avl_client* client, avl_server_info* out_info,
                                      char* version_buffer, int32_t version_buffer_size) {
  return Guard(__func__, [&]() -> avl_status {
    if (client == nullptr) return Null(__func__, "client");
    if (out_info == nullptr) return Null(__func__, "out_info");
    avatarlab::v1::ServerInfo info;
    avl::Error error = client->connection->GetServerInfo(&info);
    if (!error.ok()) return Fail(error);
    *out_info = avl_server_info{};
    out_info->model_sample_rate_hz = info.model_sample_rate_hz();
    out_info->face_size_px = info.face_size_px();
    out_info->default_sampler_steps = info.default_sampler_steps();
    out_info->default_guidance_scale = info.default_guidance_scale();
    out_info->max_concurrent_sessions = info.limits().max_concurrent_sessions();
    out_info->max_sessions_per_client = info.limits().max_sessions_per_client();
    out_info->max_audio_seconds_per_session = info.limits().max_audio_seconds_per_session();
    out_info->max_message_bytes = info.limits().max_message_bytes();
    out_info->max_text_chars = info.limits().max_text_chars();
    out_info->voice_count = info.voices_size();
    CopyOut(info.server_version() + " " + info.model_id() + " " + info.backend() + " " +
                info.device(),
            version_buffer, version_buffer_size);
    return AVL_OK;
  });
}

// ------------------------------------------------------------------ avatars

avl_status avl_client_create_avatar(avl_client* client, const char* display_name, int32_t source,
                                    const uint8_t* media, size_t media_size,
                                    avl_avatar** out_avatar) {
  return Guard(__func__, [&]() -> avl_status {
    if (out_avatar == nullptr) return Null(__func__, "out_avatar");
    *out_avatar = nullptr;
    if (client == nullptr) return Null(__func__, "client");
    if (media == nullptr || media_size == 0) {
      return Fail(AVL_ERR_INVALID_ARGUMENT,
                  "avl_client_create_avatar: media is empty; pass the image or video file bytes");
    }
    if (avl_status s = CheckText(__func__, "display_name", display_name); s != AVL_OK) return s;
    avatarlab::v1::CreateAvatarRequest request;
    if (display_name != nullptr) request.set_display_name(display_name);
    const std::string bytes(reinterpret_cast<const char*>(media), media_size);
    if (source == AVL_AVATAR_SOURCE_PORTRAIT) {
      request.set_portrait_image(bytes);
    } else if (source == AVL_AVATAR_SOURCE_IDLE_VIDEO) {
      request.set_idle_video(bytes);
    } else {
      return Fail(AVL_ERR_INVALID_ARGUMENT,
                  "avl_client_create_avatar: source must be AVL_AVATAR_SOURCE_PORTRAIT (1) or "
                  "AVL_AVATAR_SOURCE_IDLE_VIDEO (2), got " + std::to_string(source));
    }
    avatarlab::v1::Avatar avatar;
    avl::Error error = client->connection->CreateAvatar(request, &avatar);
    if (!error.ok()) return Fail(error);
    *out_avatar = NewAvatar(std::move(avatar));
    return AVL_OK;
  });
}

avl_status avl_client_get_avatar(avl_client* client, const char* avatar_id,
                                 avl_avatar** out_avatar) {
  return Guard(__func__, [&]() -> avl_status {
    if (out_avatar == nullptr) return Null(__func__, "out_avatar");
    *out_avatar = nullptr;
    if (client == nullptr) return Null(__func__, "client");
    if (avatar_id == nullptr || *avatar_id == '\0') {
      return Fail(AVL_ERR_INVALID_ARGUMENT, "avl_client_get_avatar: avatar_id is empty");
    }
    if (avl_status s = CheckText(__func__, "avatar_id", avatar_id); s != AVL_OK) return s;
    avatarlab::v1::Avatar avatar;
    avl::Error error = client->connection->GetAvatar(avatar_id, &avatar);
    if (!error.ok()) return Fail(error);
    *out_avatar = NewAvatar(std::move(avatar));
    return AVL_OK;
  });
}

avl_status avl_client_delete_avatar(avl_client* client, const char* avatar_id) {
  return Guard(__func__, [&]() -> avl_status {
    if (client == nullptr) return Null(__func__, "client");
    if (avatar_id == nullptr || *avatar_id == '\0') {
      return Fail(AVL_ERR_INVALID_ARGUMENT, "avl_client_delete_avatar: avatar_id is empty");
    }
    if (avl_status s = CheckText(__func__, "avatar_id", avatar_id); s != AVL_OK) return s;
    avl::Error error = client->connection->DeleteAvatar(avatar_id);
    return error.ok() ? AVL_OK : Fail(error);
  });
}

avl_status avl_client_list_avatars(avl_client* client, avl_avatar_list** out_list) {
  return Guard(__func__, [&]() -> avl_status {
    if (out_list == nullptr) return Null(__func__, "out_list");
    *out_list = nullptr;
    if (client == nullptr) return Null(__func__, "client");
    auto list = std::make_unique<avl_avatar_list>();
    avl::Error error = client->connection->ListAvatars(&list->avatars);
    if (!error.ok()) return Fail(error);
    *out_list = list.release();
    return AVL_OK;
  });
}

int32_t avl_avatar_list_count(const avl_avatar_list* list) {
  return list == nullptr ? 0 : static_cast<int32_t>(list->avatars.size());
}

avl_status avl_avatar_list_get(const avl_avatar_list* list, int32_t index,
                               avl_avatar** out_avatar) {
  return Guard(__func__, [&]() -> avl_status {
    if (out_avatar == nullptr) return Null(__func__, "out_avatar");
    *out_avatar = nullptr;
    if (list == nullptr) return Null(__func__, "list");
    if (index < 0 || static_cast<size_t>(index) >= list->avatars.size()) {
      return Fail(AVL_ERR_INVALID_ARGUMENT, "avl_avatar_list_get: index " + std::to_string(index) +
                                                " outside 0.." +
                                                std::to_string(list->avatars.size()) + ")");
    }
    *out_avatar = NewAvatar(list->avatars[static_cast<size_t>(index)]);
    return AVL_OK;
  });
}

void avl_avatar_list_release(avl_avatar_list** list) {
  if (list == nullptr || *list == nullptr) return;
  delete *list;
  *list = nullptr;
}

const char* avl_avatar_id(const avl_avatar* avatar) {
  return avatar == nullptr ? nullptr : avatar->avatar.avatar_id().c_str();
}

const char* avl_avatar_display_name(const avl_avatar* avatar) {
  return avatar == nullptr ? nullptr : avatar->avatar.display_name().c_str();
}

const char* avl_avatar_model_id(const avl_avatar* avatar) {
  return avatar == nullptr ? nullptr : avatar->avatar.model_id().c_str();
}

avl_status avl_avatar_get_info(const avl_avatar* avatar, avl_avatar_info* out_info) {
  return Guard(__func__, [&]() -> avl_status {
    if (avatar == nullptr) return Null(__func__, "avatar");
    if (out_info == nullptr) return Null(__func__, "out_info");
    *out_info = avl_avatar_info{};
    out_info->create_time_unix_ms = avatar->avatar.create_time_unix_ms();
    out_info->source = avatar->avatar.source_kind();
    out_info->face_width_px = avatar->avatar.face_width_px();
    out_info->face_height_px = avatar->avatar.face_height_px();
    out_info->pose_frame_count = avatar->avatar.pose_frame_count();
    return AVL_OK;
  });
}

void avl_avatar_release(avl_avatar** avatar) {
  if (avatar == nullptr || *avatar == nullptr) return;
  delete *avatar;
  *avatar = nullptr;
}

// ------------------------------------------------------------------ sessions

avl_status avl_client_open_animate(avl_client* client, const char* avatar_id,
                                   const avl_session_settings* settings, avl_event_fn event_fn,
                                   void* user, avl_session** out_session) {
  return Guard(__func__, [&]() -> avl_status {
    return OpenSession(__func__, client, avl::SessionKind::kAnimate, avatar_id, nullptr, nullptr,
                       settings, event_fn, user, out_session);
  });
}

avl_status avl_client_open_speak(avl_client* client, const char* avatar_id, const char* text,
                                 const char* voice_id, const avl_session_settings* settings,
                                 avl_event_fn event_fn, void* user, avl_session** out_session) {
  return Guard(__func__, [&]() -> avl_status {
    if (text == nullptr) return Null(__func__, "text");
    return OpenSession(__func__, client, avl::SessionKind::kSpeak, avatar_id, text, voice_id,
                       settings, event_fn, user, out_session);
  });
}

avl_status avl_session_push_audio(avl_session* session, const void* data, size_t size_bytes) {
  return Guard(__func__, [&]() -> avl_status {
    if (session == nullptr) return Null(__func__, "session");
    if (data == nullptr && size_bytes > 0) return Null(__func__, "data");
    avl::Error error = session->impl->PushAudio(data, size_bytes);
    return error.ok() ? AVL_OK : Fail(error.code, std::string(__func__) + ": " + error.message);
  });
}

avl_status avl_session_end_audio(avl_session* session) {
  return Guard(__func__, [&]() -> avl_status {
    if (session == nullptr) return Null(__func__, "session");
    avl::Error error = session->impl->EndAudio();
    return error.ok() ? AVL_OK : Fail(error.code, std::string(__func__) + ": " + error.message);
  });
}

avl_status avl_session_cancel(avl_session* session) {
  return Guard(__func__, [&]() -> avl_status {
    if (session == nullptr) return Null(__func__, "session");
    session->impl->Cancel();
    return AVL_OK;
  });
}

int32_t avl_session_get_state(const avl_session* session) {
  return session == nullptr ? 0 : session->impl->state();
}

avl_status avl_session_wait(avl_session* session, int32_t timeout_ms) {
  return Guard(__func__, [&]() -> avl_status {
    if (session == nullptr) return Null(__func__, "session");
    avl::Error error = session->impl->Wait(timeout_ms);
    return error.ok() ? AVL_OK : Fail(error);
  });
}

avl_status avl_session_poll_event(avl_session* session, avl_event* out_event) {
  return Guard(__func__, [&]() -> avl_status {
    if (session == nullptr) return Null(__func__, "session");
    if (out_event == nullptr) return Null(__func__, "out_event");
    return session->impl->PollEvent(out_event) ? AVL_OK : AVL_NO_NEW_FRAME;
  });
}

avl_status avl_session_error(const avl_session* session, char* buffer, int32_t buffer_size,
                             int32_t* out_message_length) {
  return Guard(__func__, [&]() -> avl_status {
    if (session == nullptr) return Null(__func__, "session");
    avl::Error error = session->impl->error();
    const int32_t length = CopyOut(error.message, buffer, buffer_size);
    if (out_message_length != nullptr) *out_message_length = length;
    return error.code;
  });
}

void avl_session_release(avl_session** session) {
  if (session == nullptr || *session == nullptr) return;
  try {
    (*session)->impl->Shutdown();
    delete *session;
  } catch (...) {
  }
  *session = nullptr;
}

avl_status avl_session_get_info(const avl_session* session, avl_session_info* out_info) {
  return Guard(__func__, [&]() -> avl_status {
    if (session == nullptr) return Null(__func__, "session");
    if (out_info == nullptr) return Null(__func__, "out_info");
    // Written only as far as the caller's struct goes (48 bytes before API 1.2).
    avl_session_info full{};
    avl::Error error = session->impl->Info(&full);
    std::memcpy(out_info, &full,
                session->api_minor >= 2 ? sizeof full : offsetof(avl_session_info, motion_only));
    return error.ok() ? AVL_OK : Fail(error.code, std::string(__func__) + ": " + error.message);
  });
}

avl_status avl_session_id(const avl_session* session, char* buffer, int32_t buffer_size) {
  return Guard(__func__, [&]() -> avl_status {
    if (session == nullptr) return Null(__func__, "session");
    if (buffer == nullptr || buffer_size <= 0) {
      return Fail(AVL_ERR_INVALID_ARGUMENT, "avl_session_id: buffer is NULL or buffer_size <= 0");
    }
    CopyOut(session->impl->id(), buffer, buffer_size);
    return AVL_OK;
  });
}

avl_status avl_session_get_stats(const avl_session* session, avl_session_stats* out_stats) {
  return Guard(__func__, [&]() -> avl_status {
    if (session == nullptr) return Null(__func__, "session");
    if (out_stats == nullptr) return Null(__func__, "out_stats");
    avl::Error error = session->impl->Stats(out_stats);
    return error.ok() ? AVL_OK : Fail(error.code, std::string(__func__) + ": " + error.message);
  });
}

avl_status avl_session_present(avl_session* session, int64_t audio_position_ms,
                               avl_frame_info* out_info) {
  return Guard(__func__, [&]() -> avl_status {
    if (session == nullptr) return Null(__func__, "session");
    avl::PresentResult r;
    avl::Error error = session->impl->Present(audio_position_ms, &r);
    if (!error.ok()) return Fail(error.code, std::string(__func__) + ": " + error.message);
    FillFrameInfo(r, out_info);
    return r.changed ? AVL_OK : AVL_NO_NEW_FRAME;
  });
}

avl_status avl_session_set_playback(avl_session* session, const avl_playback_settings* settings) {
  return Guard(__func__, [&]() -> avl_status {
    if (session == nullptr) return Null(__func__, "session");
    avl::Error error = session->impl->SetPlayback(settings);
    return error.ok() ? AVL_OK : Fail(error.code, std::string(__func__) + ": " + error.message);
  });
}

avl_status avl_session_present_playback(avl_session* session, const avl_playback_clock* clock,
                                        avl_playback_advice* out_advice,
                                        avl_frame_info* out_info) {
  return Guard(__func__, [&]() -> avl_status {
    if (session == nullptr) return Null(__func__, "session");
    if (clock == nullptr) return Null(__func__, "clock");
    avl::PresentResult r;
    avl::PlaybackAdvice advice;
    avl::Error error = session->impl->PresentPlayback(*clock, &advice, &r);
    if (!error.ok()) return Fail(error.code, std::string(__func__) + ": " + error.message);
    FillFrameInfo(r, out_info);
    if (out_advice != nullptr) {
      *out_advice = avl_playback_advice{};
      out_advice->start_playback = advice.start_playback ? 1 : 0;
      out_advice->finished = advice.finished ? 1 : 0;
      out_advice->heard_ms = advice.heard_ms;
    }
    return r.changed ? AVL_OK : AVL_NO_NEW_FRAME;
  });
}

const uint8_t* avl_session_surface_pixels(const avl_session* session) {
  if (session == nullptr) return nullptr;
  try {
    return session->impl->SurfacePixels();
  } catch (...) {
    return nullptr;
  }
}

avl_status avl_session_copy_surface(const avl_session* session, int32_t x, int32_t y,
                                    int32_t width, int32_t height, uint8_t* dst,
                                    int32_t dst_stride, size_t dst_size) {
  return Guard(__func__, [&]() -> avl_status {
    if (session == nullptr) return Null(__func__, "session");
    if (dst == nullptr) return Null(__func__, "dst");
    avl::Error error =
        session->impl->CopySurface(avl::Rect{x, y, width, height}, dst, dst_stride, dst_size);
    return error.ok() ? AVL_OK : Fail(error.code, std::string(__func__) + ": " + error.message);
  });
}

avl_status avl_session_read_audio(avl_session* session, int16_t* dst, int32_t max_samples,
                                  int32_t* out_samples) {
  return Guard(__func__, [&]() -> avl_status {
    if (out_samples != nullptr) *out_samples = 0;
    if (session == nullptr) return Null(__func__, "session");
    if (out_samples == nullptr) return Null(__func__, "out_samples");
    if (max_samples < 0) return Fail(AVL_ERR_INVALID_ARGUMENT, "avl_session_read_audio: max < 0");
    if (dst == nullptr && max_samples > 0) return Null(__func__, "dst");
    *out_samples = session->impl->ReadAudio(dst, max_samples);
    return AVL_OK;
  });
}

// ------------------------------------------------------------------ mouth motion

int32_t avl_session_mouth_count(const avl_session* session, int32_t set) {
  if (session == nullptr) return 0;
  try {
    return session->impl->MouthCount(set);
  } catch (...) {
    return 0;
  }
}

const char* avl_session_mouth_name(const avl_session* session, int32_t set, int32_t index) {
  if (session == nullptr) return nullptr;
  try {
    return session->impl->MouthName(set, index);
  } catch (...) {
    return nullptr;
  }
}

avl_status avl_session_mouth(const avl_session* session, float* visemes, int32_t n_visemes,
                             float* blendshapes, int32_t n_blendshapes, int64_t* out_pts_ms) {
  return Guard(__func__, [&]() -> avl_status {
    return ReadMouth(__func__, session, false, visemes, n_visemes, blendshapes, n_blendshapes,
                     out_pts_ms);
  });
}

avl_status avl_session_mouth_latest(const avl_session* session, float* visemes,
                                    int32_t n_visemes, float* blendshapes, int32_t n_blendshapes,
                                    int64_t* out_pts_ms) {
  return Guard(__func__, [&]() -> avl_status {
    return ReadMouth(__func__, session, true, visemes, n_visemes, blendshapes, n_blendshapes,
                     out_pts_ms);
  });
}

}  // extern "C"
