"""Scale-out with the real pieces: a PostgreSQL server started for this session on loopback, and real
`avatarlab serve` processes (tiny model) sharing it as their avatar registry.

Skips, with the reason, when the PostgreSQL server binaries or psycopg are not installed
(`apt-get install postgresql`; `pip install 'avatarlab[ops]'`).
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import glob
import json
import os
import pathlib
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid

import grpc
import numpy as np
import pytest
import soundfile as sf

psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed: pip install 'avatarlab[ops]'")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from avatar_service.api import pb  # noqa: E402
from avatar_service.client import AvatarLabClient  # noqa: E402
from avatar_service.store import AvatarRecord, LocalAvatarStore  # noqa: E402
from avatar_service.store.postgres import (MIGRATIONS, MIGRATIONS_TABLE, Migration,  # noqa: E402
                                           PostgresAvatarStore, migrate)

pytestmark = pytest.mark.slow  # several replicas, PostgreSQL: `pytest -m "not slow"` skips it

REPO = pathlib.Path(__file__).resolve().parents[1]
ASSETS = REPO / "avatar_service" / "assets"
FPS = 25


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bindir() -> pathlib.Path | None:
    """Debian keeps the server binaries off PATH, in /usr/lib/postgresql/<major>/bin."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return pathlib.Path(found).resolve().parent
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: int(pathlib.Path(d).parent.name), reverse=True)
    for d in dirs:
        if os.access(f"{d}/initdb", os.X_OK) and os.access(f"{d}/pg_ctl", os.X_OK):
            return pathlib.Path(d)
    return None


class PostgresServer:
    """A throwaway PostgreSQL cluster in a temporary folder. PostgreSQL refuses to run as root, so as
    root it runs as the `postgres` user (created by the Debian package)."""

    def __init__(self, bindir: pathlib.Path):
        self.bindir = bindir
        self.port = _free_port()
        self.root = pathlib.Path(tempfile.mkdtemp(prefix="avatarlab-pg-"))
        self.data = self.root / "data"
        self.prefix: list[str] = []
        if os.geteuid() == 0:
            try:
                pg = pwd.getpwnam("postgres")
            except KeyError:
                shutil.rmtree(self.root)
                pytest.skip("running as root and there is no 'postgres' user to run PostgreSQL as")
            runuser = shutil.which("runuser")
            if not runuser:
                shutil.rmtree(self.root)
                pytest.skip("running as root and `runuser` (util-linux) is missing to run PostgreSQL as 'postgres'")
            os.chown(self.root, pg.pw_uid, pg.pw_gid)
            self.prefix = [runuser, "-u", "postgres", "--"]

    def _pg(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([*self.prefix, *args], capture_output=True, text=True, check=check, timeout=120)

    def start(self) -> None:
        self._pg(str(self.bindir / "initdb"), "-D", str(self.data), "-U", "avatarlab", "-A", "trust", "-E", "UTF8")
        self._pg_ctl("start")

    def _pg_ctl(self, action: str, *extra: str) -> None:
        opts = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c max_connections=200"
        r = self._pg(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "server.log"), "-w",
                     "-t", "60", "-o", opts, *extra, action, check=False)
        if r.returncode:
            log = (self.root / "server.log").read_text() if (self.root / "server.log").exists() else ""
            raise RuntimeError(f"pg_ctl {action} failed: {r.stdout}{r.stderr}\n{log[-2000:]}")

    def restart(self) -> None:
        self._pg_ctl("restart", "-m", "fast")

    def stop(self) -> None:
        self._pg(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop", check=False)
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, db: str = "postgres") -> str:
        return f"postgresql://avatarlab@127.0.0.1:{self.port}/{db}"


@pytest.fixture(scope="session")
def postgres():
    bindir = _pg_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql")
    server = PostgresServer(bindir)
    server.start()
    yield server
    server.stop()


def _new_database(postgres) -> str:
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres.url(), autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    return postgres.url(name)


@pytest.fixture
def pg_url(postgres) -> str:
    """A fresh, empty database for each test."""
    return _new_database(postgres)


# -- replicas ---------------------------------------------------------------------------------------------

@dataclasses.dataclass
class Replica:
    proc: subprocess.Popen
    port: int
    metrics_port: int
    log: pathlib.Path

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client(self) -> AvatarLabClient:
        return AvatarLabClient(self.target)

    def metrics(self) -> dict[str, float]:
        """Every sample of /metrics as {'name{label="v",...}': value}."""
        text = urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10).read().decode()
        out = {}
        for fam in text_string_to_metric_families(text):
            for s in fam.samples:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
                out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
        return out

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)


class Replicas:
    def __init__(self, tmp: pathlib.Path):
        self.tmp = tmp
        self.started: list[Replica] = []
        self._launched = 0

    def launch(self, store_url: str, *extra: str, via_env: bool = False):
        n = self._launched = self._launched + 1
        out, err = self.tmp / f"replica-{n}.out", self.tmp / f"replica-{n}.err"
        metrics_port = _free_port()
        env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        env.pop("AVATARLAB_STORE_DIR", None)
        if via_env:  # how the Kubernetes manifests pass it (from a Secret)
            env["AVATARLAB_STORE_URL"] = store_url
        store = [] if via_env else ["--store-url", store_url]
        cmd = [sys.executable, "-m", "avatar_service.cli", "serve", "--model", "tiny", *store,
               "--listen", "127.0.0.1:0", "--metrics-port", str(metrics_port), "--face-px", "128", *extra]
        with open(out, "wb") as o, open(err, "wb") as e:
            proc = subprocess.Popen(cmd, stdout=o, stderr=e, env=env, cwd=self.tmp)
        return proc, out, err, metrics_port

    def wait(self, launched, timeout_s: float = 120) -> Replica:
        proc, out, err, metrics_port = launched
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            m = re.search(r"listening on port (\d+)", out.read_text())
            if m:
                r = Replica(proc, int(m.group(1)), metrics_port, err)
                self.started.append(r)
                return r
            if proc.poll() is not None:
                raise RuntimeError(f"replica exited with {proc.returncode}:\n{err.read_text()[-3000:]}")
            time.sleep(0.1)
        proc.kill()
        raise RuntimeError(f"replica did not start in {timeout_s} s:\n{err.read_text()[-3000:]}")

    def start(self, store_url: str, n: int = 1, *extra: str, via_env: bool = False) -> list[Replica]:
        """Start n replicas at once (they migrate the same database concurrently) and wait for all."""
        launched = [self.launch(store_url, *extra, via_env=via_env) for _ in range(n)]
        return [self.wait(x) for x in launched]

    def stop_all(self) -> None:
        for r in self.started:
            if r.proc.poll() is None:
                r.proc.kill()  # these tests are not about draining; the drain has its own tests
            r.proc.wait(timeout=30)


@pytest.fixture
def replicas(tmp_path):
    rs = Replicas(tmp_path)
    yield rs
    rs.stop_all()


@pytest.fixture(scope="module")
def shared(postgres, tmp_path_factory):
    """One registry and two replicas serving it, started together on the empty database (so both
    run the start-up migration at once), with JSON logs. Shared by the tests that kill neither."""
    url = _new_database(postgres)
    rs = Replicas(tmp_path_factory.mktemp("shared"))
    pair = rs.start(url, 2, "--log-format", "json")
    yield url, rs, pair
    rs.stop_all()


@pytest.fixture(scope="module")
def speech() -> tuple[np.ndarray, int]:
    audio, sr = sf.read(ASSETS / "demo_line.wav", dtype="float32")
    return audio, sr


PORTRAIT = (ASSETS / "astronaut.png").read_bytes()


def _frames_for(seconds: float) -> int:
    return int(np.ceil(seconds * FPS - 1e-9))


class Stream:
    """One Animate session on a thread, collecting what arrives, so a test can act mid-stream."""

    def __init__(self, client: AvatarLabClient, avatar_id: str, audio: np.ndarray, sr: int, realtime: bool):
        self.frames: list[int] = []
        self.started: pb.SessionStarted | None = None
        self.ended: pb.SessionStats | None = None
        self.error: grpc.RpcError | None = None
        self._t = threading.Thread(target=self._run, args=(client, avatar_id, audio, sr, realtime), daemon=True)
        self._t.start()

    def _run(self, client, avatar_id, audio, sr, realtime):
        try:
            for msg in client.animate_stream(avatar_id, audio, sr, chunk_ms=100, realtime=realtime):
                kind = msg.WhichOneof("message")
                if kind == "started":
                    self.started = msg.started
                elif kind == "frame":
                    self.frames.append(msg.frame.index)
                else:
                    self.ended = msg.ended.stats
        except grpc.RpcError as e:
            self.error = e

    def wait_frames(self, n: int, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.frames) < n:
            assert time.monotonic() < deadline, f"{len(self.frames)} frames after {timeout_s} s (error {self.error})"
            assert self.error is None and self.ended is None, f"stream ended early: {self.error or self.ended}"
            time.sleep(0.02)

    def join(self, timeout_s: float = 120) -> None:
        self._t.join(timeout_s)
        assert not self._t.is_alive(), "stream did not finish"


# -- the store itself --------------------------------------------------------------------------------------

def _record(i: int, t: int | None = None) -> AvatarRecord:
    return AvatarRecord(avatar_id=f"av{i:04d}-{uuid.uuid4().hex[:6]}", display_name=f"npc {i} ünïcode", source_kind=1,
                        face_px=128, pose_frame_count=1 + i % 3, create_time_unix_ms=t if t is not None else 1_000 + i,
                        model_id="avatarlab-face-tiny@abc")


@pytest.fixture(params=["local", "postgres"])
def store(request, tmp_path):
    if request.param == "local":
        yield LocalAvatarStore(tmp_path / "avatars")
    else:
        s = PostgresAvatarStore(request.getfixturevalue("pg_url"))
        yield s
        s.close()


def test_store_contract(store):
    """Both backends keep the same AvatarStore contract."""
    recs = [_record(i, t) for i, t in enumerate([30, 10, 20, 10])]
    states = [os.urandom(1000 + 100 * i) for i in range(len(recs))]
    for r, s in zip(recs, states):
        store.put(r, s)
    assert store.count() == 4
    assert store.get(recs[2].avatar_id) == recs[2]
    assert store.load_state(recs[3].avatar_id) == states[3]
    # oldest first; equal times ordered by id
    oldest_first = sorted(recs, key=lambda r: (r.create_time_unix_ms, r.avatar_id))
    assert [r.avatar_id for r in store.list()] == [r.avatar_id for r in oldest_first]
    assert store.get("missing") is None and store.load_state("missing") is None
    assert store.get("../etc") is None and store.load_state("../etc") is None
    with pytest.raises(ValueError):
        store.put(dataclasses.replace(recs[0], avatar_id="no/slashes"), b"x")
    assert store.delete(recs[0].avatar_id) is True
    assert store.delete(recs[0].avatar_id) is False
    assert store.get(recs[0].avatar_id) is None and store.count() == 3


def test_postgres_rejects_duplicate_ids(pg_url):
    s = PostgresAvatarStore(pg_url)
    r = _record(1)
    s.put(r, b"first")
    s.put(r, b"first")  # the same write again (a retry whose first reply was lost) is a success
    with pytest.raises(ValueError, match="already exists"):
        s.put(r, b"different")
    assert s.load_state(r.avatar_id) == b"first"
    s.close()


def test_migrations_run_once_under_concurrent_start(pg_url):
    """Sixteen replicas' worth of stores open a fresh database at once: the schema is made exactly once."""
    barrier = threading.Barrier(16)

    def open_store(_):
        barrier.wait()
        return PostgresAvatarStore(pg_url)

    with concurrent.futures.ThreadPoolExecutor(16) as ex:
        stores = list(ex.map(open_store, range(16)))
    with psycopg.connect(pg_url) as c:
        rows = c.execute(f"SELECT version, name FROM {MIGRATIONS_TABLE} ORDER BY version").fetchall()
        assert rows == [(m.version, m.name) for m in MIGRATIONS]
        assert migrate(c) == []  # idempotent
        # a later release adds a migration: only that one runs
        extra = Migration(MIGRATIONS[-1].version + 1, "test column", "ALTER TABLE avatars ADD COLUMN note text")
        assert migrate(c, [*MIGRATIONS, extra]) == [extra.version]
        assert migrate(c, [*MIGRATIONS, extra]) == []
    stores[0].put(_record(1), b"state")
    assert all(s.count() == 1 for s in stores)
    for s in stores:
        s.close()


def test_concurrent_writers_all_land(pg_url):
    stores = [PostgresAvatarStore(pg_url) for _ in range(2)]
    recs = [_record(i) for i in range(64)]
    with concurrent.futures.ThreadPoolExecutor(16) as ex:
        list(ex.map(lambda ir: stores[ir[0] % 2].put(ir[1], ir[1].avatar_id.encode() * 50), enumerate(recs)))
    assert stores[0].count() == 64
    assert {r.avatar_id for r in stores[1].list()} == {r.avatar_id for r in recs}
    assert all(stores[0].load_state(r.avatar_id) == r.avatar_id.encode() * 50 for r in recs)
    for s in stores:
        s.close()


def test_store_recovers_after_database_restart(postgres, pg_url):
    """Pooled connections die with a database restart; the next call reconnects instead of failing."""
    s = PostgresAvatarStore(pg_url)
    r = _record(7)
    s.put(r, b"state")
    postgres.restart()
    assert s.get(r.avatar_id) == r
    s.put(_record(8), b"more")
    assert s.count() == 2
    s.close()


def test_store_waits_for_a_database_that_comes_up_later(postgres):
    """Replicas often start before their database is ready: the store retries until it is."""
    name = f"t_{uuid.uuid4().hex[:12]}"

    def create():
        with psycopg.connect(postgres.url(), autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"')

    threading.Timer(1.5, create).start()
    t0 = time.monotonic()
    s = PostgresAvatarStore(postgres.url(name), startup_wait_s=30)
    assert time.monotonic() - t0 >= 1.5
    s.put(_record(1), b"state")
    assert s.count() == 1
    s.close()


def test_unreachable_registry_is_unavailable():
    from avatar_service.errors import Unavailable
    with pytest.raises(Unavailable, match=r"avatarlab:\*\*\*@127.0.0.1:\d+/none is unreachable") as e:
        PostgresAvatarStore(f"postgresql://avatarlab:secret@127.0.0.1:{_free_port()}/none", connect_timeout_s=2,
                            startup_wait_s=0)
    assert "secret" not in str(e.value)  # the password never reaches messages or logs


# -- replicas sharing one registry -----------------------------------------------------------------------

def test_avatar_created_on_one_replica_animates_on_the_other(shared, speech):
    _, _, (a, b) = shared
    audio, sr = speech
    with a.client() as ca, b.client() as cb:
        avatar = ca.create_avatar(PORTRAIT, display_name="guard")
        assert cb.stub.GetAvatar(pb.GetAvatarRequest(avatar_id=avatar.avatar_id)) == avatar
        assert avatar in cb.stub.ListAvatars(pb.ListAvatarsRequest(page_size=1000)).avatars
        frames, stats = cb.animate(avatar.avatar_id, audio[: sr * 2], sr)  # B loads it from the registry
        assert [f.index for f in frames] == list(range(_frames_for(2.0)))
        assert stats.frames_sent == len(frames)
        assert frames[0].image.shape == (128, 128, 3) and frames[0].image.std() > 5  # a real face, not blank

        # Deleted through A: B, which has its state cached, must refuse it too.
        ca.stub.DeleteAvatar(pb.DeleteAvatarRequest(avatar_id=avatar.avatar_id))
        with pytest.raises(grpc.RpcError) as e:
            cb.animate(avatar.avatar_id, audio[:sr], sr)
        assert e.value.code() == grpc.StatusCode.NOT_FOUND


def test_killed_replica_affects_only_its_own_streams(shared, replicas, speech):
    url, _, (_, b) = shared
    (a,) = replicas.start(url, 1)  # the one to kill
    audio, sr = speech
    clip = audio[: sr * 4]
    with a.client() as ca, b.client() as cb:
        avatar = ca.create_avatar(PORTRAIT)
        on_a = [Stream(ca, avatar.avatar_id, clip, sr, realtime=True) for _ in range(2)]
        on_b = [Stream(cb, avatar.avatar_id, clip, sr, realtime=True) for _ in range(2)]
        for s in on_a + on_b:
            s.wait_frames(5)
        a.kill()  # SIGKILL: no drain, no goodbye
        for s in on_a + on_b:
            s.join()
        for s in on_a:
            assert s.error is not None and s.error.code() == grpc.StatusCode.UNAVAILABLE, s.error
            assert s.ended is None
        for s in on_b:
            assert s.error is None, s.error
            assert s.frames == list(range(_frames_for(4.0)))
            assert s.ended.frames_sent == _frames_for(4.0)
        # B carries on: new sessions and new avatars
        frames, _ = cb.animate(avatar.avatar_id, audio[:sr], sr)
        assert len(frames) == _frames_for(1.0)
        assert cb.create_avatar(PORTRAIT).avatar_id


def test_registry_writes_survive_a_replica_crash(shared, replicas, speech):
    url, _, (_, b) = shared
    (a,) = replicas.start(url, 1, via_env=True)
    audio, sr = speech
    with a.client() as ca:
        made = [ca.create_avatar(PORTRAIT, display_name=f"npc{i}") for i in range(3)]
    a.kill()  # right after the acknowledgements
    with b.client() as cb:  # B never saw these: it loads them from the registry
        listed = list(cb.stub.ListAvatars(pb.ListAvatarsRequest(page_size=1000)).avatars)
        assert listed[-3:] == made
        for m in made:
            assert cb.stub.GetAvatar(pb.GetAvatarRequest(avatar_id=m.avatar_id)) == m
        frames, _ = cb.animate(made[1].avatar_id, audio[:sr], sr)
        assert len(frames) == _frames_for(1.0)


def test_concurrent_creates_from_both_replicas_all_land(shared):
    url, _, (a, b) = shared
    clients = [a.client(), b.client()]
    with psycopg.connect(url) as c:
        before = c.execute("SELECT count(*) FROM avatars").fetchone()[0]

    def create(i):
        return clients[i % 2].create_avatar(PORTRAIT, display_name=f"npc{i}").avatar_id

    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        ids = list(ex.map(create, range(12)))
    assert len(set(ids)) == 12
    with psycopg.connect(url) as c:
        assert c.execute("SELECT count(*) FROM avatars").fetchone()[0] == before + 12
    listings = []
    for c in clients:
        listings.append([x.avatar_id for x in c.stub.ListAvatars(pb.ListAvatarsRequest(page_size=1000)).avatars])
        c.close()
    assert listings[0] == listings[1] and set(ids) <= set(listings[0])


def _delta(after: dict, before: dict, key: str) -> float:
    return after[key] - before.get(key, 0.0)


def test_metrics_and_json_logs_after_a_session(shared, speech):
    _, _, (r, _) = shared
    audio, sr = speech
    before = r.metrics()
    assert before["avatarlab_active_sessions"] == 0
    with r.client() as c:
        avatar = c.create_avatar(PORTRAIT)
        s = Stream(c, avatar.avatar_id, audio[: sr * 2], sr, realtime=True)
        s.wait_frames(3)
        assert r.metrics()["avatarlab_active_sessions"] == 1
        s.join()
        assert s.error is None and s.ended.frames_sent == _frames_for(2.0)
        with pytest.raises(grpc.RpcError):
            c.stub.GetAvatar(pb.GetAvatarRequest(avatar_id="nope"))
        with pytest.raises(grpc.RpcError):
            c.stub.GetAvatar(pb.GetAvatarRequest(avatar_id=""))
    m = r.metrics()
    n = _frames_for(2.0)
    d = lambda key: _delta(m, before, key)  # noqa: E731 - other tests used this replica too
    assert m["avatarlab_active_sessions"] == 0
    assert d("avatarlab_sessions_total") == 1
    assert m["avatarlab_queue_depth"] == 0
    assert d("avatarlab_frames_generated_total") == n
    assert d("avatarlab_batch_size_sum") == n and 1 <= d("avatarlab_batch_size_count") <= n
    assert d("avatarlab_model_step_seconds_count") == d("avatarlab_batch_size_count")
    assert 0 < d("avatarlab_model_step_seconds_sum") < 60
    assert d("avatarlab_frame_latency_seconds_count") == n
    assert 0 < d("avatarlab_frame_latency_seconds_sum") / n < 5
    # a frame's latency includes its batch's model step, so the latency sum is at least the step sum
    assert d("avatarlab_frame_latency_seconds_sum") >= d("avatarlab_model_step_seconds_sum")
    get = "/avatarlab.v1.AvatarService/GetAvatar"
    assert d(f'avatarlab_rpc_errors_total{{code="NOT_FOUND",method="{get}"}}') == 1
    assert d(f'avatarlab_rpc_errors_total{{code="INVALID_ARGUMENT",method="{get}"}}') == 1
    assert m["avatarlab_frame_errors_total"] == 0
    assert m["process_resident_memory_bytes"] > 50e6  # a model is loaded

    lines = [json.loads(x) for x in r.log.read_text().splitlines() if x.startswith("{")]
    assert lines, "no JSON log lines"
    mine = [x for x in lines if x.get("session_id") == s.started.session_id]
    assert any("started" in x["msg"] and x.get("avatar_id") == avatar.avatar_id for x in mine), mine
    assert any("ended" in x["msg"] and x.get("frames_sent") == n for x in mine), mine
    assert all({"ts", "level", "logger", "msg"} <= x.keys() for x in lines)
