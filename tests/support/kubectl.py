"""`kubectl` as a person types it, for the journey tests: the real binary (the cached v1.20 build of
the local control plane, or the one on PATH for an existing cluster), the admin kubeconfig, and
`--as`/`--as-group` to act as a platform admin, a reseller admin or a tenant owner. Assertions are
then made on what that person sees: kubectl's output, its exit status, its error message.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from support.cluster import load_controlplane_module


def kubectl_binary() -> Path:
    """The cached kubectl v1.20 built with the control plane, else the first kubectl on PATH."""
    cached = load_controlplane_module()._default_cache_dir() / "bin" / "kubectl"
    if cached.exists():
        return cached
    found = shutil.which("kubectl")
    if found is None:
        raise RuntimeError("no kubectl: run `make control-plane` (it builds one into ~/.cache/tenantry/bin)")
    return Path(found)


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    # The local apiserver is on 127.0.0.1: never through a proxy configured for the outside world.
    no_proxy = ",".join(filter(None, [env.get("NO_PROXY") or env.get("no_proxy"), "127.0.0.1,localhost"]))
    env["NO_PROXY"] = env["no_proxy"] = no_proxy
    env.pop("KUBECONFIG", None)
    return env


class KubectlError(AssertionError):
    """kubectl exited non-zero where the test expected success (an AssertionError: a test failure)."""


@dataclass(frozen=True)
class Kubectl:
    """kubectl bound to a kubeconfig and, optionally, an identity to impersonate."""

    kubeconfig: str
    binary: Path = field(default_factory=kubectl_binary)
    user: str | None = None
    groups: tuple[str, ...] = ()

    def as_user(self, user: str, *groups: str) -> Kubectl:
        """The same kubectl acting as `user` in `groups` (`kubectl --as USER --as-group G`)."""
        return Kubectl(self.kubeconfig, self.binary, user, tuple(groups))

    @property
    def who(self) -> str:
        return self.user or "the cluster admin"

    def run(self, *args: str, input: str | None = None, check: bool = True,
            timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        command = [str(self.binary), f"--kubeconfig={self.kubeconfig}"]
        if self.user:
            command.append(f"--as={self.user}")
            command += [f"--as-group={group}" for group in self.groups]
        command += list(args)
        result = subprocess.run(command, input=input, capture_output=True, text=True, timeout=timeout,
                                env=_environment())
        if check and result.returncode != 0:
            raise KubectlError(f"`kubectl {' '.join(args)}` as {self.who} failed ({result.returncode}):\n"
                               f"{result.stdout}{result.stderr}")
        return result

    def apply(self, *documents: dict[str, Any] | str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """`kubectl apply -f -` of YAML documents (dicts or YAML text), as a person applies a file."""
        text = "\n---\n".join(d if isinstance(d, str) else yaml.safe_dump(d, sort_keys=False) for d in documents)
        return self.run("apply", "-f", "-", input=text, check=check)

    def get_json(self, *args: str) -> dict[str, Any]:
        """`kubectl get ARGS -o json`, parsed."""
        return dict(json.loads(self.run("get", *args, "-o", "json").stdout))

    def jsonpath(self, template: str, *args: str, check: bool = True) -> str:
        """`kubectl get ARGS -o jsonpath=TEMPLATE`, the text a person reads."""
        return self.run("get", *args, "-o", f"jsonpath={template}", check=check).stdout

    def can_i(self, verb: str, resource: str, *args: str) -> bool:
        """`kubectl auth can-i VERB RESOURCE [-n NS] ...`: True on "yes", False on "no"."""
        result = self.run("auth", "can-i", verb, resource, *args, check=False)
        # "yes", "no", or "no - RBAC: clusterrole ... not found" (an evaluation error said after the answer)
        answer = result.stdout.strip().splitlines()[0].split(" - ", 1)[0] if result.stdout.strip() else ""
        if answer not in ("yes", "no"):
            raise KubectlError(f"`kubectl auth can-i {verb} {resource} {' '.join(args)}` as {self.who}: "
                               f"{result.stdout}{result.stderr}")
        return answer == "yes"

    def forbidden(self, *args: str) -> str:
        """Runs a command that must be refused by RBAC; returns kubectl's error message."""
        result = self.run(*args, check=False)
        if result.returncode == 0 or "forbidden" not in result.stderr.lower():
            raise KubectlError(f"`kubectl {' '.join(args)}` as {self.who} was expected to be forbidden, got "
                               f"exit {result.returncode}:\n{result.stdout}{result.stderr}")
        return result.stderr

    def events(self, namespace: str | None, name: str) -> list[dict[str, Any]]:
        """`kubectl get events` about the object `name` (in `namespace`, or everywhere)."""
        where: Sequence[str] = ("-n", namespace) if namespace else ("-A",)
        listed = self.get_json("events", *where, "--field-selector", f"involvedObject.name={name}")
        return list(listed.get("items") or [])

    def describe(self, *args: str) -> str:
        """`kubectl describe ...`: what a person reads, Events included."""
        return self.run("describe", *args).stdout
