"""Structural checks of deploy/: Envoy and Kubernetes are not installable on this machine, so these do
not prove that Envoy accepts the config or that a cluster runs it. They prove what would break a
deployment silently: the YAML parses, gRPC routing/health/HTTP/2 are set, names and ports agree
between Envoy, Services and the Deployment, the drain fits the grace period, and the server's own
CLI and settings accept the container's arguments and environment."""
from __future__ import annotations

import pathlib
import re

import pytest

yaml = pytest.importorskip("yaml", reason="PyYAML is not installed: pip install pyyaml")

from avatar_service.api import pb  # noqa: E402
from avatar_service.cli import build_parser  # noqa: E402
from avatar_service.server.settings import ServerSettings  # noqa: E402

DEPLOY = pathlib.Path(__file__).resolve().parents[1] / "deploy"
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["AvatarService"].full_name


def _docs(path: pathlib.Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _k8s() -> dict[tuple[str, str], dict]:
    out = {}
    for f in sorted((DEPLOY / "k8s").glob("*.yaml")):
        for d in _docs(f):
            if "kind" in d and d["kind"] != "Kustomization":
                out[(d["kind"], d["metadata"]["name"])] = d
    return out


def _seconds(d: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)s", d)
    assert m, f"not an Envoy duration: {d!r}"
    return float(m.group(1))


def _type_urls(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "@type":
                yield v
            else:
                yield from _type_urls(v)
    elif isinstance(node, list):
        for v in node:
            yield from _type_urls(v)


def check_envoy(cfg: dict) -> dict:
    """Assert the gRPC essentials of an Envoy bootstrap; returns the upstream cluster."""
    assert set(cfg) <= {"admin", "static_resources", "node", "layered_runtime", "stats_sinks"}
    for url in _type_urls(cfg):
        assert re.fullmatch(r"type\.googleapis\.com/envoy\.[a-z0-9_.]+\.v3\.[A-Z][A-Za-z0-9]+", url), url
    res = cfg["static_resources"]
    clusters = {c["name"]: c for c in res["clusters"]}
    (listener,) = res["listeners"]
    (chain,) = listener["filter_chains"]
    (hcm,) = chain["filters"]
    assert hcm["name"] == "envoy.filters.network.http_connection_manager"
    hcm = hcm["typed_config"]
    assert hcm["codec_type"] in ("AUTO", "HTTP2")
    assert hcm["http_filters"][-1]["name"] == "envoy.filters.http.router"  # the router must be last
    routes = [r for vh in hcm["route_config"]["virtual_hosts"] for r in vh["routes"]]
    assert routes[-1]["match"] == {"prefix": "/", "grpc": {}}  # catch-all last
    for r in routes:
        assert r["route"]["cluster"] in clusters
        path = r["match"].get("path", "")
        if path:  # exact paths name real RPCs of the contract
            service, method = path.strip("/").rsplit("/", 1)
            assert service == SERVICE_NAME and method in pb.DESCRIPTOR.services_by_name["AvatarService"].methods_by_name
        if path.endswith("/CreateAvatar"):  # not idempotent: no retry once a replica has it
            assert "unavailable" not in r["route"]["retry_policy"]["retry_on"]
    # the catch-all carries the streams: Envoy's default 15 s route timeout would cut every session
    assert _seconds(routes[-1]["route"]["timeout"]) == 0
    assert _seconds(hcm["stream_idle_timeout"]) >= 60

    (cluster,) = clusters.values()
    opts = cluster["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
    assert "http2_protocol_options" in opts["explicit_http_config"]  # gRPC to the replicas is HTTP/2
    (hc,) = cluster["health_checks"]
    assert hc["grpc_health_check"]["service_name"] == SERVICE_NAME
    assert cluster["lb_policy"] in ("LEAST_REQUEST", "ROUND_ROBIN", "RANDOM")
    assert cluster["circuit_breakers"]["thresholds"][0]["max_requests"] > 1024  # every open stream counts
    od = cluster["outlier_detection"]
    assert od.get("enforcing_consecutive_gateway_failure", 0) > 0  # else Envoy only logs it
    assert cluster["load_assignment"]["cluster_name"] == cluster["name"]
    return cluster


def _endpoints(cluster: dict) -> list[tuple[str, int]]:
    addrs = [e["endpoint"]["address"]["socket_address"]
             for group in cluster["load_assignment"]["endpoints"] for e in group["lb_endpoints"]]
    return [(a["address"], a["port_value"]) for a in addrs]


def test_envoy_config_routes_grpc_to_health_checked_replicas():
    (cfg,) = _docs(DEPLOY / "envoy.yaml")
    cluster = check_envoy(cfg)
    eps = _endpoints(cluster)
    assert len(eps) >= 2 and len(set(eps)) == len(eps)
    assert {port for _, port in eps} == {50051}


def test_k8s_envoy_is_the_same_config_pointed_at_the_headless_service():
    k = _k8s()
    cfg = yaml.safe_load(k[("ConfigMap", "avatarlab-envoy")]["data"]["envoy.yaml"])
    cluster = check_envoy(cfg)
    (host, port), = _endpoints(cluster)
    svc = k[("Service", "avatarlab-replicas")]
    assert svc["spec"]["clusterIP"] == "None"  # headless: DNS returns every pod, Envoy balances per stream
    name, ns = host.split(".")[:2]
    assert (name, ns) == ("avatarlab-replicas", "avatarlab")
    assert cluster["type"] == "STRICT_DNS"
    assert port == svc["spec"]["ports"][0]["port"]
    # Apart from the endpoint (and DNS refresh), it is deploy/envoy.yaml: the two cannot drift apart.
    (plain,) = _docs(DEPLOY / "envoy.yaml")
    for c in (cfg, plain):
        c["static_resources"]["clusters"][0].pop("load_assignment")
        c["static_resources"]["clusters"][0].pop("dns_refresh_rate", None)
    assert cfg == plain
    envoy = k[("Deployment", "avatarlab-envoy")]["spec"]["template"]["spec"]
    assert envoy["volumes"][0]["configMap"]["name"] == "avatarlab-envoy"
    listen = cfg["static_resources"]["listeners"][0]["address"]["socket_address"]["port_value"]
    assert envoy["containers"][0]["ports"][0]["containerPort"] == listen


def test_k8s_deployment_probes_drain_secret_and_services_agree():
    k = _k8s()
    dep = k[("Deployment", "avatarlab")]
    pod = dep["spec"]["template"]
    (c,) = pod["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}

    # the server's own parser and settings accept what the container runs with
    args = build_parser().parse_args(c["args"])
    env = {e["name"]: e.get("value", "postgresql://u:p@db:5432/avatarlab") for e in c["env"]}
    settings = ServerSettings.load(None, env=env, **{k: getattr(args, k, None) for k in
                                                     ("listen", "device", "metrics_port", "log_format", "model")})
    assert settings.listen.endswith(f":{ports['grpc']}") and settings.listen.startswith("0.0.0.0")
    assert settings.metrics_port == ports["metrics"] == int(pod["metadata"]["annotations"]["prometheus.io/port"])
    assert settings.store_url.startswith("postgresql://")

    # registry URL from the Secret that the example defines
    (url_env,) = [e for e in c["env"] if e["name"] == "AVATARLAB_STORE_URL"]
    ref = url_env["valueFrom"]["secretKeyRef"]
    (secret,) = _docs(DEPLOY / "k8s" / "postgres-secret.example.yaml")
    assert (secret["kind"], secret["metadata"]["name"]) == ("Secret", ref["name"])
    assert secret["stringData"][ref["key"]].startswith("postgresql://")

    # gRPC probes: readiness asks for the AvatarService (NOT_SERVING while loading or draining)
    assert c["readinessProbe"]["grpc"] == {"port": ports["grpc"], "service": SERVICE_NAME}
    assert c["livenessProbe"]["grpc"]["port"] == ports["grpc"]
    assert c["startupProbe"]["grpc"]["port"] == ports["grpc"]
    assert c["startupProbe"]["periodSeconds"] * c["startupProbe"]["failureThreshold"] >= 120  # model load

    # Kubernetes waits for preStop + the server's drain before SIGKILL
    pre_stop = float(c["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert pod["spec"]["terminationGracePeriodSeconds"] >= pre_stop + settings.grace_s + 5

    labels = pod["metadata"]["labels"]
    assert dep["spec"]["selector"]["matchLabels"] == labels
    for name in ("avatarlab", "avatarlab-replicas"):
        svc = k[("Service", name)]["spec"]
        assert svc["selector"] == labels
        for p in svc["ports"]:
            assert p["targetPort"] in ports
    assert k[("PodDisruptionBudget", "avatarlab")]["spec"]["selector"]["matchLabels"] == labels


def test_kustomization_lists_every_manifest_but_the_secret_example():
    (kust,) = _docs(DEPLOY / "k8s" / "kustomization.yaml")
    files = {p.name for p in (DEPLOY / "k8s").glob("*.yaml")} - {"kustomization.yaml", "postgres-secret.example.yaml"}
    assert set(kust["resources"]) == files
