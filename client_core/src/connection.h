// One gRPC channel to the service plus the settings and credentials every call uses. Shared
// by a client handle and the sessions opened from it, so either may be released first.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "avatarlab/v1/avatarlab.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "logger.h"
#include "status.h"

namespace avl {

// avl_client_settings with defaults filled in.
struct ClientConfig {
  std::string target;
  bool tls = false;
  std::string tls_root_certs_pem;  // empty: system roots
  int32_t connect_timeout_ms = 5000;
  int32_t call_timeout_ms = 30000;
  int32_t retry_max_attempts = 6;
  int32_t retry_initial_backoff_ms = 250;
  int32_t retry_max_backoff_ms = 4000;
  int32_t keepalive_time_ms = 15000;  // <= 0: off
  int32_t keepalive_timeout_ms = 5000;
  int32_t stream_deadline_ms = 30 * 60 * 1000;  // <= 0: none
};

// The service closes connections that ping more often than this (grpc's ping strikes).
constexpr int32_t kMinKeepaliveTimeMs = 5000;

// Validates `settings` (NULL = defaults) and fills `config` (target and PEM set by caller).
// `api_minor` is the caller's header version: fields added later are not read from older callers.
Error ResolveClientSettings(const avl_client_settings* settings, uint32_t api_minor,
                            ClientConfig* config);

// Maps a gRPC status to a public code and an actionable message naming the call and target.
// A CANCELLED the caller did not ask for means the server dropped the stream (e.g. shutdown),
// which the caller handles like UNAVAILABLE: open a new session.
Error FromGrpcStatus(const grpc::Status& status, const std::string& call, const std::string& target,
                     bool cancel_requested = false);

class Connection {
 public:
  Connection(ClientConfig config, LoggerPtr logger);

  const ClientConfig& config() const { return config_; }
  Logger& log() { return *logger_; }
  void SetBearerToken(std::string token);

  // A context carrying the bearer token and, if deadline_ms > 0, a deadline that far ahead.
  std::unique_ptr<grpc::ClientContext> NewContext(int32_t deadline_ms);

  // Waits until the channel is READY, polling `cancelled` every 100 ms. UNAVAILABLE after
  // timeout_ms, CANCELLED when `cancelled` turns true.
  Error WaitConnected(int32_t timeout_ms, const std::function<bool()>& cancelled);

  avatarlab::v1::AvatarService::Stub& stub() { return *stub_; }

  // Unary calls: connect (connect_timeout_ms), then call with call_timeout_ms.
  Error WaitServing(int32_t timeout_ms);
  Error GetServerInfo(avatarlab::v1::ServerInfo* info);
  Error CreateAvatar(const avatarlab::v1::CreateAvatarRequest& request,
                     avatarlab::v1::Avatar* avatar);
  Error GetAvatar(const std::string& avatar_id, avatarlab::v1::Avatar* avatar);
  Error DeleteAvatar(const std::string& avatar_id);
  Error ListAvatars(std::vector<avatarlab::v1::Avatar>* avatars);

 private:
  template <typename Request, typename Response, typename Method>
  Error Unary(const char* name, Method method, const Request& request, Response* response);

  ClientConfig config_;
  LoggerPtr logger_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<avatarlab::v1::AvatarService::Stub> stub_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_;
  std::mutex token_mutex_;
  std::string bearer_token_;
};

}  // namespace avl
