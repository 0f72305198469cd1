"""Hardening of a long-running server with untrusted clients: authentication, TLS and mutual TLS,
readiness, every configurable limit, and faults inside one session (slow reader, a client that goes
away, an exception in generation). Real gRPC on loopback against in-process servers with the tiny model.

Server-process cases (kill -9, restart, SIGTERM, fuzzing) are in test_resilience_process.py."""
from __future__ import annotations

import logging
import re
import threading
import time

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from avatar_service.api import pb
from reliability_support import (BlackHoleProxy, HeldSession, InProcessServer, free_port, freed_within, make_pki, pcm16,
                                 portrait_jpeg, requests, run_session, settings, speech, status_of)

# the tokens share their last 20 characters: clients must still be told apart
TOKENS = ["alpha-shared-suffix-0123456789", "bravo-shared-suffix-0123456789", "charlie-shared-suffix-012345678"]
A, B, C = ([("authorization", f"Bearer {t}")] for t in TOKENS)
LIMITS = dict(max_concurrent_sessions=2, max_sessions_per_client=1, max_audio_seconds_per_session=2,
              max_message_bytes=64 * 1024, max_portrait_pixels=300 * 300, max_avatars=2)


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    """Auth on, every limit small."""
    srv = InProcessServer(settings(tmp_path_factory.mktemp("limited"), auth_tokens=TOKENS, **LIMITS))
    stub = srv.stub()
    srv.avatar_id = stub.CreateAvatar(pb.CreateAvatarRequest(portrait_image=portrait_jpeg()), metadata=A).avatar_id
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def open_server(tmp_path_factory):
    srv = InProcessServer(settings(tmp_path_factory.mktemp("open")))
    srv.avatar_id = srv.stub().CreateAvatar(pb.CreateAvatarRequest(portrait_image=portrait_jpeg())).avatar_id
    yield srv
    srv.stop()


# ------------------------------------------------------------------------------------ authentication
def test_missing_or_wrong_token_is_unauthenticated_on_unary_and_streaming_rpcs(limited):
    stub = limited.stub()
    bad = [None, [("authorization", "Bearer nope")], [("authorization", TOKENS[0])],  # no scheme
           [("authorization", f"Basic {TOKENS[0]}")], [("authorization", f"Bearer {TOKENS[0]}x")]]
    for md in bad:
        code, detail = status_of(lambda: stub.GetServerInfo(pb.GetServerInfoRequest(), metadata=md))
        assert code == grpc.StatusCode.UNAUTHENTICATED, (md, code)
        assert "bearer token" in detail
        code, _ = status_of(lambda: stub.Animate(requests(limited.avatar_id, speech(0.2)), metadata=md, timeout=10))
        assert code == grpc.StatusCode.UNAUTHENTICATED
        code, _ = status_of(lambda: stub.CreateAvatar(pb.CreateAvatarRequest(portrait_image=b"x"), metadata=md))
        assert code == grpc.StatusCode.UNAUTHENTICATED  # before the body is even looked at
    # every configured token works; probes need none
    for md in (A, B, C):
        assert stub.GetServerInfo(pb.GetServerInfoRequest(), metadata=md).limits.max_sessions_per_client == 1
    health = health_pb2_grpc.HealthStub(limited.channel())
    assert health.Check(health_pb2.HealthCheckRequest()).status == health_pb2.HealthCheckResponse.SERVING


def test_tokens_from_environment_and_file(tmp_path):
    from avatar_service.server.settings import ServerSettings
    f = tmp_path / "tokens"
    f.write_text("one\n  two \n\n")
    assert ServerSettings.load(env={"AVATARLAB_AUTH_TOKENS": "a,b"}).auth_tokens == ["a", "b"]
    assert ServerSettings.load(env={"AVATARLAB_AUTH_TOKENS_FILE": str(f)}).auth_tokens == ["one", "two"]
    assert ServerSettings.load(env={}).listen.startswith("127.0.0.1:")  # loopback unless asked otherwise


# ------------------------------------------------------------------------------------ TLS
def test_tls_and_mutual_tls(tmp_path):
    pki = make_pki(tmp_path / "pki")
    read = lambda p: p.read_bytes()  # noqa: E731
    trust = grpc.ssl_channel_credentials(root_certificates=read(pki["ca"].with_suffix(".crt")))
    with_cert = grpc.ssl_channel_credentials(read(pki["ca"].with_suffix(".crt")),
                                             read(pki["client"].with_suffix(".key")),
                                             read(pki["client"].with_suffix(".crt")))
    rogue = grpc.ssl_channel_credentials(read(pki["ca"].with_suffix(".crt")), read(pki["rogue"].with_suffix(".key")),
                                         read(pki["rogue"].with_suffix(".crt")))
    tls = dict(tls_cert=str(pki["server"].with_suffix(".crt")), tls_key=str(pki["server"].with_suffix(".key")))

    srv = InProcessServer(settings(tmp_path / "tls", **tls))
    try:
        assert srv.stub(trust).GetServerInfo(pb.GetServerInfoRequest(), timeout=10).api_version == "avatarlab.v1"
        code, _ = status_of(lambda: srv.stub().GetServerInfo(pb.GetServerInfoRequest(), timeout=3))
        assert code == grpc.StatusCode.UNAVAILABLE  # plaintext client against a TLS port
        untrusting = grpc.ssl_channel_credentials(root_certificates=read(tmp_path / "pki" / "rogue.crt"))
        code, _ = status_of(lambda: srv.stub(untrusting).GetServerInfo(pb.GetServerInfoRequest(), timeout=3))
        assert code == grpc.StatusCode.UNAVAILABLE  # the client does not trust the server's certificate
    finally:
        srv.stop()

    srv = InProcessServer(settings(tmp_path / "mtls", tls_client_ca=str(pki["ca"].with_suffix(".crt")), **tls))
    try:
        stub = srv.stub(with_cert)
        avatar = stub.CreateAvatar(pb.CreateAvatarRequest(portrait_image=portrait_jpeg()), timeout=30)
        frames, ended = run_session(stub, avatar.avatar_id, speech(0.4))
        assert len(frames) == 10 and ended.stats.frames_sent == 10
        for creds in (trust, rogue):  # no client certificate; one from a CA the server does not trust
            code, _ = status_of(lambda: srv.stub(creds).GetServerInfo(pb.GetServerInfoRequest(), timeout=3))
            assert code == grpc.StatusCode.UNAVAILABLE
    finally:
        srv.stop()


# ------------------------------------------------------------------------------------ readiness
def test_health_is_not_serving_and_calls_unavailable_until_the_model_is_warm(tmp_path, monkeypatch):
    from avatar_service.server.app import App
    gate, entered = threading.Event(), threading.Event()
    real = App.warmup

    def slow_warmup(self):
        entered.set()
        gate.wait(60)
        real(self)
    monkeypatch.setattr(App, "warmup", slow_warmup)
    port = free_port()
    box = {}
    t = threading.Thread(target=lambda: box.setdefault(
        "srv", InProcessServer(settings(tmp_path, listen=f"127.0.0.1:{port}"))))
    t.start()
    try:
        while not entered.wait(0.2):
            assert t.is_alive(), "the server failed to start"
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            health = health_pb2_grpc.HealthStub(ch)
            serving, not_serving = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING
            assert health.Check(health_pb2.HealthCheckRequest(), timeout=5).status == not_serving
            assert health.Check(health_pb2.HealthCheckRequest(service="avatarlab.v1.AvatarService"),
                                timeout=5).status == health_pb2.HealthCheckResponse.NOT_SERVING
            from avatar_service.api import pb_grpc
            stub = pb_grpc.AvatarServiceStub(ch)
            req = pb.CreateAvatarRequest(portrait_image=portrait_jpeg())
            code, detail = status_of(lambda: stub.CreateAvatar(req, timeout=5))
            assert code == grpc.StatusCode.UNAVAILABLE and "retry" in detail
            code, _ = status_of(lambda: stub.Animate(requests("x", speech(0.1)), timeout=5))
            assert code == grpc.StatusCode.UNAVAILABLE
            gate.set()
            t.join(120)
            assert health.Check(health_pb2.HealthCheckRequest(), timeout=5).status == serving
    finally:
        gate.set()
        t.join(120)
        if "srv" in box:
            box["srv"].stop()


# ------------------------------------------------------------------------------------ limits
def test_sessions_per_client_and_concurrent_sessions(limited):
    stub = limited.stub()
    first = HeldSession(stub, limited.avatar_id, A)
    try:
        code, detail = status_of(lambda: stub.Animate(requests(limited.avatar_id, speech(0.2)), metadata=A, timeout=10))
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "limit of 1 open sessions" in detail
        second = HeldSession(stub, limited.avatar_id, B)  # another client is admitted
        try:
            code, detail = status_of(lambda: stub.Animate(requests(limited.avatar_id, speech(0.2)), metadata=C,
                                                          timeout=10))
            assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "limit of 2 sessions" in detail
        finally:
            second.close()
    finally:
        first.close()


def test_client_that_goes_silent_is_dropped_by_keepalive(tmp_path):
    """No FIN, no RST: the client's host is simply gone. Unanswered pings end its session."""
    srv = InProcessServer(settings(tmp_path, max_concurrent_sessions=1, keepalive_s=0.5, keepalive_timeout_s=0.5))
    proxy = BlackHoleProxy(srv.target)
    try:
        direct = srv.stub()
        avatar_id = direct.CreateAvatar(pb.CreateAvatarRequest(portrait_image=portrait_jpeg())).avatar_id
        from avatar_service.api import pb_grpc
        ghost = pb_grpc.AvatarServiceStub(grpc.insecure_channel(proxy.target))
        held = HeldSession(ghost, avatar_id)
        proxy.freeze()
        took = freed_within(direct, avatar_id, None, 5.0)
        print(f"silent client dropped {1000 * took:.0f} ms after it went silent (keepalive 0.5 s + 0.5 s)")
        assert srv.app.slots.active == 0
        held.release.set()
    finally:
        proxy.close()
        srv.stop()


def test_audio_over_the_session_limit(limited):
    stub = limited.stub()
    frames, ended = run_session(stub, limited.avatar_id, speech(1.9), metadata=A)  # under: fine
    assert ended is not None and len(frames) == 48
    code, detail = status_of(lambda: stub.Animate(requests(limited.avatar_id, speech(2.5)), metadata=A, timeout=30))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "2 s limit" in detail


def test_message_size_limit(limited):
    stub = limited.stub()
    code, detail = status_of(lambda: stub.CreateAvatar(
        pb.CreateAvatarRequest(portrait_image=portrait_jpeg(400) + bytes(70_000)), metadata=A))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "larger than max" in detail

    def big_chunk():
        yield next(requests(limited.avatar_id, speech(0.1)))
        yield pb.AnimateRequest(audio=pb.AudioChunk(data=pcm16(speech(2.2))))  # 70 KB in one message
    code, detail = status_of(lambda: stub.Animate(big_chunk(), metadata=A, timeout=10))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "larger than max" in detail


def test_portrait_pixel_limit(limited):
    import io

    from PIL import Image
    buf = io.BytesIO()
    Image.new("RGB", (301, 300), (200, 180, 160)).save(buf, "PNG")  # 90 300 pixels, a few hundred bytes
    code, detail = status_of(lambda: limited.stub().CreateAvatar(
        pb.CreateAvatarRequest(portrait_image=buf.getvalue()), metadata=A))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "the limit is 90000" in detail


def test_avatar_store_limit(limited):
    stub = limited.stub()
    second = stub.CreateAvatar(pb.CreateAvatarRequest(portrait_image=portrait_jpeg(290)), metadata=A)
    try:
        code, detail = status_of(lambda: stub.CreateAvatar(pb.CreateAvatarRequest(portrait_image=portrait_jpeg(295)),
                                                           metadata=A))
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "limit of 2 avatars" in detail
    finally:
        stub.DeleteAvatar(pb.DeleteAvatarRequest(avatar_id=second.avatar_id), metadata=A)
    third = stub.CreateAvatar(pb.CreateAvatarRequest(portrait_image=portrait_jpeg(295)), metadata=A)  # room again
    stub.DeleteAvatar(pb.DeleteAvatarRequest(avatar_id=third.avatar_id), metadata=A)


def test_limits_are_reported(limited):
    lim = limited.stub().GetServerInfo(pb.GetServerInfoRequest(), metadata=B).limits
    for k, v in LIMITS.items():
        assert getattr(lim, k) == v


def test_unparsable_request_bytes_are_invalid_argument(limited):
    ch = limited.channel()
    raw = ch.unary_unary("/avatarlab.v1.AvatarService/GetAvatar", request_serializer=lambda b: b,
                         response_deserializer=lambda b: b)
    code, detail = status_of(lambda: raw(b"\xff\xff\xff\xff", metadata=A))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "not a valid protobuf" in detail
    stream = ch.stream_stream("/avatarlab.v1.AvatarService/Animate", request_serializer=lambda b: b,
                              response_deserializer=lambda b: b)
    first = config_bytes = requests(limited.avatar_id, speech(0.1)).__next__().SerializeToString()
    del first
    code, detail = status_of(lambda: stream(iter([config_bytes, b"\x12\xff"]), metadata=A, timeout=10))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "not a valid protobuf" in detail


# ------------------------------------------------------------------------------------ faults
def test_slow_reader_does_not_stall_other_sessions(open_server):
    """One client stops reading; another streaming at real time still gets every frame at the audio rate."""
    stub = open_server.stub()
    stalled = stub.Animate(requests(open_server.avatar_id, speech(8.0), size=256), timeout=120)
    assert next(stalled).WhichOneof("message") == "started"  # ... and never reads again until the end
    time.sleep(0.3)
    frames, ended = run_session(stub, open_server.avatar_id, speech(3.0), realtime=True)
    arrivals = np.array([t for t, _ in frames])
    assert [f.index for _, f in frames] == list(range(75))
    rate = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])
    print(f"fast session: {rate:.1f} frames/s received while another session was not read")
    # audio rate is 25; a stalled neighbour would hold it near 0 until that session ends. Half the rate
    # leaves room for a busy 2-core machine (13-16/s seen with other work beside it) without hiding a stall
    assert rate > 12.5
    # the stalled client still gets its whole, ordered session once it reads
    rest = [m.frame.index for m in stalled if m.WhichOneof("message") == "frame"]
    assert rest == list(range(200))


def test_generation_error_ends_only_that_session_with_an_incident_id(open_server, monkeypatch, caplog):
    import avatar_service.runtime.engine as engine_mod
    cfg = open_server.app.backend.config
    poison = np.random.default_rng(666).standard_normal(cfg.latent_shape).astype(np.float32)
    real = engine_mod.sample_regions

    def failing(backend, noise, *a, **kw):
        if any(np.array_equal(n, poison) for n in noise):
            raise FloatingPointError("injected fault in the denoiser")
        return real(backend, noise, *a, **kw)
    monkeypatch.setattr(engine_mod, "sample_regions", failing)

    stub = open_server.stub()
    results = {}

    def session(seed):
        try:
            results[seed] = run_session(stub, open_server.avatar_id, speech(1.5), seed=seed, realtime=True)
        except grpc.RpcError as e:
            results[seed] = e
    threads = [threading.Thread(target=session, args=(s,)) for s in (1, 666, 2)]
    with caplog.at_level(logging.ERROR):
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    err = results[666]
    assert isinstance(err, grpc.RpcError) and err.code() == grpc.StatusCode.INTERNAL
    incident = re.search(r"incident ([0-9a-f]{12})", err.details()).group(1)
    assert "injected" not in err.details()  # internals stay in the log
    assert any(incident in r.getMessage() and r.exc_info for r in caplog.records)
    for seed in (1, 2):
        frames, ended = results[seed]
        assert [f.index for _, f in frames] == list(range(38)) and ended.stats.frames_sent == 38


# ------------------------------------------------------------------------------------ load test tool
def test_loadtest_counts_every_frame_of_concurrent_sessions(tmp_path, capsys):
    import json

    from avatar_service.cli import main
    out = tmp_path / "load.json"
    assert main(["loadtest", "--streams", "3", "--seconds", "1.5", "--in-process", "--model", "tiny",
                 "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    s = report["summary"]
    assert s["streams_ok"] == 3 and s["frames_expected"] == 3 * 38 == s["frames_received"]
    assert s["frames_lost"] == s["frames_duplicated"] == s["frames_out_of_order"] == 0
    assert s["max_abs_pts_drift_ms"] <= 0.5 and s["max_abs_end_drift_ms"] < 40  # pts on the audio clock
    assert 0 < s["latency_ms_p50"] <= s["latency_ms_p99"] and s["peak_server_rss_mb"] > 50
    assert [len(r["latencies_ms"]) for r in report["streams"]] == [38, 38, 38]
    assert "frames_received" in capsys.readouterr().out  # the table
