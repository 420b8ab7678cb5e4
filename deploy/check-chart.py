"""Offline checks of the Helm chart deploy/helm/edk, run by scripts/test.

For every values file (and the all-in-one variant): render the chart with Helm's own engine
(helm-python-sdk, which validates the values against values.schema.json first), `helm lint
--strict`, validate every rendered object against the Kubernetes OpenAPI schemas
(kubernetes-validate, strict, for the oldest and newest Kubernetes the chart supports), and
assert the topology: no ingress reaches the KMS, the public ingress carries no admin path,
every pod runs as non-root with a read-only root filesystem and no service account token,
NetworkPolicies select every pod, and the servers' configuration files say what the values
say. With `observability.otlp` set, every server's configuration carries the OTLP endpoint,
its pod the export headers from their Secret, and its NetworkPolicy the egress to the
collector; without it, none of them. The platform's tenant directory: the platform serves it on
its gRPC port exactly when servers read it (directory.clients), each of them has its
`directory` section, its service key and the egress to that port, no ingress routes to it and
no other pod may reach it. Rate limits: the servers that have them carry the `rate_limits`
section, and with Redis on every one of them counts in Redis (the in-chart one, or an external
one whose URL comes only from the Secret) and may reach it, while no other pod may. Then wrong
values must be refused by the schema, naming the offending key.

Usage: python deploy/check-chart.py
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import helm_python as helm
import yaml
from kubernetes_validate import utils as kv

ROOT = Path(__file__).resolve().parent
CHART = ROOT / "helm" / "edk"
RELEASE = "edk"
NAMESPACE = "edk"
KUBE_VERSIONS = ["1.27.0", kv.latest_version()]
# The servers that call the KMS over gRPC: the runtime servers and the platform.
RUNTIME = ["as", "did", "issuer", "verifier", "platform"]
# The servers that may read the platform's tenant directory (directory.clients); not the KMS,
# whose Ping the platform's readiness waits for.
DIRECTORY_CLIENTS = ["as", "did", "issuer", "verifier"]
# The servers with a `rate_limits` section.
RATE_LIMITED = ["as", "issuer", "verifier", "edk"]
SERVICE_KEY = "/var/run/secrets/edk/service/service.jwk"
# Custom resources: no Kubernetes schema; their required fields are checked below.
CUSTOM = {
    ("cert-manager.io/v1", "Certificate"): ["secretName", "issuerRef"],
    ("cert-manager.io/v1", "Issuer"): [],
    ("monitoring.coreos.com/v1", "ServiceMonitor"): ["selector", "endpoints"],
    ("postgresql.cnpg.io/v1", "Cluster"): ["instances", "storage"],
    ("external-secrets.io/v1", "ExternalSecret"): ["secretStoreRef", "target", "data"],
}
# The top-level configuration sections each server's configuration type accepts.
CONFIG_SECTIONS = {
    "kms": {"http", "auth", "log", "observability", "database", "kms", "directory", "grpc"},
    "as": {"http", "auth", "log", "observability", "database", "kms", "directory", "oauth", "rate_limits"},
    "did": {"http", "auth", "log", "observability", "database", "kms", "directory", "resolver"},
    "issuer": {"http", "auth", "log", "observability", "database", "kms", "directory", "oauth", "issuer", "rate_limits"},
    "verifier": {"http", "auth", "log", "observability", "database", "kms", "directory", "verifier", "rate_limits"},
    "platform": {"http", "auth", "log", "observability", "database", "kms", "oauth", "platform", "grpc"},
    "edk": {"http", "auth", "log", "observability", "database", "kms", "oauth", "local_https", "did_resolver", "issuer",
            "verifier", "rate_limits"},
}
# The keys each section the chart writes may hold (the servers refuse unknown keys).
DIRECTORY_KEYS = {"endpoint", "service", "audience", "key_file", "token_lifetime_secs", "server_ca_file", "server_name",
                  "cache_ttl_secs", "timeout_millis"}
DIRECTORY_SERVER_KEYS = {"listen", "audience", "services", "max_lifetime_secs", "tls"}
RATE_LIMIT_KEYS = {"redis", "on_backend_error", "client_ip_header", "limits"}
# The tenant directory read by every server that can, with the trusted keys it needs, and the
# rate-limit counters in the in-chart Redis.
KEY = {"kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
       "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}
DIRECTORY_AND_REDIS = {
    "directory": {"clients": DIRECTORY_CLIENTS, "trustedServices": {"issuer": {"jwks": {"keys": [KEY]}, "tenants": ["acme"]}}},
    "kms": {"trustedServices": {s: {"jwks": {"keys": [KEY]}} for s in RUNTIME}},
    "redis": {"enabled": True, "internal": {"enabled": True}},
}
REDIS = {"redis": {"enabled": True, "internal": {"enabled": True}}}
# Trace export to a collector, with headers from a Secret.
OTLP = {"observability": {"otlp": {
    "endpoint": "http://otel-collector.observability:4317",
    "sampleRatio": 0.25,
    "timeoutMs": 5000,
    "headersSecret": {"name": "otlp-auth", "key": "headers"},
    "collector": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "observability"}},
                  "podSelector": {"matchLabels": {"app": "otel-collector"}}, "port": 4317},
}}}

passed = 0
failures: list[str] = []


def check(name: str, condition: bool, detail: str = "") -> None:
    global passed
    if condition:
        passed += 1
    else:
        failures.append(f"{name}: {detail}" if detail else name)


def load(name: str) -> dict:
    return yaml.safe_load((CHART / name).read_text()) or {}


def merge(base: dict, overlay: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def render(chart: helm.Chart, values: dict) -> list[dict]:
    manifests = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    objects = []
    for path, text in sorted(manifests.items()):
        if path.endswith("NOTES.txt"):
            continue
        objects.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return objects


def selects(selector: dict, labels: dict) -> bool:
    unsupported = set(selector) - {"matchLabels"}
    assert not unsupported, f"selector with {unsupported} not supported by this check"
    return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items())


def check_rendering(label: str, objects: list[dict], values: dict) -> None:
    by_kind: dict[str, list[dict]] = {}
    for obj in objects:
        by_kind.setdefault(obj["kind"], []).append(obj)
        api, kind = obj["apiVersion"], obj["kind"]
        name = f"{label}: {kind}/{obj['metadata']['name']}"
        if (api, kind) in CUSTOM:
            spec = obj.get("spec", {})
            missing = [field for field in CUSTOM[(api, kind)] if field not in spec]
            check(f"{name} has its required fields", not missing, f"missing {missing}")
            continue
        for version in KUBE_VERSIONS:
            try:
                kv.validate(obj, version, strict=True)
                check(f"{name} valid for Kubernetes {version}", True)
            except (kv.ValidationError, kv.SchemaNotFoundError, kv.InvalidSchemaError) as err:
                check(f"{name} valid for Kubernetes {version}", False, str(err).splitlines()[0])

    services = {s["metadata"]["name"]: s for s in by_kind.get("Service", [])}
    deployments = by_kind.get("Deployment", [])
    check(f"{label}: some deployment rendered", bool(deployments))

    # No ingress reaches the KMS; the public one carries no admin path; each server gets
    # exactly its public paths on the public ingress and its admin paths on the admin one.
    routed: dict[tuple[str, str], list[str]] = {}
    for ingress in by_kind.get("Ingress", []):
        kind = ingress["metadata"]["labels"].get("edk.dev/ingress")
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]["name"]
                component = services[backend]["spec"]["selector"]["app.kubernetes.io/component"]
                check(f"{label}: ingress {kind} {path['path']} reaches the HTTP port only (no gRPC listener)",
                      path["backend"]["service"]["port"] == {"name": "http"}, str(path["backend"]["service"]["port"]))
                routed.setdefault((kind, component), []).append(path["path"])
                check(f"{label}: ingress {kind} {path['path']} does not reach the KMS",
                      component != "kms", f"backend {backend}")
                if kind == "public":
                    for forbidden in ("/api", "/metrics", "/docs", "/openapi.json", "/health"):
                        check(f"{label}: public ingress path {path['path']} is not under {forbidden}",
                              not (path["path"] == forbidden or path["path"].startswith(forbidden + "/")))
                    check(f"{label}: public ingress path {path['path']} is not /", path["path"] != "/")
    if not values["allInOne"]["enabled"]:
        for server in RUNTIME:
            for kind in ("public", "admin"):
                want = values[server][f"{kind}Paths"] if values[server]["enabled"] and values["ingress"][kind]["enabled"] else []
                got = routed.get((kind, server), [])
                check(f"{label}: the {kind} ingress routes {server}'s {kind} paths", got == want, f"{got} != {want}")
    for service in services.values():
        component = service["spec"]["selector"]["app.kubernetes.io/component"]
        check(f"{label}: Service {service['metadata']['name']} is ClusterIP",
              service["spec"].get("type", "ClusterIP") == "ClusterIP")
        if component == "kms":
            ports = sorted(p["port"] for p in service["spec"]["ports"])
            check(f"{label}: the KMS Service exposes HTTP and gRPC", ports == [8080, values["kms"]["grpcPort"]], str(ports))
        if component == "platform":
            ports = sorted(p["port"] for p in service["spec"]["ports"])
            want = sorted([8080] + ([values["platform"]["grpcPort"]] if directory_clients(values) else []))
            check(f"{label}: the platform Service exposes HTTP, and gRPC exactly when it serves the tenant directory",
                  ports == want, f"{ports} != {want}")

    accounts = {a["metadata"]["name"]: a for a in by_kind.get("ServiceAccount", [])}
    policies = by_kind.get("NetworkPolicy", [])
    for deployment in deployments:
        name = f"{label}: Deployment {deployment['metadata']['name']}"
        pod = deployment["spec"]["template"]
        spec = pod["spec"]
        labels = pod["metadata"]["labels"]
        pod_sc = spec.get("securityContext", {})
        check(f"{name} pod runs as non-root", pod_sc.get("runAsNonRoot") is True and pod_sc.get("runAsUser", 0) != 0)
        check(f"{name} pod has the RuntimeDefault seccomp profile",
              pod_sc.get("seccompProfile", {}).get("type") == "RuntimeDefault")
        check(f"{name} mounts no service account token", spec.get("automountServiceAccountToken") is False)
        account = accounts.get(spec.get("serviceAccountName"))
        check(f"{name} has its own ServiceAccount without token automount",
              account is not None and account.get("automountServiceAccountToken") is False)
        for container in spec["containers"]:
            sc = container.get("securityContext", {})
            cname = f"{name} container {container['name']}"
            check(f"{cname} has a read-only root filesystem", sc.get("readOnlyRootFilesystem") is True)
            check(f"{cname} runs as non-root", sc.get("runAsNonRoot") is True and sc.get("runAsUser") == 10001)
            check(f"{cname} cannot escalate", sc.get("allowPrivilegeEscalation") is False)
            check(f"{cname} drops every capability", sc.get("capabilities", {}).get("drop") == ["ALL"])
            resources = container.get("resources", {})
            check(f"{cname} has requests and limits",
                  {"cpu", "memory"} <= set(resources.get("requests", {})) and {"cpu", "memory"} <= set(resources.get("limits", {})))
            if labels["app.kubernetes.io/component"] == "redis":
                check(f"{cname} probes its port",
                      container["livenessProbe"]["tcpSocket"]["port"] == "redis"
                      and container["readinessProbe"]["tcpSocket"]["port"] == "redis")
                continue
            check(f"{cname} probes /health/live and /health/ready",
                  container["livenessProbe"]["httpGet"]["path"] == "/health/live"
                  and container["readinessProbe"]["httpGet"]["path"] == "/health/ready")
        deny = [p for p in policies if p["metadata"]["name"].endswith("-default-deny")]
        check(f"{name} is under the default-deny NetworkPolicy",
              len(deny) == 1 and selects(deny[0]["spec"]["podSelector"], labels)
              and sorted(deny[0]["spec"]["policyTypes"]) == ["Egress", "Ingress"]
              and not deny[0]["spec"].get("ingress") and not deny[0]["spec"].get("egress"))
        own = [p for p in policies if p not in deny and selects(p["spec"]["podSelector"], labels)]
        check(f"{name} has exactly one NetworkPolicy of its own", len(own) == 1, str(len(own)))

    # East-west: the KMS's gRPC port takes only the runtime servers' pods, and no ingress controller.
    component_of = lambda p: p["spec"]["podSelector"]["matchLabels"].get("app.kubernetes.io/component")
    kms_policy = [p for p in policies if component_of(p) == "kms"]
    if values["kms"]["enabled"] and not values["allInOne"]["enabled"]:
        rules = kms_policy[0]["spec"]["ingress"]
        grpc_sources = [peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"]
                        for rule in rules if {"port": "grpc", "protocol": "TCP"} in rule["ports"]
                        for peer in rule["from"]]
        enabled = sorted(s for s in RUNTIME if values[s]["enabled"])
        check(f"{label}: only the runtime servers reach the KMS's gRPC port", sorted(grpc_sources) == enabled, str(grpc_sources))
        check(f"{label}: no ingress controller reaches the KMS",
              not any("namespaceSelector" in peer for rule in rules for peer in rule["from"]
                      if rule["ports"] == [{"port": "http", "protocol": "TCP"}]
                      and peer.get("namespaceSelector") == values["networkPolicy"]["ingressController"]["namespaceSelector"]))
        for server in enabled:
            policy = [p for p in policies if component_of(p) == server][0]
            to_kms = [rule for rule in policy["spec"]["egress"]
                      if any(peer.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/component") == "kms" for peer in rule["to"])]
            check(f"{label}: {server} may reach the KMS's gRPC port",
                  len(to_kms) == 1 and to_kms[0]["ports"] == [{"port": values["kms"]["grpcPort"], "protocol": "TCP"}])

    # The configuration files: sections each server accepts, secrets only by reference.
    for config_map in by_kind.get("ConfigMap", []):
        component = config_map["metadata"]["labels"].get("app.kubernetes.io/component")
        if component not in CONFIG_SECTIONS:
            continue
        config = yaml.safe_load(config_map["data"]["config.yaml"])
        name = f"{label}: {component} configuration"
        check(f"{name} has only known sections", set(config) <= CONFIG_SECTIONS[component], str(set(config) - CONFIG_SECTIONS[component]))
        check(f"{name} listens on 0.0.0.0:8080", config["http"]["listen"] == "0.0.0.0:8080")
        text = config_map["data"]["config.yaml"]
        check(f"{name} holds no database URL or key", "postgres://" not in text and '"d"' not in text and "key:" not in text)
        if not (values["redis"]["enabled"] and values["redis"]["internal"]["enabled"]):
            check(f"{name} holds no Redis URL", "redis://" not in text and "rediss://" not in text)
        for section, keys in (("directory", DIRECTORY_KEYS), ("rate_limits", RATE_LIMIT_KEYS)):
            if section in config:
                check(f"{name}: {section} holds only keys the server knows", set(config[section]) <= keys,
                      str(set(config[section]) - keys))
        if component == "platform" and "grpc" in config:
            check(f"{name}: grpc holds only keys the server knows", set(config["grpc"]) <= DIRECTORY_SERVER_KEYS,
                  str(set(config["grpc"]) - DIRECTORY_SERVER_KEYS))
        if component == "kms":
            grpc = config["grpc"]
            check(f"{name} listens for gRPC", grpc["listen"] == f"0.0.0.0:{values['kms']['grpcPort']}")
            kind = "mtls" if values["kmsAuth"]["mode"] == "mtls" else "service_jwt"
            check(f"{name} authenticates callers by {kind}", grpc["auth"]["kind"] == kind, grpc["auth"]["kind"])
            if kind == "mtls":
                hosts = sorted(f"{RELEASE}-{s}.{NAMESPACE}.svc" for s in RUNTIME if values[s]["enabled"])
                check(f"{name} allows the runtime servers' certificates", sorted(grpc["auth"]["allow"]) == hosts, str(grpc["auth"]["allow"]))
                check(f"{name} requires client certificates", grpc["tls"]["client_ca_file"] == "/var/run/secrets/edk/tls/ca.crt")
            else:
                check(f"{name} trusts each runtime server's key",
                      sorted(s["name"] for s in grpc["auth"]["services"]) == sorted(s for s in RUNTIME if values[s]["enabled"]))
            # The platform reads the audit chains, runs the operator authorization server and
            # makes the tenants' as.* and did.* keys: the KMS grants it exactly that.
            if values["platform"]["enabled"]:
                platform = "platform" if kind == "service_jwt" else f"{RELEASE}-platform.{NAMESPACE}.svc"
                check(f"{name} lets only the platform read audit chains", grpc.get("audit_readers") == [platform],
                      str(grpc.get("audit_readers")))
                if kind == "mtls":
                    grants = grpc["auth"].get("acts_as", {})
                else:
                    grants = {s["name"]: s["acts_as"] for s in grpc["auth"]["services"] if "acts_as" in s}
                want = {platform: ["as", "did"]}
                if kind == "mtls":
                    want |= {f"{RELEASE}-{s}.{NAMESPACE}.svc": [s] for s in ["as", "did"] if values[s]["enabled"]}
                check(f"{name} grants reserved aliases to their services only", grants == want, str(grants))
            keks = config["kms"]["providers"][0]["keks"]
            check(f"{name} reads its KEKs from files", all(k["key_file"].startswith("/var/run/secrets/edk/keks/") and "key" not in k for k in keks))
        elif component in RUNTIME:
            kms = config["kms"]
            check(f"{name} uses the remote KMS", kms["mode"] == "remote" and kms["endpoint"].endswith(f"{RELEASE}-kms.{NAMESPACE}.svc:{values['kms']['grpcPort']}"), kms["endpoint"])
            tls = values["kmsAuth"]["tls"] or values["kmsAuth"]["mode"] == "mtls"
            check(f"{name} reaches the KMS over {'https' if tls else 'http'}", kms["endpoint"].startswith("https://" if tls else "http://"))
            want = "mtls" if values["kmsAuth"]["mode"] == "mtls" else "service_jwt"
            check(f"{name} authenticates by {want}", kms["auth"]["kind"] == want)
            if want == "service_jwt":
                check(f"{name} names itself", kms["auth"]["service"] == component)
        if component == "platform":
            platform = config["platform"]
            check(f"{name} advertises the operator authorization server on the public host",
                  platform["host"] == values["ingress"]["public"]["host"], str(platform))
            # The setup token goes to a writable volume of the platform's pod, not to its
            # read-only root filesystem.
            token_dir = str(Path(platform["setup_token_file"]).parent)
            deployment = [d for d in by_kind.get("Deployment", [])
                          if d["metadata"]["labels"].get("app.kubernetes.io/component") == "platform"][0]
            pod = deployment["spec"]["template"]["spec"]
            mounts = {m["mountPath"]: m for m in pod["containers"][0]["volumeMounts"]}
            volumes = {v["name"]: v for v in pod["volumes"]}
            mount = mounts.get(token_dir)
            check(f"{name} writes the setup token to a writable emptyDir",
                  mount is not None and not mount.get("readOnly", False)
                  and "emptyDir" in volumes.get(mount["name"], {}), str(mount))

    # Certificates exactly when TLS is on.
    tls = values["kmsAuth"]["tls"] or values["kmsAuth"]["mode"] == "mtls"
    certificates = by_kind.get("Certificate", [])
    check(f"{label}: cert-manager certificates iff TLS", bool(certificates) == (tls and not values["allInOne"]["enabled"]))
    for certificate in certificates:
        component = certificate["metadata"]["labels"].get("app.kubernetes.io/component")
        if component is None:
            continue
        serves = component == "kms" or (component == "platform" and bool(directory_clients(values)))
        want = (["server auth"] if serves else []) + (["client auth"] if component != "kms" else [])
        check(f"{label}: the {component} certificate is for {want}", certificate["spec"]["usages"] == want,
              str(certificate["spec"]["usages"]))


def directory_clients(values: dict) -> list[str]:
    """The servers that read the platform's tenant directory."""
    if values["allInOne"]["enabled"] or not values["platform"]["enabled"]:
        return []
    return sorted(s for s in values["directory"]["clients"] if values[s]["enabled"])


def pod_labels(objects: list[dict]) -> dict[str, dict]:
    return {d["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"]: d
            for d in objects if d["kind"] == "Deployment"}


def own_policy(objects: list[dict], component: str) -> dict:
    return [p for p in objects if p["kind"] == "NetworkPolicy"
            and p["spec"]["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/component") == component][0]


def peer_component(peer: dict) -> str | None:
    return peer.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/component")


def check_directory(label: str, objects: list[dict], values: dict) -> None:
    """The platform serves the tenant directory to directory.clients, on a port only they reach."""
    clients = directory_clients(values)
    tls = values["kmsAuth"]["tls"] or values["kmsAuth"]["mode"] == "mtls"
    port = values["platform"]["grpcPort"]
    host = f"{RELEASE}-platform.{NAMESPACE}.svc"
    deployments = pod_labels(objects)
    configs = {c["metadata"]["labels"]["app.kubernetes.io/component"]: yaml.safe_load(c["data"]["config.yaml"])
               for c in objects if c["kind"] == "ConfigMap" and "config.yaml" in c.get("data", {})}
    if "platform" in configs:
        grpc = configs["platform"].get("grpc")
        name = f"{label}: platform configuration"
        if clients:
            check(f"{name} serves the tenant directory on its gRPC port",
                  grpc is not None and grpc["listen"] == f"0.0.0.0:{port}" and grpc["audience"] == values["directory"]["audience"],
                  str(grpc))
            services = grpc["services"] if grpc else []
            check(f"{name} trusts exactly the directory's clients", sorted(s["name"] for s in services) == clients,
                  str([s["name"] for s in services]))
            for service in services:
                check(f"{name} trusts a public key of {service['name']}",
                      bool(service["jwks"]["keys"]) and not any("d" in key for key in service["jwks"]["keys"]))
                trusted = values["directory"]["trustedServices"].get(service["name"]) or values["kms"]["trustedServices"].get(service["name"])
                check(f"{name} limits {service['name']} to the tenants set", service.get("tenants") == trusted.get("tenants"),
                      str(service.get("tenants")))
            check(f"{name} serves the directory over TLS iff the KMS's gRPC uses TLS",
                  grpc is not None and ("tls" in grpc) == tls
                  and (not tls or grpc["tls"] == {"cert_file": "/var/run/secrets/edk/tls/tls.crt",
                                                  "key_file": "/var/run/secrets/edk/tls/tls.key"}), str(grpc and grpc.get("tls")))
            container = deployments["platform"]["spec"]["template"]["spec"]["containers"][0]
            check(f"{label}: the platform pod names its gRPC port",
                  {"name": "grpc", "containerPort": port, "protocol": "TCP"} in container["ports"], str(container["ports"]))
        else:
            check(f"{name} serves no tenant directory", grpc is None, str(grpc))
    for component in ["kms", *DIRECTORY_CLIENTS]:
        if component not in configs:
            continue
        section = configs[component].get("directory")
        name = f"{label}: {component} configuration"
        if component not in clients:
            check(f"{name} reads the platform database, not the directory", section is None, str(section))
            continue
        want = {"endpoint": f"{'https' if tls else 'http'}://{host}:{port}", "service": component,
                "audience": values["directory"]["audience"], "key_file": SERVICE_KEY,
                "token_lifetime_secs": values["directory"]["tokenLifetimeSecs"],
                "cache_ttl_secs": values["directory"]["cacheTtlSecs"], "timeout_millis": values["directory"]["timeoutMillis"]}
        if tls:
            want |= {"server_ca_file": "/var/run/secrets/edk/tls/ca.crt", "server_name": host}
        check(f"{name} reads the platform's tenant directory", section == want, f"{section} != {want}")
        spec = deployments[component]["spec"]["template"]["spec"]
        mounts = {m["name"]: m for m in spec["containers"][0]["volumeMounts"]}
        volumes = {v["name"]: v for v in spec["volumes"]}
        key = volumes.get("service-key", {}).get("secret", {})
        check(f"{label}: the {component} pod mounts its service key for the directory",
              mounts.get("service-key", {}).get("mountPath") == str(Path(SERVICE_KEY).parent)
              and key.get("items") == [{"key": f"{component}-service.jwk", "path": "service.jwk"}], str(key))
    if not values["networkPolicy"]["enabled"]:
        return
    if "platform" in deployments:
        rules = own_policy(objects, "platform")["spec"]["ingress"]
        grpc_rules = [rule for rule in rules if {"port": "grpc", "protocol": "TCP"} in rule.get("ports", [])]
        sources = sorted(peer_component(peer) or "?" for rule in grpc_rules for peer in rule["from"])
        check(f"{label}: only the directory's clients reach the platform's gRPC port", sources == clients, f"{sources} != {clients}")
        check(f"{label}: every ingress rule of the platform names its ports", all(rule.get("ports") for rule in rules))
        check(f"{label}: no ingress controller or other namespace reaches the platform's gRPC port",
              not any("namespaceSelector" in peer or "ipBlock" in peer for rule in grpc_rules for peer in rule["from"]))
    for component in deployments:
        if component in ("platform", "redis"):
            continue
        egress = own_policy(objects, component)["spec"].get("egress", [])
        to_platform = [rule for rule in egress if any(peer_component(peer) == "platform" for peer in rule["to"])]
        if component in clients:
            check(f"{label}: {component} may reach the platform's gRPC port",
                  len(to_platform) == 1 and to_platform[0]["ports"] == [{"port": port, "protocol": "TCP"}], str(to_platform))
        else:
            check(f"{label}: {component} may not reach the platform", not to_platform, str(to_platform))
            open_port = [rule for rule in egress if {"port": port, "protocol": "TCP"} in rule["ports"]
                         and any(peer.get("podSelector") == {} and "namespaceSelector" not in peer for peer in rule["to"])]
            check(f"{label}: {component} has no egress to any pod on the platform's gRPC port", not open_port, str(open_port))


def check_rate_limits(label: str, objects: list[dict], values: dict) -> None:
    """The rate-limited servers carry rate_limits; with Redis on, every one counts there and may reach it, and no
    other pod may."""
    redis = values["redis"]
    internal = redis["enabled"] and redis["internal"]["enabled"]
    external = redis["enabled"] and not redis["internal"]["enabled"]
    deployments = pod_labels(objects)
    configs = {c["metadata"]["labels"]["app.kubernetes.io/component"]: yaml.safe_load(c["data"]["config.yaml"])
               for c in objects if c["kind"] == "ConfigMap" and "config.yaml" in c.get("data", {})}
    in_redis = []
    for component, config in configs.items():
        name = f"{label}: {component} configuration"
        env = {e["name"]: e for e in deployments[component]["spec"]["template"]["spec"]["containers"][0].get("env", [])}
        variable = env.get("EDK_RATE_LIMITS__REDIS__URL")
        section = config.get("rate_limits")
        if component not in RATE_LIMITED:
            check(f"{name} has no rate limits", section is None and variable is None)
            continue
        limits = values["rateLimits"]
        check(f"{name} has the rate limits of the values",
              section is not None and section["limits"] == limits["limits"]
              and section["on_backend_error"] == limits["onBackendError"], str(section))
        header = limits["clientIpHeader"] if component != "edk" else None
        check(f"{name} reads the client address from {header or 'the TCP peer'}",
              section is not None and section.get("client_ip_header") == (header or None), str(section))
        counted = (section or {}).get("redis")
        if internal:
            check(f"{name} counts in the in-chart Redis",
                  counted == {"url": f"redis://{RELEASE}-redis.{NAMESPACE}.svc:{redis['port']}", "key_prefix": redis["keyPrefix"]},
                  str(counted))
            check(f"{label}: {component} has no Redis URL variable", variable is None)
        elif external:
            check(f"{name} counts in Redis, its URL not in the file", counted == {"key_prefix": redis["keyPrefix"]}, str(counted))
            check(f"{label}: {component} reads the Redis URL from the Secret",
                  variable is not None and variable.get("valueFrom", {}).get("secretKeyRef")
                  == {"name": values["secrets"]["existingSecret"], "key": redis["urlSecretKey"]}, str(variable))
        else:
            check(f"{name} counts in the process", counted is None and variable is None, str(counted))
        if counted is not None or variable is not None:
            in_redis.append(component)
    check(f"{label}: an in-chart Redis iff redis.internal", ("redis" in deployments) == internal)
    if not values["networkPolicy"]["enabled"]:
        return
    for component in deployments:
        if component == "redis":
            continue
        egress = own_policy(objects, component)["spec"].get("egress", [])
        to_redis = [rule for rule in egress if rule["ports"] == [{"port": redis["port"], "protocol": "TCP"}]]
        if component in in_redis:
            ok = len(to_redis) == 1
            if ok and internal:
                ok = [peer_component(peer) for peer in to_redis[0]["to"]] == ["redis"]
            elif ok and redis["cidrs"]:
                ok = sorted(peer.get("ipBlock", {}).get("cidr") for peer in to_redis[0]["to"] if "ipBlock" in peer) == sorted(redis["cidrs"])
            check(f"{label}: {component}, counting in Redis, may reach it", ok, str(to_redis))
        else:
            check(f"{label}: {component} may not reach Redis", not to_redis, str(to_redis))
    if internal:
        policy = own_policy(objects, "redis")
        sources = sorted(peer_component(peer) or "?" for rule in policy["spec"]["ingress"] for peer in rule["from"])
        check(f"{label}: only the servers counting in Redis reach the in-chart Redis", sources == sorted(in_redis),
              f"{sources} != {sorted(in_redis)}")
        check(f"{label}: the in-chart Redis takes its port only and reaches nothing",
              all(rule["ports"] == [{"port": "redis", "protocol": "TCP"}] for rule in policy["spec"]["ingress"])
              and policy["spec"]["egress"] == [] and sorted(policy["spec"]["policyTypes"]) == ["Egress", "Ingress"])


def check_otlp(label: str, objects: list[dict], values: dict) -> None:
    """Trace export reaches every server exactly when observability.otlp.endpoint is set."""
    otlp = values["observability"]["otlp"]
    on = bool(otlp["endpoint"])
    headers = on and bool(otlp["headersSecret"]["name"])
    configs = [c for c in objects if c["kind"] == "ConfigMap"
               and c["metadata"]["labels"].get("app.kubernetes.io/component") in CONFIG_SECTIONS]
    deployments = [d for d in objects if d["kind"] == "Deployment"]
    servers = sorted(c["metadata"]["labels"]["app.kubernetes.io/component"] for c in configs)
    enabled = (["edk"] if values["allInOne"]["enabled"]
               else sorted(s for s in ["kms", *RUNTIME] if values[s]["enabled"]))
    check(f"{label}: a configuration per server", servers == enabled, str(servers))
    for config_map in configs:
        component = config_map["metadata"]["labels"]["app.kubernetes.io/component"]
        config = yaml.safe_load(config_map["data"]["config.yaml"])
        name = f"{label}: {component} configuration"
        section = config.get("observability", {}).get("otlp")
        if on:
            check(f"{name} exports to the OTLP endpoint",
                  section is not None and section["endpoint"] == otlp["endpoint"], str(section))
            check(f"{name} samples and times out as set",
                  section is not None and section["sample_ratio"] == otlp["sampleRatio"]
                  and section["timeout_ms"] == otlp["timeoutMs"] and section["filter"] == otlp["filter"],
                  str(section))
            check(f"{name} holds no export header", "headers" not in str(section) and "otlp-auth" not in config_map["data"]["config.yaml"])
        else:
            check(f"{name} exports no traces", "observability" not in config, str(config.get("observability")))
    for deployment in deployments:
        name = f"{label}: Deployment {deployment['metadata']['name']}"
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e for e in container.get("env", [])}
        variable = env.get("OTEL_EXPORTER_OTLP_HEADERS")
        if headers:
            check(f"{name} reads the export headers from their Secret",
                  variable is not None and variable.get("valueFrom", {}).get("secretKeyRef")
                  == {"name": otlp["headersSecret"]["name"], "key": otlp["headersSecret"]["key"]}, str(variable))
        else:
            check(f"{name} has no export headers", variable is None)
    if not values["networkPolicy"]["enabled"]:
        return
    for policy in objects:
        if policy["kind"] != "NetworkPolicy" or policy["metadata"]["name"].endswith("-default-deny"):
            continue
        to_collector = [rule for rule in policy["spec"].get("egress", [])
                        if rule["ports"] == [{"port": otlp["collector"]["port"], "protocol": "TCP"}]
                        and any(peer.get("podSelector") == (otlp["collector"]["podSelector"] or {}) for peer in rule["to"])]
        name = f"{label}: NetworkPolicy {policy['metadata']['name']}"
        if on:
            check(f"{name} lets the pod reach the collector", len(to_collector) == 1, str(policy["spec"].get("egress")))
        else:
            check(f"{name} opens nothing to a collector", not to_collector)


def check_production(objects: list[dict], values: dict) -> None:
    label = "values-prod.yaml"
    hpas = {h["spec"]["scaleTargetRef"]["name"]: h for h in objects if h["kind"] == "HorizontalPodAutoscaler"}
    pdbs = {p["metadata"]["name"] for p in objects if p["kind"] == "PodDisruptionBudget"}
    for deployment in (d for d in objects if d["kind"] == "Deployment"):
        name = deployment["metadata"]["name"]
        hpa = hpas.get(name)
        check(f"{label}: {name} autoscales from at least 3 replicas", hpa is not None and hpa["spec"]["minReplicas"] >= 3)
        check(f"{label}: {name} has a PodDisruptionBudget", name in pdbs)
        if name != f"{RELEASE}-kms":
            check(f"{label}: {name} scales on CPU and requests per second",
                  hpa is not None and sorted(m["type"] for m in hpa["spec"]["metrics"]) == ["Pods", "Resource"])
        env = {e["name"] for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
        for tenant in values["database"]["dedicated"]:
            check(f"{label}: {name} knows the dedicated database of {tenant}", f"EDK_DATABASE__DEDICATED__{tenant}" in env)
        resources = deployment["spec"]["template"]["spec"]["containers"][0]["resources"]
        check(f"{label}: {name} has the API baseline resources",
              resources == {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"cpu": "2", "memory": "1536Mi"}}, str(resources))
    check(f"{label}: the runtime servers read the platform's tenant directory",
          sorted(values["directory"]["clients"]) == ["as", "did", "issuer", "verifier"], str(values["directory"]["clients"]))
    check(f"{label}: the rate-limit counters are shared in Redis", values["redis"]["enabled"])
    kinds = {o["kind"] for o in objects}
    for kind in ("Cluster", "ExternalSecret", "ServiceMonitor"):
        check(f"{label}: renders a {kind}", kind in kinds)
    dashboard = [o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-dashboard")]
    check(f"{label}: renders the Grafana dashboard", len(dashboard) == 1 and '"uid": "edk-overview"' in dashboard[0]["data"]["edk.json"])


def check_refused(chart: helm.Chart, base: dict) -> None:
    bad = [
        ({"kms": {"replicas": 0}}, "/kms/replicas"),
        ({"securityContext": {"readOnlyRootFilesystem": False}}, "/securityContext/readOnlyRootFilesystem"),
        ({"podSecurityContext": {"runAsNonRoot": False}}, "/podSecurityContext/runAsNonRoot"),
        ({"securityContext": {"capabilities": {"drop": ["ALL"], "add": ["NET_ADMIN"]}}}, "/securityContext/capabilities/add"),
        ({"kmsAuth": {"mode": "tls"}}, "/kmsAuth/mode"),
        ({"as": {"publicPaths": ["/api/oauth2/v1"]}}, "/as/publicPaths/0"),
        ({"issuer": {"publicPaths": ["/"]}}, "/issuer/publicPaths/0"),
        ({"did": {"publicPaths": ["/metrics"]}}, "/did/publicPaths/0"),
        ({"verifier": {"publicPaths": ["/api/oid4vp/v1"]}}, "/verifier/publicPaths/0"),
        ({"verifier": {"replicas": 0}}, "/verifier/replicas"),
        ({"platform": {"publicPaths": ["/api/platform/v1"]}}, "/platform/publicPaths/0"),
        ({"platform": {"replicas": 0}}, "/platform/replicas"),
        ({"database": {"backend": "sqlite"}}, "/database/backend"),
        ({"database": {"dedicated": {"acme": "dedicated-acme"}}}, "/database/dedicated"),
        ({"kms": {"resources": {"requests": {"cpu": "lots"}}}}, "/kms/resources/requests/cpu"),
        ({"kms": {"softwareKeys": {"currentKek": "k1", "keks": []}}}, "/kms/softwareKeys/keks"),
        ({"adminAuth": {"issuers": [{"issuer": "https://ops.example", "jwks_uri": "http://ops.example/jwks"}]}}, "/adminAuth/issuers/0/jwks_uri"),
        ({"kms": {"replica": 3}}, "/kms"),
        ({"ingres": {}}, ""),
        ({"observability": {"otlp": {"sampleRatio": 1.5}}}, "/observability/otlp/sampleRatio"),
        ({"observability": {"otlp": {"endpoint": "https://collector:4317"}}}, "/observability/otlp/endpoint"),
        ({"observability": {"otlp": {"endpoint": "http://user:secret@collector:4317"}}}, "/observability/otlp/endpoint"),
        ({"observability": {"otlp": {"headers": "api-key=1"}}}, "/observability/otlp"),
        ({"rateLimits": {"limits": {"per_ip": {"requests": 0, "window_secs": 60}}}}, "/rateLimits/limits/per_ip/requests"),
        ({"rateLimits": {"limits": {"per_ip": {"requests": 10, "window_secs": "1m"}}}}, "/rateLimits/limits/per_ip/window_secs"),
        ({"rateLimits": {"limits": {"per_user": {"requests": 10, "window_secs": 60}}}}, "/rateLimits/limits"),
        ({"rateLimits": {"onBackendError": "ignore"}}, "/rateLimits/onBackendError"),
        ({"redis": {"url": "redis://:secret@redis:6379"}}, "/redis"),
        ({"redis": {"internal": {"enabled": True, "maxMemory": "lots"}}}, "/redis/internal/maxMemory"),
        ({"directory": {"clients": ["platform"]}}, "/directory/clients/0"),
        ({"directory": {"clients": ["kms"]}}, "/directory/clients/0"),
        ({"directory": {"clients": ["as", "as"]}}, "/directory/clients"),
        ({"directory": {"tokenLifetimeSecs": 0}}, "/directory/tokenLifetimeSecs"),
        ({"directory": {"trustedServices": {"as": {"jwks": {"keys": [{"kty": "RSA"}]}}}}}, "/directory/trustedServices/as/jwks/keys/0/kty"),
        ({"platform": {"grpcPort": 0}}, "/platform/grpcPort"),
    ]
    for overlay, where in bad:
        try:
            chart.render(merge(base, overlay), name=RELEASE, namespace=NAMESPACE)
            check(f"schema refuses {overlay}", False, "rendered")
        except helm.HelmValuesError as err:
            check(f"schema refuses {overlay} at '{where}'", f"at '{where}'" in str(err), str(err))
    # Refused by the templates: combinations the schema cannot express.
    for overlay, message in [
        ({"allInOne": {"enabled": True}}, "allInOne.enabled runs every server in one pod"),
        ({"kms": {"enabled": False}}, "the runtime servers and the platform (as, did, issuer, verifier, platform) need the KMS"),
        ({"directory": {"clients": ["as"]}, "platform": {"enabled": False}}, "set platform.enabled: true"),
        ({"directory": {"clients": ["did"]}, "kms": {"trustedServices": {"did": {"jwks": {"keys": []}}}}},
         "directory.trustedServices.did (or kms.trustedServices.did) must hold"),
    ]:
        try:
            chart.render(merge(base, overlay), name=RELEASE, namespace=NAMESPACE)
            check(f"templates refuse {overlay}", False, "rendered")
        except helm.HelmRenderError as err:
            check(f"templates refuse {overlay}", message in str(err), str(err))


def main() -> int:
    chart = helm.Chart.load(CHART)
    base = load("values.yaml")
    all_in_one = {"kms": {"enabled": False}, "as": {"enabled": False}, "did": {"enabled": False},
                  "issuer": {"enabled": False}, "verifier": {"enabled": False},
                  "platform": {"enabled": False}, "allInOne": {"enabled": True}}
    variants = {
        "values.yaml": [],
        "values-prod.yaml": ["values-prod.yaml"],
        "values-mtls.yaml": ["values-mtls.yaml"],
        "values-prod.yaml + values-mtls.yaml": ["values-prod.yaml", "values-mtls.yaml"],
        "all-in-one": [all_in_one],
        "values.yaml + OTLP": [OTLP],
        "values-prod.yaml + values-mtls.yaml + OTLP": ["values-prod.yaml", "values-mtls.yaml", OTLP],
        "all-in-one + OTLP": [all_in_one, OTLP],
        "values.yaml + directory + in-chart Redis": [DIRECTORY_AND_REDIS],
        "values-mtls.yaml + directory + in-chart Redis": ["values-mtls.yaml", DIRECTORY_AND_REDIS],
        "all-in-one + in-chart Redis": [all_in_one, REDIS],
        "all-in-one + external Redis + OTLP": [all_in_one, {"redis": {"enabled": True}}, OTLP],
    }
    for label, layers in variants.items():
        values = base
        overlay: dict = {}
        for layer in layers:
            part = load(layer) if isinstance(layer, str) else layer
            values = merge(values, part)
            overlay = merge(overlay, part)
        for layer in layers:
            if isinstance(layer, str):
                report = helm.lint(CHART, overlay, strict=True, kube_version=f"v{KUBE_VERSIONS[0]}")
                problems = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
                check(f"helm lint --strict {label}", not problems, str(problems))
        if not layers:
            report = helm.lint(CHART, None, strict=True, kube_version=f"v{KUBE_VERSIONS[0]}")
            problems = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
            check("helm lint --strict values.yaml", not problems, str(problems))
        objects = render(chart, overlay)
        check_rendering(label, objects, values)
        check_otlp(label, objects, values)
        check_directory(label, objects, values)
        check_rate_limits(label, objects, values)
        if label == "values-prod.yaml":
            check_production(objects, values)
        print(f"rendered {label}: {len(objects)} objects")
    check_refused(chart, {})
    for failure in failures:
        print(f"FAILED {failure}", file=sys.stderr)
    print(f"deploy chart: {passed} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
