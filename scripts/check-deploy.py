#!/usr/bin/env python3
"""Check the deployment files that cannot be exercised here (no registry,
no cluster): the Dockerfile builds the server in a separate stage and runs
it as a non-root user; the Kubernetes manifests parse, probe the health
endpoints, set resource limits, run as non-root on a read-only root
filesystem and take secrets only from Secrets; the GitHub workflow runs
.ci/run. Exits non-zero with one line per problem."""
import pathlib
import re
import sys

try:
    import yaml
except ImportError:  # a fresh machine: PyPI is reachable
    import subprocess
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--user", "pyyaml"], check=True)
    import site
    sys.path.append(site.getusersitepackages())
    import yaml

root = pathlib.Path(__file__).resolve().parent.parent
problems = []


def need(condition, message):
    if not condition:
        problems.append(message)


dockerfile = (root / "deploy/Dockerfile").read_text()
stages = re.findall(r"^FROM\s+\S+", dockerfile, re.M)
need(len(stages) >= 2, "Dockerfile: expected a multi-stage build")
users = re.findall(r"^USER\s+(\S+)", dockerfile, re.M)
need(users and users[-1].split(":")[0] not in ("0", "root"), "Dockerfile: the final stage must set a non-root USER")
need("--locked" in dockerfile, "Dockerfile: cargo build must be --locked")
need(not re.search(r"(?i)(password|token|secret)\s*=", dockerfile), "Dockerfile: no secrets in ENV/ARG")

docs = [d for d in yaml.safe_load_all((root / "deploy/k8s/docaiche.yaml").read_text()) if d]
kinds = {d["kind"] for d in docs}
need({"Deployment", "Service", "ConfigMap"} <= kinds, f"k8s: missing kinds, have {sorted(kinds)}")
for doc in docs:
    if doc["kind"] == "ConfigMap":
        for key in doc.get("data", {}):
            need(not re.search(r"(?i)(password|token|secret_value|url$)", key) or key.endswith("_SOURCE"),
                 f"k8s: ConfigMap key {key} looks secret; use a Secret")
    if doc["kind"] != "Deployment":
        continue
    pod = doc["spec"]["template"]["spec"]
    need(pod.get("securityContext", {}).get("runAsNonRoot") is True, "k8s: pod must runAsNonRoot")
    for c in pod["containers"]:
        name = c["name"]
        need(c.get("livenessProbe", {}).get("httpGet", {}).get("path") == "/health/live", f"k8s: {name} liveness probe on /health/live")
        need(c.get("readinessProbe", {}).get("httpGet", {}).get("path") == "/health/ready", f"k8s: {name} readiness probe on /health/ready")
        limits = c.get("resources", {}).get("limits", {})
        need("cpu" in limits and "memory" in limits, f"k8s: {name} needs cpu and memory limits")
        sc = c.get("securityContext", {})
        need(sc.get("readOnlyRootFilesystem") is True, f"k8s: {name} readOnlyRootFilesystem")
        need(sc.get("allowPrivilegeEscalation") is False, f"k8s: {name} allowPrivilegeEscalation false")
        for env in c.get("env", []):
            need("value" not in env or not re.search(r"(?i)(token|password|url|secret)", env["name"]),
                 f"k8s: {name} env {env['name']} must come from a Secret")

workflow = yaml.safe_load((root / ".github/workflows/ci.yml").read_text())
steps = [s for job in workflow["jobs"].values() for s in job["steps"]]
need(any(s.get("run", "").strip() == ".ci/run" for s in steps), "workflow: a step must run .ci/run")

for problem in problems:
    print(f"check-deploy: {problem}", file=sys.stderr)
sys.exit(1 if problems else 0)
