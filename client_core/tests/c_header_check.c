/* The header must compile as C99 and keep the struct layouts the C# and Unreal bindings mirror.
 * A failure here means a binding-breaking change: add a new struct or function instead. */
#include <stddef.h>

#include "avatarlab/avatarlab.h"

#define AVL_CHECK(cond, name) typedef char avl_check_##name[(cond) ? 1 : -1]

AVL_CHECK(sizeof(avl_client_settings) == 40, client_settings_size);
AVL_CHECK(sizeof(avl_playback_settings) == 8, playback_settings_size);
AVL_CHECK(sizeof(avl_playback_clock) == 16, playback_clock_size);
AVL_CHECK(sizeof(avl_playback_advice) == 16, playback_advice_size);
AVL_CHECK(sizeof(avl_server_info) == 40, server_info_size);
AVL_CHECK(sizeof(avl_avatar_info) == 24, avatar_info_size);
AVL_CHECK(sizeof(avl_session_settings) == 64, session_settings_size);
AVL_CHECK(offsetof(avl_session_settings, motion_only) == 56, session_settings_motion_only); /* 1.1 callers end here */
AVL_CHECK(offsetof(avl_session_settings, has_seed) == 8, session_settings_has_seed);
AVL_CHECK(offsetof(avl_session_settings, guidance_scale) == 52, session_settings_guidance);
AVL_CHECK(sizeof(avl_event) == 24, event_size);
AVL_CHECK(offsetof(avl_event, frame_index) == 8, event_frame_index);
AVL_CHECK(sizeof(avl_session_info) == 64, session_info_size);
AVL_CHECK(offsetof(avl_session_info, motion_only) == 48, session_info_motion_only); /* 1.1 callers end here */
AVL_CHECK(offsetof(avl_session_info, frames_received) == 40, session_info_frames);
AVL_CHECK(sizeof(avl_session_stats) == 40, session_stats_size);
AVL_CHECK(sizeof(avl_frame_info) == 56, frame_info_size);
AVL_CHECK(offsetof(avl_frame_info, dirty_x) == 24, frame_info_dirty_x);
AVL_CHECK(offsetof(avl_frame_info, starved) == 52, frame_info_starved);

/* Called from the C++ test so the C object is linked, not just compiled. */
uint32_t avl_header_check_version_from_c(void) { return AVL_API_VERSION; }
