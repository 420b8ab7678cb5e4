"""Starts the real servers from the configuration files the deployment ships, run by scripts/test.

For the Helm chart (values.yaml with service JWTs, values-mtls.yaml with client certificates
issued by a CA made here as cert-manager would; both with the runtime servers reading the
platform's tenant directory and counting rate limits in the in-chart Redis) and for
compose.yaml, this renders or reads each server's configuration file, points its addresses and
file paths at this machine (loopback ports, the Redis here, a temporary directory for the KEK
and the service keys written by deploy/compose/init-secrets.sh), passes the database URL as the
chart and compose do (`EDK_DATABASE__PLATFORM_URL`), and starts edk-kms, edk-as, edk-did,
edk-issuer, edk-verifier and edk-platform from target/<profile> on a fresh PostgreSQL database.
Every server must answer 200 on /health/ready: the configuration loads, the database is
migrated, and each runtime server's (and the platform's) authenticated Ping reaches the KMS over
gRPC with the key or certificate the KMS trusts. The runtime servers must say they read tenants
from the platform's directory, and the platform that it serves it. A runtime server signing with another service's key must stay
unready (503 naming the `kms` check). The platform must write its first-run setup token
owner-only to the file its configuration names (the chart's emptyDir, compose's volume), and
`POST /api/platform/v1/setup` with that token must create the first operator (201), once. The
servers log at debug level, and no secret (the KEK, the services' private keys, the TLS private
keys, the database password, the setup token, the first operator's client secret) may appear in
their logs.

Usage: python deploy/check-servers.py [profile]      (profile: debug, the default, or release)
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import helm_python as helm
import yaml

REPO = Path(__file__).resolve().parent.parent
CHART = REPO / "deploy" / "helm" / "edk"
SERVERS = {"kms": "edk-kms", "as": "edk-as", "did": "edk-did", "issuer": "edk-issuer",
           "verifier": "edk-verifier", "platform": "edk-platform"}
# The servers that call the KMS over gRPC: the platform, first, as the runtime servers read
# their tenants from its directory and are not ready before it answers, then the runtime servers.
RUNTIME = ["platform", "as", "did", "issuer", "verifier"]
# Where the chart and compose mount the platform's writable volume for its setup token.
PLATFORM_STATE = "/var/lib/edk-platform"
# PostgreSQL here trusts local connections, so the password is not checked: it is there to be
# looked for in the logs.
DATABASE_PASSWORD = "db-password-never-logged"
POSTGRES = f"postgres://postgres:{DATABASE_PASSWORD}@127.0.0.1:5432"
READY_TIMEOUT = 120
# The servers that read the platform's tenant directory in every scenario.
DIRECTORY_CLIENTS = ["as", "did", "issuer", "verifier"]
# The chart's scenarios with the tenant directory and the in-chart Redis, as in production.
CHART_OVERLAY = {"directory": {"clients": DIRECTORY_CLIENTS}, "redis": {"enabled": True, "internal": {"enabled": True}}}

passed = 0
failures: list[str] = []


def check(name: str, condition: bool, detail: str = "") -> None:
    global passed
    if condition:
        passed += 1
        print(f"ok {name}")
    else:
        failures.append(f"{name}: {detail}" if detail else name)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def psql(sql: str) -> None:
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-qAtc", sql],
                   check=True, capture_output=True, text=True)


def ready(port: int) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready", timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()
    except OSError as err:
        return 0, str(err)


def post_json(port: int, path: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(),
                                     headers={"content-type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as err:
        text = err.read()
        try:
            return err.code, json.loads(text)
        except ValueError:
            return err.code, {"body": text.decode(errors="replace")}


class Servers:
    """The processes of one scenario; stopped (SIGTERM, then SIGKILL) when it ends."""

    def __init__(self, binaries: Path, work: Path, database_url: str) -> None:
        self.binaries, self.work, self.database_url = binaries, work, database_url
        self.processes: list[tuple[str, subprocess.Popen]] = []
        self.started: list[tuple[str, int]] = []

    def start(self, label: str, server: str, config: dict, extra_files: list[Path] = ()) -> int:
        port = free_port()
        config = json.loads(json.dumps(config))
        config.setdefault("http", {})["listen"] = f"127.0.0.1:{port}"
        path = self.work / f"{label}.yaml"
        path.write_text(yaml.safe_dump(config))
        files = ",".join(str(p) for p in [path, *extra_files])
        env = {k: v for k, v in os.environ.items() if not k.startswith("EDK_")}
        env.update({"EDK_DATABASE__PLATFORM_URL": self.database_url, "EDK_LOG__JSON": "true",
                    "EDK_LOG__FILTER": "debug"})
        log = open(self.work / f"{label}.log", "w")
        process = subprocess.Popen([str(self.binaries / SERVERS[server]), "--config", files],
                                   env=env, stdout=log, stderr=subprocess.STDOUT)
        self.processes.append((label, process))
        self.started.append((label, port))
        return port

    def wait_ready(self, label: str, port: int) -> tuple[int, str]:
        deadline = time.monotonic() + READY_TIMEOUT
        status, body = 0, ""
        while time.monotonic() < deadline:
            status, body = ready(port)
            if status == 200:
                break
            process = dict(self.processes)[label]
            if process.poll() is not None:
                return -1, (self.work / f"{label}.log").read_text()[-2000:]
            time.sleep(0.5)
        return status, body

    def stop(self) -> None:
        for _, process in self.processes:
            process.terminate()
        for _, process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()


def relocate(value, moves: dict[str, str]):
    """Rewrites the in-container paths of a configuration to their copies on this machine."""
    if isinstance(value, dict):
        return {k: relocate(v, moves) for k, v in value.items()}
    if isinstance(value, list):
        return [relocate(v, moves) for v in value]
    if isinstance(value, str):
        for old, new in moves.items():
            if value.startswith(old):
                return new + value[len(old):]
    return value


def first_run_setup(label: str, port: int, config: dict, logged_secrets: dict[str, str]) -> None:
    """The platform's first-run setup as an operator runs it: the token from the file the
    configuration names, posted to the setup API, which then stays closed."""
    token_file = Path(config["platform"]["setup_token_file"])
    check(f"{label}: edk-platform writes the setup token to its volume", token_file.is_file(), str(token_file))
    if not token_file.is_file():
        return
    check(f"{label}: the setup token file is owner-only", token_file.stat().st_mode & 0o777 == 0o600,
          oct(token_file.stat().st_mode))
    token = token_file.read_text().strip()
    logged_secrets[f"{label} setup token"] = token
    status, body = post_json(port, "/api/platform/v1/setup", {"setup_token": token, "client_name": "automation"})
    check(f"{label}: first-run setup with the token creates the first operator (201)",
          status == 201 and bool(body.get("client_id")) and bool(body.get("client_secret")), f"{status} {body}")
    if body.get("client_secret"):
        logged_secrets[f"{label} operator client secret"] = body["client_secret"]
    issuer = body.get("issuer", "")
    check(f"{label}: the operator authorization server is under /operators on the platform host",
          issuer.endswith(f"{config['platform']['host']}{':' + str(config['platform']['port']) if config['platform'].get('port') else ''}/operators"),
          issuer)
    status, body = post_json(port, "/api/platform/v1/setup", {"setup_token": token, "client_name": "again"})
    check(f"{label}: the setup token works once (403 after)", status == 403, f"{status} {body}")
    admin_console(label, port, issuer)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    """Leaves redirects to the caller."""

    def redirect_request(self, *args, **kwargs):  # noqa: ANN002, ANN003
        return None


def admin_console(label: str, port: int, issuer: str) -> None:
    """The admin console is served with its Content-Security-Policy, and its sign-in goes to
    the operator authorization server with PKCE and the console's registered redirect URI."""
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(f"http://127.0.0.1:{port}/admin-console/", timeout=10) as answer:
            status, csp = answer.status, answer.headers.get("content-security-policy", "")
    except urllib.error.HTTPError as err:
        status, csp = err.code, ""
    check(f"{label}: the admin console's sign-in page is served with its CSP",
          status == 200 and csp.startswith("default-src 'none'"), f"{status} {csp}")
    try:
        with opener.open(f"http://127.0.0.1:{port}/admin-console/login", timeout=10) as answer:
            status, location = answer.status, answer.headers.get("location", "")
    except urllib.error.HTTPError as err:
        status, location = err.code, err.headers.get("location", "")
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
    origin = issuer.removesuffix("/operators")
    check(f"{label}: the admin console signs in at the operator authorization server with PKCE",
          status == 303 and location.startswith(f"{issuer}/authorize?")
          and query.get("code_challenge_method") == ["S256"]
          and query.get("redirect_uri") == [f"{origin}/admin-console/callback"], f"{status} {location}")


def run_topology(label: str, servers: Servers, configs: dict[str, dict], extra: dict[str, list[Path]], impostor,
                 logged_secrets: dict[str, str]) -> None:
    """Starts the KMS, then the platform and each runtime server (with the further
    configuration files of `extra`), and waits for each to be ready, and runs the platform's
    first-run setup; then, with `impostor`, one more runtime server made by it from the DID
    server's configuration, which the KMS must refuse."""
    grpc_port = free_port()
    directory_port = free_port()
    kms_config = configs["kms"]
    kms_config["grpc"]["listen"] = f"127.0.0.1:{grpc_port}"
    if "grpc" in configs["platform"]:
        configs["platform"]["grpc"]["listen"] = f"127.0.0.1:{directory_port}"
    port = servers.start(f"{label}-kms", "kms", kms_config, extra.get("kms", []))
    status, body = servers.wait_ready(f"{label}-kms", port)
    check(f"{label}: edk-kms is ready from its configuration", status == 200, f"{status} {body}")
    if status != 200:
        return
    auth = configs["as"]["kms"]["auth"]["kind"]

    def to_kms(config: dict) -> dict:
        """The KMS's and the platform's gRPC listeners on this machine."""
        scheme = config["kms"]["endpoint"].split("://")[0]
        config["kms"]["endpoint"] = f"{scheme}://127.0.0.1:{grpc_port}"
        if "directory" in config:
            scheme = config["directory"]["endpoint"].split("://")[0]
            config["directory"]["endpoint"] = f"{scheme}://127.0.0.1:{directory_port}"
        return config

    for server in RUNTIME:
        if server == "platform":
            Path(configs[server]["platform"]["setup_token_file"]).unlink(missing_ok=True)
        port = servers.start(f"{label}-{server}", server, to_kms(configs[server]), extra.get(server, []))
        status, body = servers.wait_ready(f"{label}-{server}", port)
        check(f"{label}: {SERVERS[server]} is ready and reaches the KMS ({auth})", status == 200, f"{status} {body}")
        if server == "platform" and status == 200:
            first_run_setup(label, port, configs[server], logged_secrets)
    if impostor is None:
        return
    port = servers.start(f"{label}-impostor", "did", to_kms(impostor(json.loads(json.dumps(configs["did"])))))
    deadline = time.monotonic() + 30
    status, body = 0, ""
    while time.monotonic() < deadline:
        status, body = ready(port)
        if status == 503:
            break
        time.sleep(0.5)
    check(f"{label}: a server the KMS does not trust stays unready (503 naming the kms check)",
          status == 503 and "kms" in body, f"{status} {body}")


def issue_certificates(directory: Path, names: dict[str, str]) -> None:
    """A CA and, per server, a certificate for its Service's DNS name in <server>/tls.crt,
    tls.key (PKCS#8) and ca.crt: the files of a cert-manager certificate secret."""
    directory.mkdir()
    ca_key, ca_crt = directory / "ca.key", directory / "ca.crt"
    run = lambda *args: subprocess.run(args, check=True, capture_output=True)
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", str(ca_key), "-out", str(ca_crt), "-days", "2", "-subj", "/CN=edk check CA",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    for server, dns in names.items():
        out = directory / server
        out.mkdir()
        # The platform is a KMS client and serves the tenant directory.
        usage = {"kms": "serverAuth", "platform": "serverAuth,clientAuth"}.get(server, "clientAuth")
        run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", str(out / "tls.key"), "-out", str(out / "tls.csr"), "-subj", f"/CN={dns}")
        (out / "ext.cnf").write_text(f"subjectAltName=DNS:{dns}\nextendedKeyUsage={usage}\n"
                                     "keyUsage=critical,digitalSignature\nbasicConstraints=CA:FALSE\n")
        run("openssl", "x509", "-req", "-in", str(out / "tls.csr"), "-CA", str(ca_crt), "-CAkey", str(ca_key),
            "-CAcreateserial", "-out", str(out / "tls.crt"), "-days", "2", "-extfile", str(out / "ext.cnf"))
        (out / "ca.crt").write_text(ca_crt.read_text())


def secret_values(secrets: Path, tls: Path) -> dict[str, str]:
    """What must never be logged: the KEK, the services' private keys, the TLS private keys
    and the database password."""
    values = {"KEK": (secrets / "kek-k1").read_text().strip(), "database password": DATABASE_PASSWORD}
    for server in RUNTIME:
        values[f"{server} service key"] = json.loads((secrets / f"{server}-service.jwk").read_text())["d"]
    for key in sorted(tls.glob("*/tls.key")):
        body = "".join(line for line in key.read_text().splitlines() if not line.startswith("-----"))
        values[f"{key.parent.name} TLS key"] = body[16:64]
    return values


def chart_configs(values: dict, moves_of) -> dict[str, dict]:
    """Each server's configuration file as the chart renders it, with its paths moved."""
    manifests = helm.Chart.load(CHART).render(values, name="edk", namespace="edk")
    configs = {}
    for path, text in manifests.items():
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc and doc.get("kind") == "ConfigMap" and "config.yaml" in doc.get("data", {}):
                component = doc["metadata"]["labels"]["app.kubernetes.io/component"]
                configs[component] = relocate(yaml.safe_load(doc["data"]["config.yaml"]), moves_of(component))
    return configs


def main() -> int:
    profile = sys.argv[1] if len(sys.argv) > 1 else "debug"
    binaries = REPO / "target" / profile
    missing = [b for b in SERVERS.values() if not (binaries / b).is_file()]
    if missing:
        print(f"deploy servers: {', '.join(missing)} not built under target/{profile}: skipped")
        return 0
    with tempfile.TemporaryDirectory(prefix="edk-deploy-") as tmp:
        work = Path(tmp)
        secrets = work / "secrets"
        subprocess.run([str(REPO / "deploy/compose/init-secrets.sh"), str(secrets)], check=True, capture_output=True)
        keks = work / "keks"
        keks.mkdir()
        (keks / "kek-k1").write_text((secrets / "kek-k1").read_text())
        for server in RUNTIME:
            (work / f"service-{server}").mkdir()
            (work / f"service-{server}" / "service.jwk").write_text((secrets / f"{server}-service.jwk").read_text())
        # The platform's writable volume, owner-only as the platform creates its files.
        platform_state = work / "platform-state"
        platform_state.mkdir(mode=0o700)
        tls = work / "tls"
        names = {server: f"edk-{server}.edk.svc" for server in SERVERS}
        # A certificate from the cluster CA for a name the KMS's allow list does not name.
        names["rogue"] = "edk-rogue.edk.svc"
        issue_certificates(tls, names)

        def moves(component: str) -> dict[str, str]:
            return {"/var/run/secrets/edk/keks": str(keks),
                    "/var/run/secrets/edk/service": str(work / f"service-{component}"),
                    "/var/run/secrets/edk/tls": str(tls / component),
                    PLATFORM_STATE: str(platform_state),
                    "redis://edk-redis.edk.svc:6379": "redis://127.0.0.1:6379"}

        trusted = yaml.safe_load((secrets / "values-trusted-services.yaml").read_text())
        mtls = yaml.safe_load((CHART / "values-mtls.yaml").read_text())
        # The tenant directory trusts the keys of kms.trustedServices, in either mode.
        chart_values = trusted | CHART_OVERLAY
        mtls_values = mtls | trusted | CHART_OVERLAY

        def signs_as_issuer(config: dict) -> dict:
            config["kms"]["auth"]["key_file"] = str(work / "service-issuer" / "service.jwk")
            return config

        def presents_a_rogue_certificate(config: dict) -> dict:
            return json.loads(json.dumps(config).replace(str(tls / "did"), str(tls / "rogue")))

        compose_configs = {}
        for server in SERVERS:
            config = yaml.safe_load((REPO / f"deploy/compose/{server}.yaml").read_text())
            compose_moves = {"/run/secrets/kek-k1": str(secrets / "kek-k1"), PLATFORM_STATE: str(platform_state)}
            if server in RUNTIME:
                compose_moves["/run/secrets/service.jwk"] = str(secrets / f"{server}-service.jwk")
            compose_configs[server] = relocate(config, compose_moves)

        scenarios = [
            ("chart values.yaml", chart_configs(chart_values, moves), {}, signs_as_issuer),
            ("chart values-mtls.yaml", chart_configs(mtls_values, moves), {}, presents_a_rogue_certificate),
            ("compose.yaml", compose_configs,
             {"kms": [secrets / "kms-services.yaml"], "platform": [secrets / "platform-services.yaml"]}, signs_as_issuer),
        ]
        for label, configs, extra, impostor in scenarios:
            database = f"edk_deploy_{uuid.uuid4().hex[:12]}"
            psql(f"CREATE DATABASE {database}")
            servers = Servers(binaries, work, f"{POSTGRES}/{database}")
            logged_secrets: dict[str, str] = {}
            try:
                run_topology(label, servers, configs, extra, impostor, logged_secrets)
            finally:
                servers.stop()
                psql(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
            logs = "".join((work / f"{name}.log").read_text() for name, _ in servers.started)
            check(f"{label}: the servers logged at debug level", '"level":"DEBUG"' in logs)
            started = {name for name, _ in servers.started}
            if f"{label}-platform" in started:
                log = (work / f"{label}-platform.log").read_text()
                check(f"{label}: edk-platform serves the tenant directory", "serving the tenant directory over gRPC" in log)
            for server in DIRECTORY_CLIENTS:
                if f"{label}-{server}" in started:
                    log = (work / f"{label}-{server}.log").read_text()
                    check(f"{label}: {SERVERS[server]} reads tenants from the platform's tenant directory",
                          "tenants are read from the platform's directory service" in log)
            leaked = [name for name, secret in (secret_values(secrets, tls) | logged_secrets).items() if secret in logs]
            check(f"{label}: no secret in the debug logs", not leaked, f"found {leaked}")

    for failure in failures:
        print(f"FAILED {failure}", file=sys.stderr)
    print(f"deploy servers: {passed} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
