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
collector; without it, none of them. Then wrong values must be refused by the schema, naming
the offending key.

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
    "kms": {"http", "auth", "log", "observability", "database", "kms", "grpc"},
    "as": {"http", "auth", "log", "observability", "database", "kms", "oauth"},
    "did": {"http", "auth", "log", "observability", "database", "kms", "resolver"},
    "issuer": {"http", "auth", "log", "observability", "database", "kms", "oauth", "issuer"},
    "verifier": {"http", "auth", "log", "observability", "database", "kms", "verifier"},
    "platform": {"http", "auth", "log", "observability", "database", "kms", "oauth", "platform"},
    "edk": {"http", "auth", "log", "observability", "database", "kms", "oauth", "local_https", "did_resolver", "issuer"},
}
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
