"""deploy/kubernetes: every manifest passes Kubernetes' own schemas (kubernetes-validate, which
bundles them, strict: no unknown field), each kustomization lists its directory, and the
manifests agree with the product: real STREAMS_* settings, secrets only as files, probes on
the health endpoints, state on the claim, non-root with a read-only root, the Operator's
objects selecting what exists and carrying prometheus/alerts.yml unchanged."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from streams.config import SECRET_FIELDS, Settings

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy" / "kubernetes"
# the oldest Kubernetes docs/deploy.md names, and the newest the validator knows
VERSIONS = ("1.30.0", "1.37.0")
OPERATOR_KINDS = {"ServiceMonitor", "PrometheusRule"}  # CRDs: checked below, not by schema
MANIFESTS = sorted(p for p in DEPLOY.rglob("*.yaml") if p.name != "kustomization.yaml")


def docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def objects() -> dict[tuple[str, str], dict[str, Any]]:
    return {(d["kind"], d["metadata"]["name"]): d for p in MANIFESTS for d in docs(p)}


def statefulset() -> dict[str, Any]:
    return objects()[("StatefulSet", "vc-ct-streams")]


def worker() -> dict[str, Any]:
    (c,) = statefulset()["spec"]["template"]["spec"]["containers"]
    return c


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_manifest_passes_kubernetes_schemas(path: Path, version: str) -> None:
    for d in docs(path):
        if d["kind"] in OPERATOR_KINDS:
            assert d["apiVersion"] == "monitoring.coreos.com/v1"
            continue
        try:
            kubernetes_validate.validate(d, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            pytest.fail(f"{path.name} {d['kind']}: {e.message} at {list(e.path)}")


def test_the_validator_rejects_a_broken_manifest() -> None:
    bad = statefulset()
    bad["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["paht"] = "/"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, VERSIONS[-1], strict=True)


@pytest.mark.parametrize("kustomization", sorted(DEPLOY.rglob("kustomization.yaml")),
                         ids=lambda p: p.parent.name)  # fmt: skip
def test_each_kustomization_lists_its_directory(kustomization: Path) -> None:
    listed = yaml.safe_load(kustomization.read_text())["resources"]
    present = sorted(p.name for p in kustomization.parent.glob("*.yaml") if p != kustomization)
    assert sorted(listed) == present


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (with kustomize) absent")
@pytest.mark.parametrize("part", ["worker", "monitoring"])
def test_kustomize_renders_valid_objects(part: str) -> None:
    out = subprocess.run(["kubectl", "kustomize", str(DEPLOY / part)],
                         capture_output=True, text=True, check=True)  # fmt: skip
    rendered = [d for d in yaml.safe_load_all(out.stdout) if d]
    listed = yaml.safe_load((DEPLOY / part / "kustomization.yaml").read_text())["resources"]
    assert len(rendered) == len(listed)
    for d in rendered:
        assert d["metadata"]["labels"]["app.kubernetes.io/part-of"] == "vc-ct-streams"
        if d["kind"] not in OPERATOR_KINDS:
            kubernetes_validate.validate(d, VERSIONS[-1], strict=True)
        if d["kind"] == "StatefulSet":
            image = d["spec"]["template"]["spec"]["containers"][0]["image"]
            assert image == "registry.example.com/vc-ct-streams:0.1.0"


def setting_of(env_name: str) -> str:
    """The Settings field an environment variable sets (``..._FILE`` for secrets)."""
    assert env_name.startswith("STREAMS_"), env_name
    name = env_name.removeprefix("STREAMS_").lower()
    if name.endswith("_file") and name.removesuffix("_file") in SECRET_FIELDS:
        return name.removesuffix("_file")
    return name


def test_every_streams_variable_is_a_real_setting_and_secrets_are_files() -> None:
    fields = set(Settings.model_fields)
    config = objects()[("ConfigMap", "vc-ct-streams-config")]["data"]
    env = {e["name"]: e for e in worker()["env"]}
    names = [*config, *(n for n in env if n.startswith("STREAMS_"))]
    assert [n for n in names if setting_of(n) not in fields] == []
    # no secret as a value: each is a _FILE under the secret's mount
    assert [n for n in names if setting_of(n) in SECRET_FIELDS and not n.endswith("_FILE")] == []
    mounts = {m["name"]: m["mountPath"] for m in worker()["volumeMounts"]}
    for field in SECRET_FIELDS:
        path = env[f"STREAMS_{field.upper()}_FILE"]["value"]
        assert path.startswith(mounts["secrets"] + "/"), path
    # the config map's values parse as the worker would parse them (with the secrets the
    # pod reads from its files)
    secrets = {field: "from-a-file" for field in SECRET_FIELDS}
    Settings.model_validate({**secrets, **{setting_of(k): v for k, v in config.items()}})


def test_state_lives_on_the_claim_and_the_address_is_stable() -> None:
    sts = statefulset()
    env = {e["name"]: e.get("value") for e in worker()["env"]}
    mounts = {m["name"]: m["mountPath"] for m in worker()["volumeMounts"]}
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    assert mounts[claim["metadata"]["name"]] == env["STREAMS_DATA_DIR"]
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    headless = objects()[("Service", sts["spec"]["serviceName"])]
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["publishNotReadyAddresses"] is True
    assert env["STREAMS_WEB_ADVERTISED_HOST"] == (
        f"$(POD_NAME).{sts['spec']['serviceName']}.$(POD_NAMESPACE).svc"
    )
    assert env["STREAMS_WEB_HOST"] == "0.0.0.0"


def test_selectors_match_the_pods() -> None:
    pod_labels = statefulset()["spec"]["template"]["metadata"]["labels"]
    selectors = [statefulset()["spec"]["selector"]["matchLabels"]]
    for (kind, _), d in objects().items():
        if kind == "Service":
            selectors.append(d["spec"]["selector"])
        if kind == "PodDisruptionBudget":
            selectors.append(d["spec"]["selector"]["matchLabels"])
    for sel in selectors:
        assert sel.items() <= pod_labels.items(), sel


def test_probes_use_the_health_endpoints_on_the_web_port() -> None:
    c = worker()
    (port,) = c["ports"]
    assert (port["name"], port["containerPort"]) == ("web", Settings().web_port)
    for probe, path in (("startupProbe", "/livez"), ("livenessProbe", "/livez"),
                        ("readinessProbe", "/readyz")):  # fmt: skip
        assert c[probe]["httpGet"] == {"path": path, "port": "web"}, probe
    # the bulk restore at 1M SKUs takes about a minute: the startup probe allows 5
    startup = c["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 300
    annotations = statefulset()["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(Settings().web_port)


def test_non_root_read_only_and_bounded() -> None:
    pod = statefulset()["spec"]["template"]["spec"]
    uid = re.search(r"^USER (\d+)", (REPO / "Dockerfile").read_text(), re.M)
    assert uid is not None
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == int(uid.group(1))
    assert pod["automountServiceAccountToken"] is False
    sc = worker()["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    # the only writable places: the claim and /tmp
    writable = {m["mountPath"] for m in worker()["volumeMounts"] if not m.get("readOnly")}
    assert writable == {"/app/.data", "/tmp"}
    res = worker()["resources"]
    assert res["requests"]["cpu"] and res["requests"]["memory"] and res["limits"]["memory"]


def test_operator_objects_select_what_exists() -> None:
    sm = objects()[("ServiceMonitor", "vc-ct-streams")]
    want = sm["spec"]["selector"]["matchLabels"].items()
    # exactly one Service (no pod scraped twice): the headless one, which lists pods that
    # are not ready yet (restoring, or stuck: they must still be scraped)
    (svc,) = [d for (k, _), d in objects().items()
              if k == "Service" and want <= d["metadata"]["labels"].items()]  # fmt: skip
    assert svc["metadata"]["name"] == statefulset()["spec"]["serviceName"]
    assert svc["spec"]["publishNotReadyAddresses"] is True
    (ep,) = sm["spec"]["endpoints"]
    assert ep["port"] in {p["name"] for p in svc["spec"]["ports"]}
    assert {"targetLabel": "job", "replacement": "streams", "action": "replace"} in ep[
        "relabelings"
    ]
    # the job the rules select
    assert 'up{job="streams"}' in (REPO / "prometheus" / "alerts.yml").read_text()


def test_prometheusrule_is_alerts_yml() -> None:
    rule = objects()[("PrometheusRule", "vc-ct-streams")]
    assert rule["spec"] == yaml.safe_load((REPO / "prometheus" / "alerts.yml").read_text())
    out = subprocess.run([sys.executable, str(REPO / "scripts" / "prometheusrule.py"), "--check"],
                         capture_output=True, text=True)  # fmt: skip
    assert out.returncode == 0, out.stderr
