// Helpers for tests that go through the public C API: a free loopback port, the AvatarLab
// service as a child process, media files, and an event recorder for session callbacks.
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "avatarlab/avatarlab.h"

namespace avl_test {

// A TCP port on 127.0.0.1 that nothing listens on right now.
int FreePort();

std::string ReadFile(const std::string& path);
bool FileExists(const std::string& path);

struct Wav {
  int32_t sample_rate_hz = 0;
  int32_t channels = 0;
  std::vector<int16_t> samples;  // interleaved
};
// Reads a PCM s16 WAV file; returns false (with `error`) for anything else.
bool ReadWav(const std::string& path, Wav* wav, std::string* error);

// The avatarlab executable: env AVATARLAB_BIN, else the build-time default.
std::string AvatarlabBin();
// Repository root (for avatar_service/assets) and the shared data folder (env AVATARLAB_DATA,
// default <repo>/../shared/data).
std::string RepoRoot();
std::string DataDir();

// `avatarlab serve --model tiny` on a loopback port, its log in a temp folder. Stop() sends
// SIGTERM (SIGKILL after a timeout); Kill() simulates a crash.
class ServerProcess {
 public:
  ServerProcess(int port, std::string store_dir, std::vector<std::string> extra_env = {});
  ~ServerProcess();
  bool Start(std::string* error);
  void Kill();
  void Stop();
  // SIGSTOP / SIGCONT: the process freezes with its sockets open (no FIN, no RST), as a host
  // whose network vanished looks to the client.
  void Pause();
  void Resume();
  bool running() const { return pid_ > 0; }
  std::string target() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string LogTail(size_t max_bytes = 4000) const;

 private:
  int port_;
  std::string store_dir_;
  std::string log_path_;
  std::vector<std::string> extra_env_;
  pid_t pid_ = -1;
};

std::string MakeTempDir(const std::string& prefix);

// Collects session events from the callback thread.
class EventRecorder {
 public:
  static void AVL_CALL Callback(void* user, avl_session* session, const avl_event* event);
  std::vector<avl_event> events() const;
  int Count(int32_t type) const;
  // Waits until an event of `type` arrived; false on timeout.
  bool WaitFor(int32_t type, int timeout_ms);

 private:
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<avl_event> events_;
};

// Collects log lines.
struct LogRecorder {
  static void AVL_CALL Callback(void* user, int32_t level, const char* message);
  std::mutex mutex;
  std::vector<std::pair<int32_t, std::string>> lines;
  size_t size() {
    std::lock_guard<std::mutex> lock(mutex);
    return lines.size();
  }
};

std::string SessionError(const avl_session* session);

}  // namespace avl_test
