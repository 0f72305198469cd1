"""Hostile clients against `avatarlab serve` in its own process (issue #22): oversized ids on every RPC that
takes one, compressed requests, header spelling, peers that stall at each step (no config, no message, no
audio, never reading), bad page tokens and names, and Health Watch through warm-up and drain. Where no grpc
client library will behave this badly, a raw HTTP/2 client (h2) speaks for the peer."""
from __future__ import annotations

import io
import threading
import time
import urllib.request

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from avatar_service.api import pb
from reliability_support import (HeldSession, RawPeer, ServerProcess, admission, config, frame, free_port, gzip_bomb,
                                 pcm16, portrait_jpeg, requests, run_session, speech, status_of)

TIMEOUTS = {"AVATARLAB_CONFIG_TIMEOUT_S": "2", "AVATARLAB_IDLE_SESSION_TIMEOUT_S": "2",
            "AVATARLAB_STALLED_READER_TIMEOUT_S": "2", "AVATARLAB_MESSAGE_TIMEOUT_S": "2"}
STATUS_LIMIT = 512  # bytes a status message may take ("a few hundred")


CODE = {c.value[0]: c for c in grpc.StatusCode}


def code_of(status: str) -> grpc.StatusCode | str:
    return CODE[int(status)] if status.isdigit() else status


def metric(server, name: str, *parts: str) -> float:
    """One series' value from the server's Prometheus endpoint (0 when the series does not exist yet)."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/metrics", timeout=10).read().decode()
    lines = [ln for ln in text.splitlines() if ln.split("{")[0].split(" ")[0] == name and all(p in ln for p in parts)]
    return float(lines[0].rsplit(" ", 1)[1]) if lines else 0.0


# ------------------------------------------------------------------------------------------ servers
@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    """No auth, short timeouts, one session per client, metrics on."""
    tmp = tmp_path_factory.mktemp("hostile")
    metrics_port = free_port()
    s = ServerProcess(tmp / "store", env={**TIMEOUTS, "AVATARLAB_MAX_SESSIONS_PER_CLIENT": "1",
                                          "AVATARLAB_METRICS_PORT": str(metrics_port)})
    s.metrics_port = metrics_port
    s.avatar_id = s.stub().CreateAvatar(pb.CreateAvatarRequest(portrait_image=portrait_jpeg()), timeout=60).avatar_id
    yield s
    s.terminate()


def _bad_id_calls(stub, bad: str, good_avatar: str):
    """Every RPC that takes an id, with `bad` in that id."""
    yield "GetAvatar", lambda: stub.GetAvatar(pb.GetAvatarRequest(avatar_id=bad), timeout=10)
    yield "DeleteAvatar", lambda: stub.DeleteAvatar(pb.DeleteAvatarRequest(avatar_id=bad), timeout=10)
    yield "Animate", lambda: stub.Animate(iter([config(bad), pb.AnimateRequest(end_of_audio=pb.EndOfAudio())]),
                                          timeout=10)
    yield "Speak.avatar_id", lambda: stub.Speak(pb.SpeakRequest(avatar_id=bad, text="hello"), timeout=10)
    yield "Speak.voice_id", lambda: stub.Speak(pb.SpeakRequest(avatar_id=good_avatar, voice_id=bad, text="hello"),
                                               timeout=10)


def test_ids_of_64_kib_and_more_are_refused_briefly_and_the_connection_keeps_serving(srv):
    stub = srv.stub()  # one channel: one HTTP/2 connection for the session and every bad call
    # a paced session on the same connection must run through, every frame, while the bad calls come
    result = {}
    session = threading.Thread(target=lambda: result.update(
        out=run_session(stub, srv.avatar_id, speech(2.0), realtime=True, timeout=60)))
    session.start()
    for n in (65, 65_000, 66_000, 70_000, 1 << 20):
        for name, call in _bad_id_calls(stub, "x" * n, srv.avatar_id):
            code, details = status_of(call)
            assert code == grpc.StatusCode.INVALID_ARGUMENT, (name, n, code, details[:200])
            assert len(details.encode()) <= STATUS_LIMIT and "at most 64" in details, (name, n, details[:200])
    # ids with characters no id has: quoted, cut, never echoed whole
    for bad in ("../../etc/passwd", "\u202e" * 60, "a" * 10 + "\x00"):
        code, details = status_of(lambda: stub.GetAvatar(pb.GetAvatarRequest(avatar_id=bad), timeout=10))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and len(details.encode()) <= STATUS_LIMIT
    session.join(60)
    frames, ended = result["out"]
    assert len(frames) == 50 and ended.stats.frames_sent == 50  # 2 s at 25 fps, none lost
    assert stub.GetAvatar(pb.GetAvatarRequest(avatar_id=srv.avatar_id), timeout=10).avatar_id == srv.avatar_id


def test_compressed_requests_are_refused_before_they_are_inflated(srv):
    stub = srv.stub()
    code, details = status_of(lambda: stub.CreateAvatar(pb.CreateAvatarRequest(portrait_image=portrait_jpeg()),
                                                        compression=grpc.Compression.Gzip, timeout=30))
    assert code == grpc.StatusCode.UNIMPLEMENTED and "compression" in details.lower(), (code, details)
    # 1 GiB of zeros in 1 MiB of gzip, sent by hand: refused from its headers, never inflated
    peak_before = srv.rss_kb("VmHWM")
    bomb = frame(gzip_bomb(1 << 30), compressed=True)
    peer = RawPeer(srv.target)
    try:
        sids = [peer.call("GetAvatar", [bomb], encoding="gzip") for _ in range(3)]
        for sid in sids:
            status, message = peer.status(sid)
            assert code_of(status) == grpc.StatusCode.UNIMPLEMENTED, (status, message)
    finally:
        peer.close()
    grew_mb = (srv.rss_kb("VmHWM") - peak_before) / 1024
    assert grew_mb < 200, f"peak memory grew by {grew_mb:.0f} MB for a refused compressed request"
    assert stub.GetAvatar(pb.GetAvatarRequest(avatar_id=srv.avatar_id), timeout=10).avatar_id == srv.avatar_id


def test_a_unary_call_without_its_message_is_answered(srv):
    peer = RawPeer(srv.target)
    try:
        half_closed = peer.call("GetServerInfo", [], end=True)  # no message, then end of stream
        status, message = peer.status(half_closed)
        assert code_of(status) == grpc.StatusCode.INVALID_ARGUMENT and "request message" in message
        open_call = peer.call("GetAvatar", [], end=False)  # no message, stream left open
        status, message = peer.status(open_call)
        assert code_of(status) == grpc.StatusCode.DEADLINE_EXCEEDED and "message_timeout_s" in message
        # the connection still serves: a proper call on it answers
        ok = peer.call("GetAvatar", [frame(pb.GetAvatarRequest(avatar_id=srv.avatar_id))])
        assert peer.status(ok)[0] == "0"
    finally:
        peer.close()


def test_an_animate_stream_without_config_ends_and_a_cancel_is_no_client_error(srv):
    hold = threading.Event()

    def nothing():
        hold.wait(30)
        yield from ()
    code, details = status_of(lambda: srv.stub().Animate(nothing(), timeout=30))
    hold.set()
    assert code == grpc.StatusCode.DEADLINE_EXCEEDED and "config_timeout_s" in details, (code, details)

    def errors(code_name):
        return metric(srv, "avatarlab_rpc_errors_total", "Animate", f'code="{code_name}"')
    invalid, cancelled = errors("INVALID_ARGUMENT"), errors("CANCELLED")
    release = threading.Event()

    def waits():
        release.wait(30)
        yield from ()
    call = srv.stub().Animate(waits(), timeout=30)
    time.sleep(0.3)  # the call is open on the server, waiting for its config
    call.cancel()
    release.set()
    peer = RawPeer(srv.target)  # and a cancel on the wire: RST_STREAM
    try:
        sid = peer.call("Animate", [], end=False)
        time.sleep(0.3)
        with peer.lock:
            peer.conn.reset_stream(sid, 8)  # 8: CANCEL
            peer._flush()
    finally:
        peer.close()
    deadline = time.monotonic() + 10
    while errors("CANCELLED") < cancelled + 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert errors("CANCELLED") == cancelled + 2 and errors("INVALID_ARGUMENT") == invalid


def test_a_session_that_gets_no_audio_ends_and_frees_its_slot(srv):
    hold = threading.Event()
    frames, code, details = [], None, ""
    try:
        for msg in srv.stub().Animate(requests(srv.avatar_id, speech(0.2), hold=hold), timeout=30):
            if msg.WhichOneof("message") == "frame":
                frames.append(msg.frame)
    except grpc.RpcError as e:
        code, details = e.code(), e.details()
    hold.set()
    assert code == grpc.StatusCode.DEADLINE_EXCEEDED and "idle_session_timeout_s" in details, (code, details)
    assert frames  # what its audio allowed (no end of audio: the look-ahead is missing) was animated first
    assert admission(srv.stub(), srv.avatar_id) == grpc.StatusCode.OK  # its one slot is free again


def test_a_peer_that_never_reads_loses_its_session_slot(srv):
    """Window 0: not one byte of the response can leave the server. The peer keeps answering pings."""
    peer = RawPeer(srv.target, window=0)
    try:
        audio = pb.AnimateRequest(audio=pb.AudioChunk(data=pcm16(speech(1.0))))
        sid = peer.call("Animate", [frame(config(srv.avatar_id)), frame(audio)], end=False)
        # the stalled session is admitted and holds a slot (this client's only one) ...
        deadline = time.monotonic() + 30
        while metric(srv, "avatarlab_active_sessions") != 1:
            assert time.monotonic() < deadline, "the never-reading session was never admitted"
            time.sleep(0.05)
        # ... until stalled_reader_timeout_s (2 s here) frees it
        while metric(srv, "avatarlab_active_sessions") != 0:
            assert time.monotonic() < deadline, "the never-reading session kept its slot"
            time.sleep(0.05)
        assert peer.data_bytes.get(sid, 0) == 0 and not peer.closed  # it read nothing; its connection lives on
        assert admission(srv.stub(), srv.avatar_id) == grpc.StatusCode.OK
    finally:
        peer.close()


def test_page_tokens_names_and_media_are_checked(srv):
    stub = srv.stub()
    for i in range(2):
        stub.CreateAvatar(pb.CreateAvatarRequest(portrait_image=portrait_jpeg(300 + 20 * i), display_name=f"p{i}"),
                          timeout=60)
    seen, token = [], ""
    while True:
        page = stub.ListAvatars(pb.ListAvatarsRequest(page_size=1, page_token=token), timeout=10)
        seen += [a.avatar_id for a in page.avatars]
        token = page.next_page_token
        if not token:
            break
    assert len(seen) == len(set(seen)) >= 3
    for bad in ("-5", " 1 ", "+3", "1", "\u0663", "0" * 10_000, token + "A" * 28, "AQAAAAAAAAABAAAAAAAAAAAAAAAA"):
        code, details = status_of(lambda: stub.ListAvatars(pb.ListAvatarsRequest(page_token=bad), timeout=10))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "page_token" in details, (bad[:20], code)
    for bad in ("bell\x07", "a\u202eb", "zero\u200bwidth", "line\u2028break", "x" * 129):
        code, details = status_of(lambda: stub.CreateAvatar(
            pb.CreateAvatarRequest(portrait_image=portrait_jpeg(), display_name=bad), timeout=30))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "display_name" in details, (bad[:20], code)
    ok = stub.CreateAvatar(pb.CreateAvatarRequest(portrait_image=portrait_jpeg(), display_name="Zoë the Brave 👾"),
                           timeout=60)
    assert ok.display_name == "Zoë the Brave 👾"
    code, details = status_of(lambda: stub.CreateAvatar(pb.CreateAvatarRequest(idle_video=portrait_jpeg()), timeout=30))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "still image" in details, (code, details)


def test_a_one_pixel_portrait_is_a_client_error_every_time(srv):
    from PIL import Image
    stub = srv.stub()
    for colour in [(0, 0, 0), (255, 255, 255), (200, 150, 120)] * 4:
        buf = io.BytesIO()
        Image.new("RGB", (1, 1), colour).save(buf, "JPEG")
        code, details = status_of(lambda: stub.CreateAvatar(pb.CreateAvatarRequest(portrait_image=buf.getvalue()),
                                                            timeout=30))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "face" in details, (code, details)


# ------------------------------------------------------------------------------------------ identity
TOKEN, OTHER = "tok-" + "a" * 28, "tok-" + "b" * 28


@pytest.fixture(scope="module")
def authed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("authed")
    s = ServerProcess(tmp / "store", env={**TIMEOUTS, "AVATARLAB_AUTH_TOKENS": f"{TOKEN},{OTHER}",
                                          "AVATARLAB_MAX_SESSIONS_PER_CLIENT": "2"})
    s.avatar_id = s.stub().CreateAvatar(pb.CreateAvatarRequest(portrait_image=portrait_jpeg()), timeout=60,
                                        metadata=[("authorization", f"Bearer {TOKEN}")]).avatar_id
    yield s
    s.terminate()


def test_the_per_client_cap_cannot_be_multiplied_by_spelling(authed):
    stub = authed.stub()
    spellings = [f"{scheme} {TOKEN}" for scheme in ("Bearer", "bearer", "BEARER", "bEaReR")] + [f"Bearer  {TOKEN} "]
    held = [HeldSession(stub, authed.avatar_id, [("authorization", spellings[i])]) for i in range(2)]
    try:
        for auth in spellings:  # one token, however spelt, is one client with its 2 sessions taken
            assert admission(stub, authed.avatar_id, [("authorization", auth)]) == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert admission(stub, authed.avatar_id, [("authorization", f"Bearer {OTHER}")]) == grpc.StatusCode.OK
    finally:
        for h in held:
            h.close()
    # two authorization headers: refused, whichever comes last
    for pair in ([TOKEN, OTHER], [OTHER, TOKEN], [TOKEN, TOKEN]):
        md = [("authorization", f"Bearer {t}") for t in pair]
        code, details = status_of(lambda: stub.GetServerInfo(pb.GetServerInfoRequest(), metadata=md, timeout=10))
        assert code == grpc.StatusCode.UNAUTHENTICATED and "authorization" in details, (pair, code)


def test_the_token_is_checked_before_the_body_is_read(authed):
    peer = RawPeer(authed.target)
    try:
        # headers only: no body has come and none will; the answer must not wait for it
        sid = peer.call("CreateAvatar", [], end=False)
        status, message = peer.status(sid)
        # had the server waited for the body, message_timeout_s would have ended it with DEADLINE_EXCEEDED
        assert code_of(status) == grpc.StatusCode.UNAUTHENTICATED, (status, message)
    finally:
        peer.close()
    # health answers without a token (probes), reflection does not (it hands out the descriptor set)
    ch = authed.channel()
    assert health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=10).status == 1
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
    refl = reflection_pb2_grpc.ServerReflectionStub(ch)
    code, _ = status_of(lambda: refl.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10))
    assert code == grpc.StatusCode.UNAUTHENTICATED
    out = next(refl.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10,
                                         metadata=[("authorization", f"Bearer {TOKEN}")]))
    assert "avatarlab.v1.AvatarService" in {s.name for s in out.list_services_response.service}


# ------------------------------------------------------------------------------------------ health
def test_health_watch_follows_warmup_serving_and_drain(tmp_path):
    gate = tmp_path / "warm-up may start"
    prelude = (  # the server's own warm-up, held until the test lets it go
        "import os, time\n"
        "from avatar_service.server.app import App\n"
        "_real = App.warmup\n"
        "def _gated(self):\n"
        f"    while not os.path.exists({str(gate)!r}): time.sleep(0.05)\n"
        "    _real(self)\n"
        "App.warmup = _gated\n")
    srv = ServerProcess(tmp_path / "store", prelude=prelude, wait=False, grace_s=2.0)
    seen: list[int] = []
    changed = threading.Condition()
    outcome = {}

    def watch():
        with grpc.insecure_channel(srv.target) as ch:
            try:
                for msg in health_pb2_grpc.HealthStub(ch).Watch(
                        health_pb2.HealthCheckRequest(service="avatarlab.v1.AvatarService"), wait_for_ready=True,
                        timeout=120):
                    with changed:
                        seen.append(msg.status)
                        changed.notify_all()
            except grpc.RpcError as e:
                outcome["code"] = e.code()

    def wait_for(status):
        with changed:
            assert changed.wait_for(lambda: seen and seen[-1] == status, 60), (seen, srv.log())

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    try:
        wait_for(health_pb2.HealthCheckResponse.NOT_SERVING)  # listening, model loaded, warm-up held
        gate.touch()
        wait_for(health_pb2.HealthCheckResponse.SERVING)
        srv.proc.send_signal(15)  # SIGTERM: drain
        wait_for(health_pb2.HealthCheckResponse.NOT_SERVING)
    finally:
        gate.touch()
        rc = srv.terminate(60)
    t.join(30)
    assert seen[0] == health_pb2.HealthCheckResponse.NOT_SERVING and health_pb2.HealthCheckResponse.SERVING in seen
    assert "code" not in outcome or outcome["code"] != grpc.StatusCode.INTERNAL, outcome
    assert rc == 0


def test_an_idle_video_is_decoded_into_the_face_window_within_its_byte_budget(tmp_path):
    """A 1080p clip keeps only a scaled square around the face: the frames, together, fit the budget."""
    from PIL import Image

    from avatar_service.face.detect import FaceDetector
    from avatar_service.media import decode_video, write_mp4
    from avatar_service.server.avatars import FaceWindowFrames

    face = np.asarray(Image.open(io.BytesIO(portrait_jpeg(600))).convert("RGB"))
    canvas = np.full((1080, 1920, 3), 90, np.uint8)
    canvas[240:840, 660:1260] = face
    clip = tmp_path / "hd.mp4"
    write_mp4(clip, [canvas] * 50, 25)
    budget = 16 << 20
    detector = FaceDetector()
    window = FaceWindowFrames(detector, face_px=256, crop_px=128, budget_bytes=budget, max_frames=52)
    frames = decode_video(clip.read_bytes(), 10, max_pixels=40_000_000, convert=window)
    assert len(frames) == 50
    assert sum({id(f): f.nbytes for f in frames}.values()) <= budget  # repeated frames are one array
    assert frames[0].shape[0] < 1080 and frames[0].shape[1] < 1920 and window.scale <= 1
    assert detector.one_face(frames[0]).box[2] >= 48  # the face is still there, large enough for an avatar
