#include "connection.h"

#include <algorithm>
#include <thread>

namespace avl {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int32_t kMaxMessageBytes = 64 << 20;  // a 1024x1024 RGBA frame is 4 MiB, gRPC's default cap
constexpr const char* kServiceName = "avatarlab.v1.AvatarService";

const char* StateName(grpc_connectivity_state state) {
  switch (state) {
    case GRPC_CHANNEL_IDLE: return "IDLE";
    case GRPC_CHANNEL_CONNECTING: return "CONNECTING";
    case GRPC_CHANNEL_READY: return "READY";
    case GRPC_CHANNEL_TRANSIENT_FAILURE: return "TRANSIENT_FAILURE";
    case GRPC_CHANNEL_SHUTDOWN: return "SHUTDOWN";
  }
  return "?";
}

const char* GrpcCodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK: return "OK";
    case grpc::StatusCode::CANCELLED: return "CANCELLED";
    case grpc::StatusCode::UNKNOWN: return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND: return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS: return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED: return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED: return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE: return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED: return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL: return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE: return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS: return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED: return "UNAUTHENTICATED";
    default: return "UNKNOWN";
  }
}

avl_status MapCode(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK: return AVL_OK;
    case grpc::StatusCode::CANCELLED: return AVL_ERR_CANCELLED;
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::OUT_OF_RANGE:
    case grpc::StatusCode::ALREADY_EXISTS: return AVL_ERR_REJECTED;
    case grpc::StatusCode::DEADLINE_EXCEEDED: return AVL_ERR_DEADLINE_EXCEEDED;
    case grpc::StatusCode::NOT_FOUND: return AVL_ERR_NOT_FOUND;
    case grpc::StatusCode::PERMISSION_DENIED:
    case grpc::StatusCode::UNAUTHENTICATED: return AVL_ERR_UNAUTHENTICATED;
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return AVL_ERR_RESOURCE_EXHAUSTED;
    case grpc::StatusCode::FAILED_PRECONDITION: return AVL_ERR_FAILED_PRECONDITION;
    case grpc::StatusCode::ABORTED:
    case grpc::StatusCode::UNAVAILABLE: return AVL_ERR_UNAVAILABLE;
    case grpc::StatusCode::UNIMPLEMENTED: return AVL_ERR_PROTOCOL;
    default: return AVL_ERR_SERVER_INTERNAL;  // UNKNOWN, INTERNAL, DATA_LOSS
  }
}

int32_t OrDefault(int32_t value, int32_t fallback) { return value == 0 ? fallback : value; }

}  // namespace

Error ResolveClientSettings(const avl_client_settings* settings, uint32_t api_minor,
                            ClientConfig* config) {
  if (settings == nullptr) return Error::Ok();
  if (settings->transport != AVL_TRANSPORT_PLAINTEXT && settings->transport != AVL_TRANSPORT_TLS) {
    return MakeError(AVL_ERR_INVALID_ARGUMENT, "settings.transport must be AVL_TRANSPORT_PLAINTEXT "
                                               "(0) or AVL_TRANSPORT_TLS (1), got " +
                                                   std::to_string(settings->transport));
  }
  const struct { const char* name; int32_t value; } fields[] = {
      {"connect_timeout_ms", settings->connect_timeout_ms},
      {"call_timeout_ms", settings->call_timeout_ms},
      {"retry_max_attempts", settings->retry_max_attempts},
      {"retry_initial_backoff_ms", settings->retry_initial_backoff_ms},
      {"retry_max_backoff_ms", settings->retry_max_backoff_ms}};
  for (const auto& f : fields) {
    if (f.value < 0) {
      return MakeError(AVL_ERR_INVALID_ARGUMENT, std::string("settings.") + f.name +
                                                     " must be >= 0 (0 = default), got " +
                                                     std::to_string(f.value));
    }
  }
  config->tls = settings->transport == AVL_TRANSPORT_TLS;
  config->connect_timeout_ms = OrDefault(settings->connect_timeout_ms, config->connect_timeout_ms);
  config->call_timeout_ms = OrDefault(settings->call_timeout_ms, config->call_timeout_ms);
  config->retry_max_attempts = OrDefault(settings->retry_max_attempts, config->retry_max_attempts);
  config->retry_initial_backoff_ms =
      OrDefault(settings->retry_initial_backoff_ms, config->retry_initial_backoff_ms);
  config->retry_max_backoff_ms =
      std::max(OrDefault(settings->retry_max_backoff_ms, config->retry_max_backoff_ms),
               config->retry_initial_backoff_ms);
  if (api_minor < 1) return Error::Ok();  // a 1.0 caller's struct ends here
  const struct { const char* name; int32_t value; } health[] = {
      {"keepalive_time_ms", settings->keepalive_time_ms},
      {"stream_deadline_ms", settings->stream_deadline_ms}};
  for (const auto& f : health) {
    if (f.value < -1) {
      return MakeError(AVL_ERR_INVALID_ARGUMENT, std::string("settings.") + f.name +
                                                     " must be -1 (off), 0 (default) or > 0, got " +
                                                     std::to_string(f.value));
    }
  }
  if (settings->keepalive_timeout_ms < 0) {
    return MakeError(AVL_ERR_INVALID_ARGUMENT,
                     "settings.keepalive_timeout_ms must be >= 0 (0 = default), got " +
                         std::to_string(settings->keepalive_timeout_ms));
  }
  if (settings->keepalive_time_ms == -1) {
    config->keepalive_time_ms = 0;
  } else if (settings->keepalive_time_ms > 0) {
    config->keepalive_time_ms = std::max(settings->keepalive_time_ms, kMinKeepaliveTimeMs);
  }
  config->keepalive_timeout_ms = OrDefault(settings->keepalive_timeout_ms, config->keepalive_timeout_ms);
  if (settings->stream_deadline_ms == -1) {
    config->stream_deadline_ms = 0;
  } else if (settings->stream_deadline_ms > 0) {
    config->stream_deadline_ms = settings->stream_deadline_ms;
  }
  return Error::Ok();
}

Error FromGrpcStatus(const grpc::Status& status, const std::string& call, const std::string& target,
                     bool cancel_requested) {
  if (status.ok()) return Error::Ok();
  std::string message = call + " on " + target + " failed (" + GrpcCodeName(status.error_code()) +
                        "): " + status.error_message();
  avl_status code = MapCode(status.error_code());
  if (code == AVL_ERR_CANCELLED && !cancel_requested) {
    code = AVL_ERR_UNAVAILABLE;
    message += " [the server ended the stream, e.g. it shut down or restarted; open a new session]";
  } else if (code == AVL_ERR_UNAVAILABLE) {
    message += " [is the AvatarLab service running at " + target +
               " and reachable? a connection that stops answering keepalive pings ends here too]";
  } else if (code == AVL_ERR_DEADLINE_EXCEEDED) {
    message += " [the call or stream ran past its deadline (call_timeout_ms, stream_deadline_ms)]";
  } else if (code == AVL_ERR_UNAUTHENTICATED) {
    message += " [check the bearer token given to avl_client_create]";
  }
  return MakeError(code, std::move(message));
}

Connection::Connection(ClientConfig config, LoggerPtr logger)
    : config_(std::move(config)), logger_(std::move(logger)) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);
  args.SetMaxSendMessageSize(kMaxMessageBytes);
  // gRPC's own reconnect backoff (1 s growing to 120 s) would keep a restarted service looking
  // down long after it is back; align it with the session retry policy instead.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, config_.retry_initial_backoff_ms);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, config_.retry_initial_backoff_ms);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, config_.retry_max_backoff_ms);
  if (config_.keepalive_time_ms > 0) {
    // A connection that dies without a FIN (network gone, host frozen) is noticed by an
    // unanswered PING; without it a session would wait forever. Pings only while a call is open,
    // and without gRPC's default cap of two pings between data frames (a session waiting for
    // frames sends none).
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, config_.keepalive_time_ms);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, config_.keepalive_timeout_ms);
    args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 0);
    args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  }
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (config_.tls) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = config_.tls_root_certs_pem;
    credentials = grpc::SslCredentials(ssl);
  } else {
    credentials = grpc::InsecureChannelCredentials();
  }
  channel_ = grpc::CreateCustomChannel(config_.target, credentials, args);
  stub_ = avatarlab::v1::AvatarService::NewStub(channel_);
  health_ = grpc::health::v1::Health::NewStub(channel_);
}

void Connection::SetBearerToken(std::string token) {
  std::lock_guard<std::mutex> lock(token_mutex_);
  bearer_token_ = std::move(token);
}

std::unique_ptr<grpc::ClientContext> Connection::NewContext(int32_t deadline_ms) {
  auto context = std::make_unique<grpc::ClientContext>();
  {
    std::lock_guard<std::mutex> lock(token_mutex_);
    if (!bearer_token_.empty()) context->AddMetadata("authorization", "Bearer " + bearer_token_);
  }
  if (deadline_ms > 0) {
    context->set_deadline(std::chrono::system_clock::now() +
                          std::chrono::milliseconds(deadline_ms));
  }
  return context;
}

Error Connection::WaitConnected(int32_t timeout_ms, const std::function<bool()>& cancelled) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  grpc_connectivity_state state = channel_->GetState(/*try_to_connect=*/true);
  while (state != GRPC_CHANNEL_READY) {
    if (cancelled && cancelled()) return MakeError(AVL_ERR_CANCELLED, "cancelled while connecting");
    const auto now = Clock::now();
    if (now >= deadline) {
      return MakeError(AVL_ERR_UNAVAILABLE,
                       "could not connect to " + config_.target + " within " +
                           std::to_string(timeout_ms) + " ms (channel " + StateName(state) +
                           ") [is the AvatarLab service running there?]");
    }
    // Short slices so cancellation is noticed quickly.
    const auto slice = std::min(deadline - now, Clock::duration(std::chrono::milliseconds(100)));
    // gRPC takes system_clock deadlines only; the overall deadline stays on the steady clock.
    channel_->WaitForStateChange(state, std::chrono::system_clock::now() + slice);
    state = channel_->GetState(/*try_to_connect=*/true);
  }
  return Error::Ok();
}

template <typename Request, typename Response, typename Method>
Error Connection::Unary(const char* name, Method method, const Request& request,
                        Response* response) {
  Error connected = WaitConnected(config_.connect_timeout_ms, nullptr);
  if (!connected.ok()) {
    connected.message = std::string(name) + ": " + connected.message;
    return connected;
  }
  auto context = NewContext(config_.call_timeout_ms);
  grpc::Status status = (stub_.get()->*method)(context.get(), request, response);
  Error error = FromGrpcStatus(status, name, config_.target);
  if (!error.ok()) logger_->Log(AVL_LOG_WARNING, error.message);
  return error;
}

Error Connection::WaitServing(int32_t timeout_ms) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  std::string service = kServiceName;
  Error last = MakeError(AVL_ERR_DEADLINE_EXCEEDED, "no health answer yet");
  while (true) {
    const auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(
                               deadline - Clock::now()).count();
    if (remaining <= 0) break;
    Error connected = WaitConnected(static_cast<int32_t>(remaining), nullptr);
    if (!connected.ok()) {
      last = connected;
      break;
    }
    auto context = NewContext(static_cast<int32_t>(
        std::max<int64_t>(1, std::min<int64_t>(remaining, config_.call_timeout_ms))));
    grpc::health::v1::HealthCheckRequest request;
    request.set_service(service);
    grpc::health::v1::HealthCheckResponse response;
    grpc::Status status = health_->Check(context.get(), request, &response);
    if (status.ok() && response.status() == grpc::health::v1::HealthCheckResponse::SERVING) {
      return Error::Ok();
    }
    if (status.error_code() == grpc::StatusCode::NOT_FOUND && !service.empty()) {
      service.clear();  // the server reports only overall health
      continue;
    }
    last = status.ok() ? MakeError(AVL_ERR_UNAVAILABLE,
                                   "health of " + config_.target + " is " +
                                       grpc::health::v1::HealthCheckResponse::ServingStatus_Name(
                                           response.status()) +
                                       ", not SERVING (model still loading?)")
                       : FromGrpcStatus(status, "Health.Check", config_.target);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (last.code != AVL_ERR_UNAVAILABLE) last.code = AVL_ERR_DEADLINE_EXCEEDED;
  last.message = "not SERVING within " + std::to_string(timeout_ms) + " ms: " + last.message;
  return last;
}

Error Connection::GetServerInfo(avatarlab::v1::ServerInfo* info) {
  return Unary("GetServerInfo", &avatarlab::v1::AvatarService::Stub::GetServerInfo,
               avatarlab::v1::GetServerInfoRequest(), info);
}

Error Connection::CreateAvatar(const avatarlab::v1::CreateAvatarRequest& request,
                               avatarlab::v1::Avatar* avatar) {
  return Unary("CreateAvatar", &avatarlab::v1::AvatarService::Stub::CreateAvatar, request, avatar);
}

Error Connection::GetAvatar(const std::string& avatar_id, avatarlab::v1::Avatar* avatar) {
  avatarlab::v1::GetAvatarRequest request;
  request.set_avatar_id(avatar_id);
  return Unary("GetAvatar", &avatarlab::v1::AvatarService::Stub::GetAvatar, request, avatar);
}

Error Connection::DeleteAvatar(const std::string& avatar_id) {
  avatarlab::v1::DeleteAvatarRequest request;
  request.set_avatar_id(avatar_id);
  avatarlab::v1::DeleteAvatarResponse response;
  return Unary("DeleteAvatar", &avatarlab::v1::AvatarService::Stub::DeleteAvatar, request,
               &response);
}

Error Connection::ListAvatars(std::vector<avatarlab::v1::Avatar>* avatars) {
  avatars->clear();
  avatarlab::v1::ListAvatarsRequest request;
  request.set_page_size(1000);
  // Bounded so a server that keeps returning the same token cannot loop us forever.
  for (int page = 0; page < 10000; ++page) {
    avatarlab::v1::ListAvatarsResponse response;
    Error error =
        Unary("ListAvatars", &avatarlab::v1::AvatarService::Stub::ListAvatars, request, &response);
    if (!error.ok()) return error;
    for (auto& avatar : *response.mutable_avatars()) avatars->push_back(std::move(avatar));
    if (response.next_page_token().empty()) return Error::Ok();
    request.set_page_token(response.next_page_token());
  }
  return MakeError(AVL_ERR_PROTOCOL, "ListAvatars: server kept returning page tokens");
}

}  // namespace avl
