"""docker-compose.yml holds the topology of issue 13 (no Docker engine runs here, so this reads the
file; the same topology runs for real without Docker in tests/support/stack.py)."""
from __future__ import annotations

import fnmatch
import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())


def test_services_of_the_topology():
    assert {"nginx", "web", "registry-worker", "verifier", "verifier-gpu", "postgres", "redis", "seaweedfs"} <= set(COMPOSE["services"])
    assert COMPOSE["services"]["verifier-gpu"]["profiles"] == ["gpu"]
    assert "--appendonly" in COMPOSE["services"]["redis"]["command"]
    assert COMPOSE["services"]["nginx"]["ports"] == ["8000:80"] and "ports" not in COMPOSE["services"]["web"]


def test_verifiers_have_no_database_and_keys_of_their_own():
    for name in ("verifier", "verifier-gpu"):
        service = COMPOSE["services"][name]
        env = service["environment"]
        assert "DATABASE_URL" not in env and "ASSAY_KEY_DIR" not in env and env["ASSAY_VERIFIER_DIR"] == "/verifier"
        assert all(not v.startswith("assaydata") for v in service["volumes"])  # never the registry's volume
        assert "postgres" not in service["depends_on"]
        # the public endpoint (localhost:8333) is the verifier's own container: it asks for seaweedfs:8333
        assert env["ASSAY_STORAGE_ADDRESS"] == "internal" and "localhost" in COMPOSE["x-assay-env"]["ASSAY_S3_PUBLIC_ENDPOINT"]
    assert COMPOSE["services"]["web"]["environment"]["ASSAY_STORAGE"] == "s3"


# --- the file as Docker Compose reads it ----------------------------------------------------------
# tests/support/compose-spec.json is the Compose Specification's JSON schema, copied unchanged from
# github.com/compose-spec/compose-spec (schema/compose-spec.json at 170098ba, Apache-2.0): the schema
# `docker compose config` validates a file against. A misspelt key (`healthchek`, `depend_on`) or a
# value of the wrong shape fails here, on a machine without a Docker engine.
def test_compose_file_follows_the_compose_specification():
    import jsonschema

    schema = json.loads((REPO / "tests" / "support" / "compose-spec.json").read_text())
    validator = jsonschema.Draft7Validator(schema)
    errors = [f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in validator.iter_errors(COMPOSE)]
    assert errors == []
    misspelt = {**COMPOSE, "services": {**COMPOSE["services"], "web": {**COMPOSE["services"]["web"], "healthchek": {}}}}
    assert any("healthchek" in e.message for e in validator.iter_errors(misspelt))


def _compose_commands() -> list[tuple[str, list[str]]]:
    """(service, argv) for each command the compose file runs in our image, split at `&&`, plus the
    `docker compose exec web ...` commands its header tells an operator to paste."""
    found = []
    for name, service in COMPOSE["services"].items():
        if service.get("build") is None:
            continue  # an official image (postgres, redis, nginx, seaweedfs)
        command = service.get("command")
        if isinstance(command, list):
            command = shlex.join(command)
        if command.startswith("sh -c "):
            command = shlex.split(command)[2].replace("$${", "${")
        for part in command.split("&&"):
            argv = shlex.split(part)
            if argv[0] == "unset":  # a shell builtin: what the program after it must not inherit
                continue
            found.append((name, argv[1:] if argv[0] == "exec" else argv))  # `exec`: the program becomes PID 1
    for line in (REPO / "docker-compose.yml").read_text().splitlines():
        if line.startswith("#") and "docker compose exec web " in line:
            found.append(("web", shlex.split(line.split("docker compose exec web ", 1)[1].split("#")[0])))
    return found


def _options(argv: list[str]) -> list[str]:
    return [a.split("=", 1)[0] for a in argv if a.startswith("--")]


def test_every_command_the_compose_file_runs_exists_with_its_options():
    """Each program, module, management command and option the compose file (and its header) runs is
    one this checkout has: a renamed flag or module would otherwise surface only in a container."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "registry.settings"}
    python = sys.executable
    commands = _compose_commands()
    assert {argv[0] for _, argv in commands} >= {"python", "celery", "gunicorn"}
    for service, argv in commands:
        if argv[:2] == ["python", "-m"]:  # python -m verifier register URL --name N --if-needed
            module, sub = argv[2], argv[3]
            helptext = subprocess.run([python, "-m", module, sub, "--help"], cwd=REPO, env=env, capture_output=True, text=True)
        elif argv[:2] == ["python", "manage.py"]:
            sub = argv[2]
            helptext = subprocess.run([python, "manage.py", sub, "--help"], cwd=REPO, env=env, capture_output=True, text=True)
        elif argv[0] == "celery":  # celery -A <app module> worker ...
            app = argv[argv.index("-A") + 1]
            assert importlib.util.find_spec(app) is not None, f"{service}: celery app module {app} is missing"
            helptext = subprocess.run([python, "-m", "celery", "-A", app, "worker", "--help"], cwd=REPO, env=env,
                                      capture_output=True, text=True)
        elif argv[0] == "gunicorn":  # gunicorn module:callable
            module, attr = argv[1].split(":")
            assert importlib.util.find_spec(module) is not None, f"{service}: {module} is missing"
            assert f"\n{attr} = " in (REPO / (module.replace(".", "/") + ".py")).read_text()
            helptext = subprocess.run([python, "-m", "gunicorn", "--help"], cwd=REPO, env=env, capture_output=True, text=True)
        else:
            raise AssertionError(f"{service}: a command this test does not know how to check: {argv}")
        assert helptext.returncode == 0, f"{service}: {' '.join(argv)}\n{helptext.stderr[-2000:]}"
        for option in _options(argv):
            assert option in helptext.stdout, f"{service}: {' '.join(argv[:4])} has no option {option}"


def test_a_verifier_does_not_keep_the_staff_token_it_registered_with():
    """The staff token a verifier registers with is dropped before its worker starts: a model file
    that got code running in a confined child could still read the worker's environment
    (/proc/<pid>/environ), and write it into the outputs the registry gets back."""
    for name in ("verifier", "verifier-gpu"):
        command = COMPOSE["services"][name]["command"]
        assert "&& unset ASSAY_ADMIN_TOKEN && exec celery " in command, name


def test_the_image_runs_as_an_unprivileged_user_owning_its_volumes():
    dockerfile = (REPO / "Dockerfile").read_text()
    users = re.findall(r"^USER (\S+)", dockerfile, re.M)
    assert users and users[-1] not in ("root", "0")
    for name in ("web", "registry-worker", "verifier", "verifier-gpu"):
        for volume in COMPOSE["services"][name]["volumes"]:
            mount = volume.split(":")[1]
            assert re.search(rf"chown \S+ [^\n]*{re.escape(mount)}\b", dockerfile), f"{name}: {mount} is not made the user's"


def test_dockerfile_copies_what_exists_and_installs_declared_extras():
    dockerfile = (REPO / "Dockerfile").read_text()
    ignored = [p for p in (REPO / ".dockerignore").read_text().splitlines() if p and not p.startswith("#")]
    assert {".git", ".venv", "var"} <= set(ignored)  # gigabytes of context otherwise, and the registry's data
    for line in dockerfile.splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (REPO / source).exists(), f"Dockerfile copies {source}, which is not in the checkout"
                assert not any(fnmatch.fnmatch(source, p) or fnmatch.fnmatch(source.split("/")[0], p) for p in ignored), \
                    f"Dockerfile copies {source}, which .dockerignore leaves out of the build context"
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for wanted in re.findall(r"'(\w+)'", re.search(r"for e in \(([^)]+)\)", dockerfile).group(1)):
        assert wanted in extras, f"the Dockerfile installs extra {wanted!r}, which pyproject.toml does not declare"


def test_long_running_programs_are_pid_1_so_a_stop_is_graceful():
    """`sh -c "... && gunicorn"` leaves sh as PID 1, which does not pass SIGTERM on: every stop
    waited 10 s and then killed gunicorn and a verifier's running task (seen under podman)."""
    for name, program in (("web", "gunicorn"), ("verifier", "celery"), ("verifier-gpu", "celery"), ("nginx", "nginx")):
        command = COMPOSE["services"][name]["command"]
        command = command if isinstance(command, str) else shlex.join(command)
        if "&&" in command:
            assert f"&& exec {program} " in command, f"{name}: its last command must `exec {program}`"


def test_nginx_takes_its_resolver_from_the_containers_resolv_conf(tmp_path):
    script = COMPOSE["services"]["nginx"]["command"][2]
    awk = script.split(" > ")[0].replace("$$", "$")  # compose's $$ is a literal $
    assert awk.startswith("awk ") and script.endswith("exec nginx -c /etc/assay/nginx.conf")
    for resolv, line in (("# Docker\nnameserver 127.0.0.11\noptions ndots:0\n", "resolver 127.0.0.11 valid=10s;"),
                         ("search dns.podman\nnameserver 10.89.0.1\nnameserver 10.89.0.2\n", "resolver 10.89.0.1 valid=10s;"),
                         ("nameserver fd00::1\n", "resolver [fd00::1] valid=10s;")):
        (tmp_path / "resolv.conf").write_text(resolv)
        out = subprocess.run(["sh", "-c", awk.replace("/etc/resolv.conf", str(tmp_path / "resolv.conf"))], capture_output=True, text=True)
        assert out.stdout.strip() == line, out.stderr
    assert "include /etc/nginx/assay-resolver.conf;" in (REPO / "docker" / "nginx.conf").read_text()
