"""The container image, checked without a Docker engine: the Deployment runs the image's entry point
the way the CLI expects, as the user the image declares, with dependencies pinned."""

from __future__ import annotations

import importlib.metadata as metadata
import json
import re
import tomllib
from typing import Any

from chart_support import REPO, hack_script, one, render
from packaging.requirements import Requirement

from tenantry.cli import _run, build_parser

DOCKERFILE = REPO / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, rest = line.partition(" ")
            result.append((instruction.upper(), rest.strip()))
    return result


def _final_stage() -> list[tuple[str, str]]:
    instructions = _instructions()
    last_from = max(i for i, (name, _) in enumerate(instructions) if name == "FROM")
    return instructions[last_from:]


def _exec_form(instruction: str) -> list[str]:
    values = [json.loads(rest) for name, rest in _final_stage() if name == instruction]
    assert values, f"the final stage has no {instruction}"
    assert isinstance(values[-1], list), f"{instruction}: use the exec form (a JSON list), so signals reach tenantry"
    return values[-1]


def _operator_container() -> tuple[dict[str, Any], dict[str, Any]]:
    deployment = one(render(), "Deployment", "tenantry-operator")
    pod = deployment["spec"]["template"]["spec"]
    return pod, pod["containers"][0]


def test_deployment_runs_the_images_entry_point_with_arguments_the_cli_accepts() -> None:
    pod, container = _operator_container()
    entrypoint = _exec_form("ENTRYPOINT")
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert entrypoint == ["tenantry"] and "tenantry" in scripts
    assert "command" not in container, "the Deployment must not override the image's ENTRYPOINT"
    args = build_parser().parse_args(container["args"])
    assert args.func is _run
    # The configuration file it names is the ConfigMap key, mounted where the argument says.
    mount = next(m for m in container["volumeMounts"] if args.config.startswith(m["mountPath"] + "/"))
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    config_maps = {o["metadata"]["name"]: o for o in render() if o["kind"] == "ConfigMap"}
    assert args.config.removeprefix(mount["mountPath"] + "/") in config_maps[volume["configMap"]["name"]]["data"]
    # The image's default command is the same subcommand.
    assert _exec_form("CMD") == ["run"]
    assert build_parser().parse_args(_exec_form("CMD")).func is _run


def test_image_runs_as_the_non_root_user_the_pod_requires() -> None:
    pod, _ = _operator_container()
    users = [rest for name, rest in _final_stage() if name == "USER"]
    assert users, "the image must not run as root"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "a numeric non-root USER, so that runAsNonRoot can verify it"
    assert pod["securityContext"]["runAsUser"] == int(uid)
    base = [rest for name, rest in _instructions() if name == "ARG" and rest.startswith("PYTHON_IMAGE=")]
    assert base and re.fullmatch(r"PYTHON_IMAGE=python:3\.\d+-slim-\w+", base[0]), base


def test_image_dependencies_are_pinned_and_satisfy_the_package() -> None:
    lock = REPO / "deploy" / "image-requirements.txt"
    pins = {}
    for line in lock.read_text().splitlines():
        if line and not line.startswith("#"):
            requirement = Requirement(line)
            specifiers = list(requirement.specifier)
            assert len(specifiers) == 1 and specifiers[0].operator == "==", f"not pinned: {line}"
            pins[hack_script("lock-image-requirements").canonical(requirement.name)] = specifiers[0].version
    # Everything the package needs at run time is pinned (hack/lock-image-requirements rewrites the file)...
    needed = hack_script("lock-image-requirements").runtime_closure()
    assert set(needed) <= set(pins), f"not pinned: {sorted(set(needed) - set(pins))}; run hack/lock-image-requirements"
    # ...at versions that satisfy the package's own requirements.
    for line in metadata.distribution("tenantry").requires or []:
        requirement = Requirement(line)
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        pinned = pins[hack_script("lock-image-requirements").canonical(requirement.name)]
        assert requirement.specifier.contains(pinned, prereleases=True), (str(requirement), pinned)
    assert any(name == "RUN" and "image-requirements.txt" in rest for name, rest in _instructions())
    assert any(name == "RUN" and "--no-deps" in rest for name, rest in _instructions())


def test_docker_build_context_leaves_out_the_work_tree() -> None:
    ignore = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()]
    assert "*" in ignore, "start from nothing and add what the image needs (no .venv, .git, .dev)"
    included = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    for name, rest in _instructions():
        if name == "COPY" and "--from" not in rest:
            *sources, _destination = rest.split()
            for source in sources:
                assert source.rstrip("/") in included, f"COPY {source}: excluded by .dockerignore"
