#include "test_support.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

extern char** environ;

namespace avl_test {

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool FileExists(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0;
}

namespace {
uint32_t Le32(const std::string& s, size_t at) {
  return static_cast<uint8_t>(s[at]) | static_cast<uint8_t>(s[at + 1]) << 8 |
         static_cast<uint8_t>(s[at + 2]) << 16 | static_cast<uint32_t>(static_cast<uint8_t>(s[at + 3])) << 24;
}
uint16_t Le16(const std::string& s, size_t at) {
  return static_cast<uint16_t>(static_cast<uint8_t>(s[at]) | static_cast<uint8_t>(s[at + 1]) << 8);
}
}  // namespace

bool ReadWav(const std::string& path, Wav* wav, std::string* error) {
  const std::string data = ReadFile(path);
  if (data.size() < 12 || data.compare(0, 4, "RIFF") != 0 || data.compare(8, 4, "WAVE") != 0) {
    *error = path + ": not a RIFF/WAVE file";
    return false;
  }
  bool have_fmt = false;
  for (size_t at = 12; at + 8 <= data.size();) {
    const std::string id = data.substr(at, 4);
    const uint32_t size = Le32(data, at + 4);
    const size_t body = at + 8;
    if (id == "fmt " && size >= 16) {
      if (Le16(data, body) != 1 || Le16(data, body + 14) != 16) {
        *error = path + ": only 16-bit PCM WAV is supported here";
        return false;
      }
      wav->channels = Le16(data, body + 2);
      wav->sample_rate_hz = static_cast<int32_t>(Le32(data, body + 4));
      have_fmt = true;
    } else if (id == "data" && have_fmt) {
      const size_t n = std::min<size_t>(size, data.size() - body) / 2;
      wav->samples.resize(n);
      std::memcpy(wav->samples.data(), data.data() + body, n * 2);
      return true;
    }
    at = body + size + (size & 1);
  }
  *error = path + ": no fmt/data chunk";
  return false;
}

std::string AvatarlabBin() {
  if (const char* env = std::getenv("AVATARLAB_BIN"); env != nullptr && *env != '\0') return env;
#ifdef AVL_DEFAULT_AVATARLAB_BIN
  return AVL_DEFAULT_AVATARLAB_BIN;
#else
  return "avatarlab";
#endif
}

std::string RepoRoot() {
#ifdef AVL_REPO_ROOT
  return AVL_REPO_ROOT;
#else
  return "..";
#endif
}

std::string DataDir() {
  if (const char* env = std::getenv("AVATARLAB_DATA"); env != nullptr && *env != '\0') return env;
  return RepoRoot() + "/../shared/data";
}

std::string MakeTempDir(const std::string& prefix) {
  std::string pattern = "/tmp/" + prefix + "XXXXXX";
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  return mkdtemp(buffer.data()) ? std::string(buffer.data()) : std::string();
}

ServerProcess::ServerProcess(int port, std::string store_dir, std::vector<std::string> extra_env)
    : port_(port), store_dir_(std::move(store_dir)), extra_env_(std::move(extra_env)) {
  // Beside the store, spelled without "..": the store folder does not exist until the server
  // makes it, and fopen of "<store>/../x" fails while it does not (the log then went to stdout).
  const size_t slash = store_dir_.find_last_of('/');
  const std::string parent = slash == std::string::npos ? "." : store_dir_.substr(0, slash);
  log_path_ = parent + "/server-" + std::to_string(port) + ".log";
}

ServerProcess::~ServerProcess() { Stop(); }

bool ServerProcess::Start(std::string* error) {
  const std::string bin = AvatarlabBin();
  if (access(bin.c_str(), X_OK) != 0) {
    *error = "avatarlab executable not found at " + bin +
             " (set AVATARLAB_BIN or the CMake cache variable AVATARLAB_BIN)";
    return false;
  }
  const std::string listen = target();
  std::vector<std::string> args = {bin,         "serve",      "--listen", listen,
                                   "--store",   store_dir_,   "--model",  "tiny",
                                   "--grace",   "1"};
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) env.emplace_back(*e);
  for (const auto& e : extra_env_) env.push_back(e);
  pid_t pid = fork();
  if (pid < 0) {
    *error = std::string("fork: ") + std::strerror(errno);
    return false;
  }
  if (pid == 0) {
    FILE* log = std::fopen(log_path_.c_str(), "a");
    if (log != nullptr) {
      dup2(fileno(log), STDOUT_FILENO);
      dup2(fileno(log), STDERR_FILENO);
    }
    setpgid(0, 0);  // own process group, so Kill() also takes any children
    std::vector<char*> argv, envp;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    execve(bin.c_str(), argv.data(), envp.data());
    _exit(127);
  }
  pid_ = pid;
  return true;
}

void ServerProcess::Kill() {
  if (pid_ <= 0) return;
  kill(-pid_, SIGKILL);
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

void ServerProcess::Pause() {
  if (pid_ > 0) kill(pid_, SIGSTOP);
}

void ServerProcess::Resume() {
  if (pid_ > 0) kill(pid_, SIGCONT);
}

void ServerProcess::Stop() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  for (int i = 0; i < 100; ++i) {  // 10 s for a graceful drain
    if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
      pid_ = -1;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  Kill();
}

std::string ServerProcess::LogTail(size_t max_bytes) const {
  const std::string log = ReadFile(log_path_);
  return log.size() > max_bytes ? log.substr(log.size() - max_bytes) : log;
}

void EventRecorder::Callback(void* user, avl_session*, const avl_event* event) {
  auto* self = static_cast<EventRecorder*>(user);
  std::lock_guard<std::mutex> lock(self->mutex_);
  self->events_.push_back(*event);
  self->cv_.notify_all();
}

std::vector<avl_event> EventRecorder::events() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return events_;
}

int EventRecorder::Count(int32_t type) const {
  std::lock_guard<std::mutex> lock(mutex_);
  int n = 0;
  for (const auto& e : events_) n += e.type == type;
  return n;
}

bool EventRecorder::WaitFor(int32_t type, int timeout_ms) {
  std::unique_lock<std::mutex> lock(mutex_);
  return cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] {
    for (const auto& e : events_) {
      if (e.type == type) return true;
    }
    return false;
  });
}

void LogRecorder::Callback(void* user, int32_t level, const char* message) {
  auto* self = static_cast<LogRecorder*>(user);
  std::lock_guard<std::mutex> lock(self->mutex);
  self->lines.emplace_back(level, message);
}

std::string SessionError(const avl_session* session) {
  int32_t length = 0;
  avl_session_error(session, nullptr, 0, &length);
  std::string message(static_cast<size_t>(length) + 1, '\0');
  avl_session_error(session, message.data(), length + 1, nullptr);
  message.resize(static_cast<size_t>(length));
  return message;
}

}  // namespace avl_test
