"""The server as an operator runs it (`avatarlab serve` in its own process): kill -9 in the middle of
storing an avatar, restart, SIGTERM drain, a client process killed mid-stream, and property-based
fuzzing of every request message with memory watched from outside."""
from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import grpc
import pytest
from google.protobuf.descriptor import FieldDescriptor as FD
from hypothesis import HealthCheck, given, settings, strategies as st

from avatar_service.api import pb
from reliability_support import (REPO, ServerProcess, freed_within, portrait_jpeg, requests, run_session, speech,
                                 status_of)

pytestmark = pytest.mark.slow  # server processes killed and fuzzed: `pytest -m "not slow"` skips it

CLIENT_ERRORS = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
                 grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.OUT_OF_RANGE}


def _all_avatars(stub) -> list[pb.Avatar]:
    out, token = [], ""
    while True:
        page = stub.ListAvatars(pb.ListAvatarsRequest(page_size=50, page_token=token), timeout=10)
        out += page.avatars
        token = page.next_page_token
        if not token:
            return out


# ------------------------------------------------------------------------------------ durability
def test_kill9_while_storing_an_avatar_leaves_nothing_half_written_and_restart_serves_every_acknowledged(tmp_path):
    store = tmp_path / "store"
    t_start = time.monotonic()
    srv = ServerProcess(store)
    print(f"server up in {time.monotonic() - t_start:.1f} s")
    acked: list[pb.Avatar] = []
    images = [portrait_jpeg(side) for side in (300, 320, 340, 360)]
    stop = threading.Event()

    def creator(k):
        stub = srv.stub()
        for i in range(10_000):
            if stop.is_set():
                return
            try:
                acked.append(stub.CreateAvatar(pb.CreateAvatarRequest(display_name=f"npc-{k}-{i}",
                                                                      portrait_image=images[i % 4]), timeout=60))
            except grpc.RpcError:
                return  # the server died under this call: never acknowledged
    threads = [threading.Thread(target=creator, args=(k,), daemon=True) for k in range(2)]
    for t in threads:
        t.start()
    # Freeze the server the moment a create is mid-write (its staging folder exists), then kill it there.
    caught = None
    deadline = time.monotonic() + 60
    while caught is None:
        assert time.monotonic() < deadline, "never saw an avatar being written"
        if len(acked) < 3:
            time.sleep(0.01)
            continue
        staging = [e.name for e in os.scandir(store) if e.name.startswith(".staging-")]
        if staging:
            srv.proc.send_signal(signal.SIGSTOP)
            still = [n for n in staging if (store / n).exists()]
            if still:
                caught = still[0]
                written = sorted(p.name for p in (store / caught).iterdir())
            else:  # published between our look and the stop: let it run and look again
                srv.proc.send_signal(signal.SIGCONT)
        time.sleep(0.001)  # a write with its fsyncs takes milliseconds; polling faster only steals the server's CPU
    n_acked = len(acked)
    srv.kill9()
    stop.set()
    for t in threads:
        t.join(30)
    print(f"{time.monotonic() - t_start:.1f} s: killed with {n_acked} avatars acknowledged, "
          f"one caught mid-write holding {written}")
    acked = acked[:n_acked]
    print(f"{time.monotonic() - t_start:.1f} s: clients stopped")
    # no published avatar is partial: each folder holds both files and its state loads
    from avatar_service.runtime.avatar import AvatarState
    published = [p for p in store.iterdir() if not p.name.startswith(".")]
    for p in published:
        assert sorted(f.name for f in p.iterdir()) == ["avatar.json", "state.npz"]
        AvatarState.from_bytes((p / "state.npz").read_bytes())

    srv2 = ServerProcess(store)
    print(f"{time.monotonic() - t_start:.1f} s: restarted")
    try:
        assert not any(p.name.startswith(".staging-") for p in store.iterdir())  # crash leftovers swept
        stub = srv2.stub()
        listed = {a.avatar_id: a for a in _all_avatars(stub)}
        assert {a.avatar_id for a in acked} <= set(listed)
        assert len(listed) == len(published)  # the half-written one is not there
        for a in acked:
            assert stub.GetAvatar(pb.GetAvatarRequest(avatar_id=a.avatar_id)).display_name == a.display_name
        for avatar_id in listed:  # acknowledged or not, whatever is listed animates
            frames, ended = run_session(stub, avatar_id, speech(0.2))
            assert len(frames) == 5 and ended.stats.frames_sent == 5
    finally:
        assert srv2.terminate() == 0


# ------------------------------------------------------------------------------------ shared server
@pytest.fixture(scope="module")
def proc_server(tmp_path_factory):
    """One session at a time, so a session left behind by a vanished client blocks the next one."""
    srv = ServerProcess(tmp_path_factory.mktemp("proc") / "store", grace_s=8,
                        env={"AVATARLAB_MAX_CONCURRENT_SESSIONS": "1", "AVATARLAB_MAX_MESSAGE_BYTES": str(1 << 20),
                             "AVATARLAB_MAX_AUDIO_SECONDS_PER_SESSION": "20",
                             # glibc then hands big freed blocks (frames, arrays) back at once, so RSS tracks
                             # live memory and a leak is not hidden in, nor faked by, the allocator's cache
                             "MALLOC_MMAP_THRESHOLD_": str(1 << 16), "MALLOC_TRIM_THRESHOLD_": str(1 << 16)})
    srv.avatar_id = srv.stub().CreateAvatar(pb.CreateAvatarRequest(portrait_image=portrait_jpeg())).avatar_id
    yield srv
    if srv.proc.poll() is None:
        srv.terminate()


CLIENT = textwrap.dedent("""
    import sys, time, grpc
    sys.path.insert(0, {tests!r})
    from reliability_support import requests, speech
    from avatar_service.api import pb_grpc
    def forever():  # config and 1 s of audio, then the stream stays open
        gen = requests({avatar!r}, speech(1.0))
        for r in gen:
            if r.WhichOneof("message") == "end_of_audio":
                time.sleep(1000)
            yield r
    stub = pb_grpc.AvatarServiceStub(grpc.insecure_channel({target!r}))
    for msg in stub.Animate(forever()):
        if msg.WhichOneof("message") == "frame":
            print("streaming", flush=True)
            time.sleep(1000)
""")


def test_client_process_killed_mid_stream_frees_its_session_within_a_second(proc_server):
    code = CLIENT.format(tests=str(REPO / "tests"), avatar=proc_server.avatar_id, target=proc_server.target)
    client = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                              env=dict(os.environ, PYTHONPATH=str(REPO)))
    try:
        assert client.stdout.readline().strip() == "streaming"
        stub = proc_server.stub()
        code_, detail = status_of(lambda: stub.Animate(requests(proc_server.avatar_id, speech(0.1)), timeout=10))
        assert code_ == grpc.StatusCode.RESOURCE_EXHAUSTED  # the one slot is the vanished client's
        client.kill()
        client.wait(5)
        took = freed_within(stub, proc_server.avatar_id, None, 1.0)
        print(f"slot freed {1000 * took:.0f} ms after the client was killed")
    finally:
        if client.poll() is None:
            client.kill()


# ------------------------------------------------------------------------------------ fuzzing
INT32 = (FD.TYPE_INT32, FD.TYPE_SINT32, FD.TYPE_SFIXED32)
INT64 = (FD.TYPE_INT64, FD.TYPE_SINT64, FD.TYPE_SFIXED64)
UINT = (FD.TYPE_UINT32, FD.TYPE_FIXED32, FD.TYPE_UINT64, FD.TYPE_FIXED64)


def _images() -> list[bytes]:
    """Real PNG and JPEG portraits: the seeds random mutations start from."""
    from PIL import Image
    png = io.BytesIO()
    Image.open(REPO / "avatar_service" / "assets" / "astronaut.png").convert("RGB").resize((160, 160)).save(png, "PNG")
    return [portrait_jpeg(), png.getvalue()]


@st.composite
def mutated(draw, seeds: list[bytes]) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 8))):
        i = draw(st.integers(0, len(data) - 1))
        data[i] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]  # truncated
    return bytes(data)


def scalar(field, avatar_id: str, images: list[bytes]):
    t, name = field.type, field.name
    if name == "avatar_id":
        return st.one_of(st.just(avatar_id), st.text(max_size=80), st.just("../../etc/passwd"))
    if name in ("portrait_image", "idle_video"):
        return st.one_of(st.binary(max_size=4096), mutated(images), st.sampled_from(images))
    if name == "data":  # audio: random bytes of any length, odd ones included
        return st.binary(max_size=8192)
    if t == FD.TYPE_ENUM:
        return st.integers(-3, 8)  # open enums: unknown values arrive too
    if t in INT32:
        return st.one_of(st.integers(-3, 70), st.sampled_from([8000, 16000, 44100, 192000, 192001, 1024, 1025]),
                         st.integers(-2**31, 2**31 - 1))
    if t in INT64:
        return st.one_of(st.integers(-3, 70), st.integers(-2**63, 2**63 - 1))
    if t in UINT:
        return st.integers(0, 2**32 - 1 if t in (FD.TYPE_UINT32, FD.TYPE_FIXED32) else 2**64 - 1)
    if t in (FD.TYPE_FLOAT, FD.TYPE_DOUBLE):
        return st.floats(width=32 if t == FD.TYPE_FLOAT else 64)  # NaN and infinities included
    if t == FD.TYPE_STRING:
        return st.text(max_size=200 if name != "text" else 40)
    if t == FD.TYPE_BYTES:
        return st.binary(max_size=2048)
    if t == FD.TYPE_BOOL:
        return st.booleans()
    raise AssertionError(f"no strategy for {field.full_name}")


@st.composite
def message(draw, cls, avatar_id: str, images: list[bytes]):
    """Any instance of a request message: each field set or not, one member of each oneof."""
    msg = cls()
    for f in cls.DESCRIPTOR.fields:
        oneof = f.containing_oneof
        if oneof is not None and not oneof.name.startswith("_"):  # a real oneof: one member at most
            continue
        if draw(st.booleans()):
            _set(draw, msg, f, avatar_id, images)
    for oneof in cls.DESCRIPTOR.oneofs:
        if oneof.name.startswith("_"):
            continue
        choice = draw(st.sampled_from([None, *oneof.fields]))
        if choice is not None:
            _set(draw, msg, choice, avatar_id, images)
    return msg


def _set(draw, msg, f, avatar_id, images):
    assert f.label != FD.LABEL_REPEATED, f"{f.full_name}: repeated request fields need a strategy"
    if f.type == FD.TYPE_MESSAGE:
        getattr(msg, f.name).CopyFrom(draw(message(getattr(pb, f.message_type.name), avatar_id, images)))
    else:
        setattr(msg, f.name, draw(scalar(f, avatar_id, images)))


@st.composite
def plausible_config(draw, avatar_id: str) -> pb.AnimateConfig:
    """A config near the valid region, so sessions start and random audio reaches the generator."""
    small = lambda lo, hi: st.one_of(st.just(0), st.integers(lo, hi), st.integers(-5, 2000))  # noqa: E731
    return pb.AnimateConfig(
        avatar_id=draw(st.one_of(st.just(avatar_id), st.text(max_size=5))),
        audio_format=pb.AudioFormat(encoding=draw(st.sampled_from([1, 2, 1, 2, 0, 3])),
                                    sample_rate_hz=draw(st.sampled_from([16000, 8000, 44100, 48000, 192000, 7999, 0])),
                                    channels=draw(st.integers(0, 3))),
        video=pb.VideoOptions(fps=draw(small(1, 60)), width_px=draw(small(16, 160)), height_px=draw(small(16, 160)),
                              pixel_format=draw(st.integers(0, 4)), jpeg_quality=draw(small(1, 100)),
                              frame_mode=draw(st.integers(0, 3))),
        generation=pb.GenerationOptions(seed=draw(st.integers(0, 2**64 - 1)), sampler_steps=draw(small(1, 3)),
                                        guidance_scale=draw(st.one_of(st.just(0.0), st.floats(0.5, 10), st.floats()))))


@st.composite
def audio_chunk(draw) -> pb.AnimateRequest:
    """Random bytes as audio, usually a whole number of (s16 or f32, mono or stereo) samples."""
    data = draw(st.binary(max_size=8192))
    if draw(st.integers(0, 3)):
        data = data[: len(data) - len(data) % 8]
    return pb.AnimateRequest(audio=pb.AudioChunk(data=data))


REQUESTS = {  # method -> (request class, streaming request?)
    "CreateAvatar": (pb.CreateAvatarRequest, False), "GetAvatar": (pb.GetAvatarRequest, False),
    "ListAvatars": (pb.ListAvatarsRequest, False), "DeleteAvatar": (pb.DeleteAvatarRequest, False),
    "Animate": (pb.AnimateRequest, True), "Speak": (pb.SpeakRequest, False),
    "GetServerInfo": (pb.GetServerInfoRequest, False),
}


def test_every_rpc_is_covered_by_the_fuzzer():
    assert set(REQUESTS) == set(pb.DESCRIPTOR.services_by_name["AvatarService"].methods_by_name)


def _call(server, channel, method: str, payload) -> tuple[grpc.StatusCode, str]:
    path = f"/avatarlab.v1.AvatarService/{method}"
    ser = lambda m: m if isinstance(m, bytes) else m.SerializeToString()  # noqa: E731
    streaming_request = REQUESTS[method][1]
    streaming_response = method in ("Animate", "Speak")
    kind = {(False, False): channel.unary_unary, (False, True): channel.unary_stream,
            (True, True): channel.stream_stream}[(streaming_request, streaming_response)]
    rpc = kind(path, request_serializer=ser, response_deserializer=lambda b: b)
    arg = iter(payload) if streaming_request else payload
    return status_of(lambda: rpc(arg, timeout=60))


def _fuzz(server, examples: int, images: list[bytes]) -> dict:
    seen: dict = {}
    channel = server.channel()
    avatar_id = server.avatar_id
    opts = settings(max_examples=examples, deadline=None, database=None, derandomize=False,
                    suppress_health_check=list(HealthCheck))

    def check(method, payload):
        code, detail = _call(server, channel, method, payload)
        seen.setdefault(method, set()).add(code.name)
        seen["calls"] = seen.get("calls", 0) + 1
        assert code in CLIENT_ERRORS, f"{method} answered {code.name}: {detail}"

    def fuzz_method(method, cls, streaming):
        if streaming:
            @opts
            @given(first=st.one_of(message(pb.AnimateRequest, avatar_id, images),
                                   plausible_config(avatar_id).map(lambda c: pb.AnimateRequest(config=c))),
                   rest=st.lists(st.one_of(audio_chunk(), message(pb.AnimateRequest, avatar_id, images)), max_size=6))
            def run(first, rest):
                check(method, [first, *rest])
        else:
            @opts
            @given(req=message(cls, avatar_id, images))
            def run(req):
                if method == "DeleteAvatar" and req.avatar_id == avatar_id:
                    req.avatar_id = "not-" + avatar_id  # keep the avatar the other examples use
                check(method, req)
        run()

        @settings(max_examples=max(3, examples // 4), deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(raw=st.lists(st.binary(max_size=512), min_size=1, max_size=3))
        def run_raw(raw):  # bytes that need not be a valid message at all
            if method != "DeleteAvatar":
                check(method, raw if streaming else raw[0])
        run_raw()

    for method, (cls, streaming) in REQUESTS.items():
        fuzz_method(method, cls, streaming)
    channel.close()
    return seen


def test_fuzzed_requests_get_client_errors_only_and_the_server_stays_up_in_bounded_memory(proc_server):
    images = _images()
    # Warm every path first, so the baseline holds what stays allocated by design and the growth after it
    # is what requests leave behind. Worker threads load per-thread state on first use (a face detector
    # per executor thread, an onnxruntime arena per speech thread that grows to the longest line), so
    # warm them concurrently and with a line longer than any the fuzzer sends.
    line = "Hello there, traveller. The road north is closed tonight. Come back at dawn, and bring a lantern!"

    portrait, failures = portrait_jpeg(), []

    def warm_create():
        ch = proc_server.channel()
        for _ in range(2):
            code, detail = _call(proc_server, ch, "CreateAvatar", pb.CreateAvatarRequest(portrait_image=portrait))
            if code != grpc.StatusCode.OK:
                failures.append(f"CreateAvatar: {code.name} {detail}")
        ch.close()
    workers = [threading.Thread(target=warm_create) for _ in range(4)]
    for w in workers:
        w.start()
    ch = proc_server.channel()
    for _ in range(3):  # one session at a time on this server; its sentences still overlap in the TTS pool
        code, detail = _call(proc_server, ch, "Speak", pb.SpeakRequest(avatar_id=proc_server.avatar_id, text=line))
        assert code in (grpc.StatusCode.OK, grpc.StatusCode.FAILED_PRECONDITION), detail  # (no TTS installed)
    ch.close()
    for w in workers:
        w.join(120)
    assert not failures, failures
    # motion-only sessions (the fuzzer draws them too) run the mouth's own batch thread and model: warm it
    def motion_only(reqs):
        first = next(reqs)
        first.config.motion_only = True
        yield first
        yield from reqs
    blocks = [m for m in proc_server.stub().Animate(motion_only(requests(proc_server.avatar_id, speech(1.0))), timeout=60)
              if m.WhichOneof("message") == "frame"]
    assert blocks and all(m.frame.HasField("mouth") for m in blocks)
    _fuzz(proc_server, 30, images)
    before = proc_server.rss_kb()
    seen = _fuzz(proc_server, 100, images)
    after = proc_server.rss_kb()
    print(f"server RSS {before / 1024:.0f} MB -> {after / 1024:.0f} MB; statuses seen: {seen}")
    assert proc_server.proc.poll() is None
    assert proc_server.stub().GetServerInfo(pb.GetServerInfoRequest(), timeout=10).api_version == "avatarlab.v1"
    frames, _ = run_session(proc_server.stub(), proc_server.avatar_id, speech(0.2))  # still does real work
    assert len(frames) == 5
    assert after - before < 64 * 1024, f"RSS grew {(after - before) / 1024:.0f} MB over the fuzz run"
    # the fuzzer got past validation (sessions ran on random audio) as well as into each check
    assert {"OK", "INVALID_ARGUMENT"} <= seen["Animate"] and {"OK", "INVALID_ARGUMENT"} <= seen["CreateAvatar"]


# ------------------------------------------------------------------------------------ shutdown
def test_sigterm_drains_the_stream_in_flight_and_turns_new_ones_away(proc_server):
    """Last in this file: it ends the shared server."""
    srv, stub, avatar_id = proc_server, proc_server.stub(), proc_server.avatar_id
    got: dict = {}
    first_frame = threading.Event()

    def session():
        frames = []
        try:
            for msg in stub.Animate(requests(avatar_id, speech(3.0), realtime=True), timeout=60):
                if msg.WhichOneof("message") == "frame":
                    frames.append(msg.frame.index)
                    first_frame.set()
                elif msg.WhichOneof("message") == "ended":
                    got["ended"] = msg.ended
        except grpc.RpcError as e:
            got["error"] = e
        got["frames"] = frames
    t = threading.Thread(target=session)
    t.start()
    assert first_frame.wait(30)
    srv.proc.send_signal(signal.SIGTERM)
    t_term = time.monotonic()
    time.sleep(0.5)
    with grpc.insecure_channel(srv.target) as ch:  # a newcomer during the drain
        from avatar_service.api import pb_grpc
        code, _ = status_of(lambda: pb_grpc.AvatarServiceStub(ch).Animate(requests(avatar_id, speech(0.2)), timeout=5))
    assert code == grpc.StatusCode.UNAVAILABLE
    t.join(30)
    assert "error" not in got, got.get("error")
    assert got["frames"] == list(range(75)) and got["ended"].stats.frames_sent == 75
    assert srv.terminate(timeout=20) == 0
    print(f"drained and exited {time.monotonic() - t_term:.1f} s after SIGTERM")
