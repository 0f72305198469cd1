// The C ABI as the engine plugins see it (shared library, public header only), without a
// server: version check, handle lifecycle, argument errors, logging, and "service down".
#include <gtest/gtest.h>

#include <iterator>
#include <set>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <string>
#include <thread>

#include "avatarlab/avatarlab.h"
#include "test_support.h"

extern "C" uint32_t avl_header_check_version_from_c(void);

namespace {

using avl_test::EventRecorder;
using avl_test::LogRecorder;
using Clock = std::chrono::steady_clock;

long ElapsedMs(Clock::time_point since) {
  return static_cast<long>(
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - since).count());
}

class Abi : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(avl_context_create(AVL_API_VERSION, &LogRecorder::Callback, &log_, AVL_LOG_DEBUG,
                                 &context_),
              AVL_OK)
        << avl_last_error();
  }
  void TearDown() override { avl_context_release(&context_); }

  // A client for a loopback port nothing listens on, with short timeouts.
  avl_client* DeadClient(int32_t attempts) {
    avl_client_settings settings{};
    settings.connect_timeout_ms = 300;
    settings.call_timeout_ms = 1000;
    settings.retry_max_attempts = attempts;
    settings.retry_initial_backoff_ms = 50;
    settings.retry_max_backoff_ms = 100;
    dead_target_ = "127.0.0.1:" + std::to_string(avl_test::FreePort());
    avl_client* client = nullptr;
    EXPECT_EQ(avl_client_create(context_, dead_target_.c_str(), &settings, nullptr, nullptr,
                                &client),
              AVL_OK);
    return client;
  }

  static avl_session_settings AnimateSettings() {
    avl_session_settings s{};
    s.audio_encoding = AVL_AUDIO_PCM_S16LE;
    s.sample_rate_hz = 16000;
    s.channels = 1;
    return s;
  }

  LogRecorder log_;
  avl_context* context_ = nullptr;
  std::string dead_target_;
};

TEST(Version, MatchingVersionIsAcceptedAndOthersAreRefusedWithAReason) {
  EXPECT_EQ(avl_get_version(), static_cast<uint32_t>(AVL_API_VERSION));
  EXPECT_EQ(avl_header_check_version_from_c(), avl_get_version()) << "header compiled as C99";
  avl_context* context = reinterpret_cast<avl_context*>(0x1);  // must be overwritten with NULL
  EXPECT_EQ(avl_context_create((AVL_API_VERSION_MAJOR + 1) << 16, nullptr, nullptr, AVL_LOG_OFF,
                               &context),
            AVL_ERR_VERSION_MISMATCH);
  EXPECT_EQ(context, nullptr);
  EXPECT_NE(std::string(avl_last_error()).find("caller built for API 2.0"), std::string::npos)
      << avl_last_error();
  // A caller newer than the library (higher minor) may use functions it lacks.
  EXPECT_EQ(avl_context_create(AVL_API_VERSION + (1 << 8), nullptr, nullptr, AVL_LOG_OFF,
                               &context),
            AVL_ERR_VERSION_MISMATCH);
  ASSERT_EQ(avl_context_create(AVL_API_VERSION, nullptr, nullptr, AVL_LOG_OFF, &context), AVL_OK);
  ASSERT_NE(context, nullptr);
  avl_context_release(&context);
  EXPECT_EQ(context, nullptr);
}

TEST(Status, EveryCodeHasItsOwnNameAndUnknownCodesAreNamedSo) {
  const avl_status codes[] = {AVL_OK,
                              AVL_NO_NEW_FRAME,
                              AVL_ERR_INVALID_ARGUMENT,
                              AVL_ERR_VERSION_MISMATCH,
                              AVL_ERR_BAD_STATE,
                              AVL_ERR_BUFFER_TOO_SMALL,
                              AVL_ERR_OUT_OF_MEMORY,
                              AVL_ERR_UNAVAILABLE,
                              AVL_ERR_UNAUTHENTICATED,
                              AVL_ERR_NOT_FOUND,
                              AVL_ERR_RESOURCE_EXHAUSTED,
                              AVL_ERR_FAILED_PRECONDITION,
                              AVL_ERR_DEADLINE_EXCEEDED,
                              AVL_ERR_CANCELLED,
                              AVL_ERR_REJECTED,
                              AVL_ERR_SERVER_INTERNAL,
                              AVL_ERR_PROTOCOL,
                              AVL_ERR_DECODE,
                              AVL_ERR_INTERNAL};
  std::set<std::string> names;
  for (avl_status code : codes) {
    const std::string s = avl_status_string(code);
    EXPECT_EQ(s.rfind("AVL_", 0), 0u) << s;
    EXPECT_EQ(s.find("UNKNOWN"), std::string::npos) << code;
    names.insert(s);
  }
  EXPECT_EQ(names.size(), std::size(codes));
  EXPECT_EQ(std::string(avl_status_string(-12345)).rfind("AVL_ERR_UNKNOWN", 0), 0u);
}

TEST_F(Abi, ReleaseNullsTheHandleAndAcceptsNull) {
  avl_client* client = nullptr;
  ASSERT_EQ(avl_client_create(context_, "127.0.0.1:1", nullptr, nullptr, "token", &client),
            AVL_OK);
  ASSERT_NE(client, nullptr);
  avl_client_release(&client);
  EXPECT_EQ(client, nullptr);
  avl_client_release(&client);   // pointer to NULL
  avl_client_release(nullptr);   // NULL pointer
  avl_session_release(nullptr);
  avl_avatar_release(nullptr);
  avl_avatar_list_release(nullptr);
  avl_context_release(nullptr);
  EXPECT_EQ(avl_avatar_list_count(nullptr), 0);
  EXPECT_EQ(avl_avatar_id(nullptr), nullptr);
  EXPECT_EQ(avl_session_get_state(nullptr), 0);
  EXPECT_EQ(avl_session_surface_pixels(nullptr), nullptr);
}

TEST_F(Abi, BadArgumentsAreRejectedWithAMessageNamingThem) {
  avl_client* client = reinterpret_cast<avl_client*>(0x1);
  EXPECT_EQ(avl_client_create(context_, "", nullptr, nullptr, nullptr, &client),
            AVL_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(client, nullptr);
  EXPECT_NE(std::string(avl_last_error()).find("target is empty"), std::string::npos);

  avl_client_settings settings{};
  settings.transport = 7;
  EXPECT_EQ(avl_client_create(context_, "h:1", &settings, nullptr, nullptr, &client),
            AVL_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(avl_last_error()).find("transport"), std::string::npos);
  settings = avl_client_settings{};
  settings.call_timeout_ms = -1;
  EXPECT_EQ(avl_client_create(context_, "h:1", &settings, nullptr, nullptr, &client),
            AVL_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(avl_last_error()).find("call_timeout_ms"), std::string::npos);
  settings = avl_client_settings{};
  settings.keepalive_time_ms = -2;
  EXPECT_EQ(avl_client_create(context_, "h:1", &settings, nullptr, nullptr, &client),
            AVL_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(avl_last_error()).find("keepalive_time_ms"), std::string::npos);
  {
    // A caller built for API 1.0 passes the 24-byte struct: the 1.1 fields are never read.
    avl_context* old_caller = nullptr;
    ASSERT_EQ(avl_context_create(AVL_API_VERSION_MAJOR << 16, nullptr, nullptr, AVL_LOG_OFF,
                                 &old_caller),
              AVL_OK);
    avl_client* old_client = nullptr;
    EXPECT_EQ(avl_client_create(old_caller, "h:1", &settings, nullptr, nullptr, &old_client),
              AVL_OK) << avl_last_error();
    avl_client_release(&old_client);
    avl_context_release(&old_caller);
  }
  EXPECT_EQ(avl_client_create(context_, "h:1", nullptr, nullptr, "bad\xff token", &client),
            AVL_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(avl_last_error()).find("UTF-8"), std::string::npos);
  EXPECT_EQ(avl_client_create(context_, "h:1", nullptr, "PEM", nullptr, &client),
            AVL_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(avl_client_create(nullptr, "h:1", nullptr, nullptr, nullptr, &client),
            AVL_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(avl_client_create(context_, "h:1", nullptr, nullptr, nullptr, nullptr),
            AVL_ERR_INVALID_ARGUMENT);

  ASSERT_EQ(avl_client_create(context_, "127.0.0.1:1", nullptr, nullptr, nullptr, &client),
            AVL_OK);
  avl_session* session = reinterpret_cast<avl_session*>(0x1);
  avl_session_settings s{};  // audio_encoding missing
  EXPECT_EQ(avl_client_open_animate(client, "a", &s, nullptr, nullptr, &session),
            AVL_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(session, nullptr);
  EXPECT_NE(std::string(avl_last_error()).find("audio_encoding"), std::string::npos);
  s = AnimateSettings();
  s.fps = 61;
  EXPECT_EQ(avl_client_open_animate(client, "a", &s, nullptr, nullptr, &session),
            AVL_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(avl_last_error()).find("settings.fps"), std::string::npos);
  s = AnimateSettings();
  EXPECT_EQ(avl_client_open_animate(client, "", &s, nullptr, nullptr, &session),
            AVL_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(avl_client_open_speak(client, "a", "", nullptr, &s, nullptr, nullptr, &session),
            AVL_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(avl_last_error()).find("text is empty"), std::string::npos);
  EXPECT_EQ(avl_client_create_avatar(client, "x", AVL_AVATAR_SOURCE_PORTRAIT, nullptr, 0,
                                     nullptr),
            AVL_ERR_INVALID_ARGUMENT);
  avl_avatar* avatar = nullptr;
  const uint8_t byte = 0;
  EXPECT_EQ(avl_client_create_avatar(client, "x", 9, &byte, 1, &avatar), AVL_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(avl_last_error()).find("source must be"), std::string::npos);
  avl_client_release(&client);
}

// API 1.2: the mouth block's functions, and callers built for 1.1 whose session structs are 8 and
// 16 bytes shorter (their bytes past the end are never read or written).
TEST_F(Abi, MouthMotionFunctionsCheckArgumentsAndOlderCallersKeepTheirStructSizes) {
  float visemes[15], blend[18];
  int64_t pts = 7;
  EXPECT_EQ(avl_session_mouth(nullptr, visemes, 15, blend, 18, &pts), AVL_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(pts, -1);
  EXPECT_EQ(avl_session_mouth_count(nullptr, AVL_MOUTH_VISEMES), 0);
  EXPECT_EQ(avl_session_mouth_name(nullptr, AVL_MOUTH_VISEMES, 0), nullptr);

  avl_client* client = DeadClient(50);  // keeps the session connecting: never STARTED
  ASSERT_NE(client, nullptr);
  avl_session_settings s = AnimateSettings();
  s.motion_only = 2;
  avl_session* session = nullptr;
  EXPECT_EQ(avl_client_open_animate(client, "a", &s, nullptr, nullptr, &session),
            AVL_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(avl_last_error()).find("settings.motion_only"), std::string::npos);
  s.motion_only = 1;
  ASSERT_EQ(avl_client_open_animate(client, "a", &s, nullptr, nullptr, &session), AVL_OK);
  EXPECT_EQ(avl_session_mouth(session, visemes, 15, blend, 18, &pts), AVL_ERR_BAD_STATE)
      << "no names before STARTED";
  EXPECT_EQ(avl_session_mouth_latest(session, visemes, -1, blend, 18, &pts),
            AVL_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(avl_session_mouth(session, nullptr, 15, blend, 18, &pts), AVL_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(avl_last_error()).find("visemes is NULL"), std::string::npos);
  EXPECT_EQ(avl_session_mouth_count(session, AVL_MOUTH_BLENDSHAPES), 0);
  EXPECT_EQ(avl_session_mouth_name(session, AVL_MOUTH_VISEMES, 0), nullptr);
  unsigned char info_bytes[sizeof(avl_session_info)];
  std::memset(info_bytes, 0xAB, sizeof info_bytes);
  EXPECT_EQ(avl_session_get_info(session, reinterpret_cast<avl_session_info*>(info_bytes)),
            AVL_ERR_BAD_STATE);
  EXPECT_EQ(info_bytes[offsetof(avl_session_info, motion_only)], 0) << "a 1.2 caller's struct is filled";
  avl_session_release(&session);
  avl_client_release(&client);

  // A caller built for API 1.1: the bytes after its 56-byte settings (here garbage that a 1.2
  // caller would be refused for) are not read, and only 48 bytes of its info are written.
  avl_context* old_caller = nullptr;
  ASSERT_EQ(avl_context_create((AVL_API_VERSION_MAJOR << 16) | (1 << 8), nullptr, nullptr,
                               AVL_LOG_OFF, &old_caller),
            AVL_OK);
  avl_client_settings cs{};
  cs.connect_timeout_ms = 300;
  cs.retry_max_attempts = 50;
  cs.retry_initial_backoff_ms = 50;
  avl_client* old_client = nullptr;
  const std::string target = "127.0.0.1:" + std::to_string(avl_test::FreePort());
  ASSERT_EQ(avl_client_create(old_caller, target.c_str(), &cs, nullptr, nullptr, &old_client),
            AVL_OK);
  s = AnimateSettings();
  s.motion_only = 0x55555555;
  s.reserved = 0x55555555;
  EXPECT_EQ(avl_client_open_animate(old_client, "a", &s, nullptr, nullptr, &session), AVL_OK)
      << avl_last_error();
  std::memset(info_bytes, 0xAB, sizeof info_bytes);
  EXPECT_EQ(avl_session_get_info(session, reinterpret_cast<avl_session_info*>(info_bytes)),
            AVL_ERR_BAD_STATE);
  EXPECT_EQ(info_bytes[0], AVL_SESSION_CONNECTING) << "state is filled";
  for (size_t i = offsetof(avl_session_info, motion_only); i < sizeof info_bytes; ++i) {
    ASSERT_EQ(info_bytes[i], 0xAB) << "byte " << i << " is past a 1.1 caller's struct";
  }
  avl_session_release(&session);
  avl_client_release(&old_client);
  avl_context_release(&old_caller);
}

TEST_F(Abi, LogCallbackGetsLinesAndNeverRunsAfterTheContextIsReleased) {
  EXPECT_GE(log_.size(), 1u) << "context creation logs its version at DEBUG";
  avl_client* client = DeadClient(1);
  ASSERT_NE(client, nullptr);
  avl_avatar_list* list = nullptr;
  EXPECT_EQ(avl_client_list_avatars(client, &list), AVL_ERR_UNAVAILABLE);
  ASSERT_EQ(avl_context_set_log_level(context_, AVL_LOG_OFF), AVL_OK);
  const size_t before_release = log_.size();
  avl_context_release(&context_);
  // The client keeps working (it holds the context's state) but must not log any more.
  EXPECT_EQ(avl_client_list_avatars(client, &list), AVL_ERR_UNAVAILABLE);
  EXPECT_EQ(log_.size(), before_release);
  avl_client_release(&client);
}

TEST_F(Abi, ServiceDownGivesACleanUnavailableErrorForCalls) {
  avl_client* client = DeadClient(1);
  const auto t0 = Clock::now();
  avl_avatar_list* list = reinterpret_cast<avl_avatar_list*>(0x1);
  EXPECT_EQ(avl_client_list_avatars(client, &list), AVL_ERR_UNAVAILABLE);
  EXPECT_EQ(list, nullptr);
  const std::string message = avl_last_error();
  EXPECT_NE(message.find(dead_target_), std::string::npos) << message;
  EXPECT_NE(message.find("AvatarLab service running"), std::string::npos) << message;
  EXPECT_LT(ElapsedMs(t0), 3000) << "bounded by connect_timeout_ms";

  avl_server_info info{};
  EXPECT_EQ(avl_client_get_server_info(client, &info, nullptr, 0), AVL_ERR_UNAVAILABLE);
  const avl_status ready = avl_client_wait_ready(client, 400);
  EXPECT_TRUE(ready == AVL_ERR_UNAVAILABLE || ready == AVL_ERR_DEADLINE_EXCEEDED) << ready;
  EXPECT_NE(std::string(avl_last_error()).find("not SERVING within 400 ms"), std::string::npos)
      << avl_last_error();
  avl_client_release(&client);
}

TEST_F(Abi, ServiceDownSessionRetriesWithBackoffThenFailsCleanly) {
  avl_client* client = DeadClient(3);
  EventRecorder events;
  avl_session* session = nullptr;
  const avl_session_settings s = AnimateSettings();
  ASSERT_EQ(avl_client_open_animate(client, "some-avatar", &s, &EventRecorder::Callback, &events,
                                    &session),
            AVL_OK);
  EXPECT_EQ(avl_session_get_state(session), AVL_SESSION_CONNECTING);
  std::vector<int16_t> audio(1600, 0);
  EXPECT_EQ(avl_session_push_audio(session, audio.data(), audio.size() * 2), AVL_OK)
      << "audio is queued while connecting";
  EXPECT_EQ(avl_session_present(session, 0, nullptr), AVL_ERR_BAD_STATE);
  const avl_playback_clock clock{0, -1};
  avl_playback_advice advice{};
  EXPECT_EQ(avl_session_present_playback(session, &clock, &advice, nullptr), AVL_ERR_BAD_STATE);
  EXPECT_EQ(avl_session_present_playback(session, nullptr, &advice, nullptr),
            AVL_ERR_INVALID_ARGUMENT);
  const avl_playback_settings bad{0, -1};
  EXPECT_EQ(avl_session_set_playback(session, &bad), AVL_ERR_INVALID_ARGUMENT);
  const avl_playback_settings good{500, 80};
  EXPECT_EQ(avl_session_set_playback(session, &good), AVL_OK);
  EXPECT_EQ(avl_session_set_playback(session, nullptr), AVL_OK);
  EXPECT_EQ(avl_session_wait(session, 10000), AVL_ERR_UNAVAILABLE);
  EXPECT_EQ(avl_session_get_state(session), AVL_SESSION_FAILED);

  const auto all = events.events();
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].type, AVL_EVENT_RETRYING);
  EXPECT_EQ(all[0].frame_index, 1);
  EXPECT_EQ(all[0].pts_ms, 50);  // first backoff
  EXPECT_EQ(all[1].type, AVL_EVENT_RETRYING);
  EXPECT_EQ(all[1].pts_ms, 100);  // doubled, capped at retry_max_backoff_ms
  EXPECT_EQ(all[2].type, AVL_EVENT_ERROR);
  EXPECT_EQ(all[2].status, AVL_ERR_UNAVAILABLE);
  const std::string message = avl_test::SessionError(session);
  EXPECT_NE(message.find("gave up after 3 attempts"), std::string::npos) << message;
  EXPECT_NE(message.find(dead_target_), std::string::npos) << message;

  EXPECT_EQ(avl_session_push_audio(session, audio.data(), 2), AVL_ERR_BAD_STATE);
  avl_session_info info{};
  EXPECT_EQ(avl_session_get_info(session, &info), AVL_ERR_BAD_STATE);
  EXPECT_EQ(info.state, AVL_SESSION_FAILED);
  avl_session_release(&session);
  EXPECT_EQ(session, nullptr);
  avl_client_release(&client);
}

TEST_F(Abi, CancelWhileRetryingStopsPromptlyAndEventsCanBePolled) {
  avl_client* client = DeadClient(1000);
  avl_session* session = nullptr;
  const avl_session_settings s = AnimateSettings();
  ASSERT_EQ(avl_client_open_animate(client, "some-avatar", &s, nullptr, nullptr, &session),
            AVL_OK);
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  const auto t0 = Clock::now();
  EXPECT_EQ(avl_session_cancel(session), AVL_OK);
  EXPECT_EQ(avl_session_wait(session, 5000), AVL_ERR_CANCELLED);
  EXPECT_LT(ElapsedMs(t0), 1000);
  EXPECT_EQ(avl_session_get_state(session), AVL_SESSION_CANCELLED);
  EXPECT_EQ(avl_session_cancel(session), AVL_OK) << "cancelling twice is harmless";

  avl_event event{};
  int retrying = 0, errors = 0;
  while (avl_session_poll_event(session, &event) == AVL_OK) {
    retrying += event.type == AVL_EVENT_RETRYING;
    if (event.type == AVL_EVENT_ERROR) {
      ++errors;
      EXPECT_EQ(event.status, AVL_ERR_CANCELLED);
    }
  }
  EXPECT_GE(retrying, 1);
  EXPECT_EQ(errors, 1);
  EXPECT_EQ(avl_session_poll_event(session, &event), AVL_NO_NEW_FRAME);
  avl_session_release(&session);
  avl_client_release(&client);
}

TEST_F(Abi, ReleasingARunningSessionReturnsQuickly) {
  avl_client* client = DeadClient(1000);
  EventRecorder events;
  avl_session* session = nullptr;
  const avl_session_settings s = AnimateSettings();
  ASSERT_EQ(avl_client_open_animate(client, "x", &s, &EventRecorder::Callback, &events, &session),
            AVL_OK);
  avl_client_release(&client);  // the session keeps the connection alive
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const auto t0 = Clock::now();
  avl_session_release(&session);
  EXPECT_LT(ElapsedMs(t0), 1000);
  EXPECT_EQ(session, nullptr);
  EXPECT_EQ(events.Count(AVL_EVENT_ERROR), 1) << "the terminal event is delivered before release";
}

// Documented as not allowed, but a managed binding may do it by accident: it must not crash or
// deadlock, and no callback may follow.
TEST_F(Abi, ReleasingASessionFromItsOwnCallbackIsSurvivable) {
  struct State {
    avl_session* session = nullptr;
    std::atomic<int> calls{0};
  } state;
  avl_client* client = DeadClient(1000);
  const avl_session_settings s = AnimateSettings();
  auto callback = [](void* user, avl_session*, const avl_event*) {
    auto* st = static_cast<State*>(user);
    if (st->calls++ == 0) avl_session_release(&st->session);
  };
  ASSERT_EQ(avl_client_open_animate(client, "x", &s, callback, &state, &state.session), AVL_OK);
  for (int i = 0; i < 100 && state.calls == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(state.calls, 1);
  EXPECT_EQ(state.session, nullptr);
  avl_client_release(&client);
}

}  // namespace
