"""Offline checks of compose.yaml, run by scripts/test.

Validates compose.yaml against the Compose Specification schema (the copy check-jsonschema
ships, `vendor.compose-spec`), then asserts the topology: every EDK server is built from its
Dockerfile under deploy/docker, runs as uid 10001 on a read-only root filesystem without
capabilities, the KMS publishes no port, the runtime servers publish on loopback only and
reach the KMS with service JWTs and the platform's tenant directory (its unpublished gRPC port)
with the same keys, the platform serves that directory for the audience they name, and every
configuration file and secret it names is provided (configuration files in the repository,
secrets by deploy/compose/init-secrets.sh).

Usage: python deploy/check-compose.py
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
COMPOSE = REPO / "compose.yaml"
SERVERS = {"kms": "edk-kms", "as": "edk-as", "did": "edk-did", "issuer": "edk-issuer",
           "verifier": "edk-verifier", "platform": "edk-platform"}
INIT_SECRETS = REPO / "deploy" / "compose" / "init-secrets.sh"
# The servers that read the platform's tenant directory.
READERS = ["as", "did", "issuer", "verifier"]

passed = 0
failures: list[str] = []


def check(name: str, condition: bool, detail: str = "") -> None:
    global passed
    if condition:
        passed += 1
    else:
        failures.append(f"{name}: {detail}" if detail else name)


def main() -> int:
    schema = subprocess.run(
        [str(Path(sys.executable).parent / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True, text=True, check=False)
    check("compose.yaml is valid against the Compose Specification", schema.returncode == 0, schema.stdout + schema.stderr)

    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    check("compose.yaml runs the split topology", set(SERVERS) | {"postgres"} <= set(services), str(sorted(services)))
    secret_files = {name: spec["file"] for name, spec in compose["secrets"].items()}
    init_text = INIT_SECRETS.read_text()
    for name, binary in SERVERS.items():
        service = services[name]
        label = f"compose service {name}"
        dockerfile = service["build"]["dockerfile"]
        check(f"{label} builds from deploy/docker/{binary}.Dockerfile",
              dockerfile == f"deploy/docker/{binary}.Dockerfile" and (REPO / dockerfile).is_file())
        check(f"{label} runs as 10001", service.get("user") == "10001:10001")
        check(f"{label} has a read-only root filesystem", service.get("read_only") is True)
        check(f"{label} drops every capability", service.get("cap_drop") == ["ALL"])
        check(f"{label} cannot gain privileges", "no-new-privileges:true" in service.get("security_opt", []))
        ports = service.get("ports", [])
        if name == "kms":
            check(f"{label} publishes no port", not ports, str(ports))
        else:
            check(f"{label} publishes on loopback only", bool(ports) and all(p.startswith("127.0.0.1:") for p in ports), str(ports))
        for config in service.get("configs", []):
            path = REPO / compose["configs"][config["source"]]["file"]
            check(f"{label} configuration {path.name} exists", path.is_file())
            if name != "kms":
                loaded = yaml.safe_load(path.read_text())
                kms = loaded["kms"]
                check(f"{label} reaches the KMS over gRPC with a service JWT",
                      kms["mode"] == "remote" and kms["endpoint"] == "http://kms:9090"
                      and kms["auth"] == {"kind": "service_jwt", "service": name, "audience": "edk-kms",
                                          "key_file": "/run/secrets/service.jwk"}, str(kms))
            if name in READERS:
                directory = yaml.safe_load(path.read_text()).get("directory")
                check(f"{label} reads tenants from the platform's tenant directory with its service key",
                      directory == {"endpoint": "http://platform:9090", "service": name, "audience": "edk-platform",
                                    "key_file": "/run/secrets/service.jwk"}, str(directory))
        for secret in service.get("secrets", []):
            file = Path(secret_files[secret["source"]]).name
            check(f"{label} secret {file} is written by init-secrets.sh",
                  secret_files[secret["source"]].startswith("deploy/compose/secrets/") and
                  (file in init_text or file.replace(name, "$service") in init_text), file)
    check("the KMS trusts the audience the runtime servers use",
          yaml.safe_load((REPO / "deploy/compose/kms.yaml").read_text())["grpc"]["auth"]["audience"] == "edk-kms")
    platform = yaml.safe_load((REPO / "deploy/compose/platform.yaml").read_text())
    check("the platform serves the tenant directory on 9090 for the audience the runtime servers use",
          platform.get("grpc") == {"listen": "0.0.0.0:9090", "audience": "edk-platform"}, str(platform.get("grpc")))
    command = services["platform"]["command"]
    check("the platform reads the services its directory trusts from init-secrets.sh's platform-services.yaml",
          command == ["--config", "/etc/edk/platform.yaml,/run/secrets/platform-services.yaml"]
          and {"source": "platform-services", "target": "platform-services.yaml"} in services["platform"]["secrets"]
          and "platform-services.yaml" in init_text, str(command))
    check("the platform publishes its HTTP port only (the directory stays east-west)",
          services["platform"]["ports"] == ["127.0.0.1:8085:8080"], str(services["platform"]["ports"]))

    for failure in failures:
        print(f"FAILED {failure}", file=sys.stderr)
    print(f"deploy compose: {passed} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
