"""Bad input corpus: every field of every kind fed wrong values.

Schema level: the corpus is generated from the CRDs themselves: for every field of the five kinds,
a value of the wrong type, and each constraint broken (pattern, enum, length, minimum, required,
including unicode look-alike hosts and e-mails). The apiserver must refuse each (422, server-side
dry run, so nothing is stored) and the model must refuse the same object: two gates, one rule.
(tests/integration/test_crds.py checks a hand-picked list naming each field; this covers all fields.)

Semantic level (the operator running): unknown region or plan, duplicate e-mails (also differing
only in case), colliding hosts, too many domains, giant quotas, a plan whose defaults exceed its
quota, swapped TLS files, a tenant outside a reseller namespace, resellers with unknown regions,
taken e-mails or colliding domains, an overcommitted region, and names exactly at the length limits.
Each gets its precise condition and an Event with the same reason; a bystander tenant's namespace
children keep their resourceVersions; the operator keeps its pid and stays healthy.

The corpus and its outcomes are written to docs/bad-input-corpus.md.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import yaml
from kubernetes import client
from reliability_support import FIGURES, namespace_children_versions

from support import pki
from support.bodies import set_in
from support.cluster import REPO_ROOT, wait_for
from support.events import told
from support.operator import OperatorProcess
from support.platform import GROUP, PLURALS, SMALL, VERSION, Platform, condition
from tenantry.models import SUBJECT_NAME_PATTERN, SpecError, parse_spec

CORPUS_DOC = REPO_ROOT / "docs" / "bad-input-corpus.md"
QUOTA = SMALL

# A valid object of each kind with every optional part present, so that every field can be broken.
VALID: dict[str, dict[str, Any]] = {
    "Region": {
        "displayName": "Valid", "nodePool": {"nodeSelector": {"pool": "x"}, "tolerations": [
            {"key": "pool", "operator": "Equal", "value": "x", "effect": "NoSchedule", "tolerationSeconds": 5}]},
        "ingress": {"className": "nginx", "controllerNamespace": "ingress-nginx"}, "domainVerification": "DNS",
        "guardrails": {"allowedPriorityClasses": ["tenant-high"], "allowedRegistries": ["ghcr.io/valid"],
                       "storageClasses": ["standard"]},
        "capacity": dict(QUOTA), "pricing": {"currency": "USD", "cpu": "0.02", "memory": "0.002", "storage": "0.0002"},
    },
    "Reseller": {
        "companyName": "Valid Ltd", "email": "billing@valid.example", "active": True, "licenses": 3,
        "admins": [{"kind": "User", "name": "alice"}], "platformDomain": "panel.valid.example",
        "branding": {"displayName": "Valid", "logoURL": "https://valid.example/logo.png",
                     "faviconURL": "https://valid.example/favicon.ico", "primaryColor": "#112233",
                     "loginBackgroundURL": "https://valid.example/bg.png", "supportEmail": "help@valid.example"},
        "regions": [{"name": "eu-west", "domain": "valid.example", "tls": {"mode": "SelfSigned"},
                     "allotment": dict(QUOTA)}],
    },
    "Plan": {"displayName": "Valid", "quota": dict(QUOTA), "defaults": {"cpu": "100m", "memory": "128Mi"},
             "customDomains": 1, "storageClasses": ["standard"],
             "pricing": {"currency": "EUR", "monthly": "19.00", "cpu": "0.05", "memory": "0.006",
                         "storage": "0.0004"}},
    "Tenant": {"displayName": "Valid", "email": "joe@valid.example", "region": "eu-west", "plan": "starter",
               "active": True, "owners": [{"kind": "User", "name": "joe"}], "ingress": {"service": "web", "port": 80},
               "domains": [{"host": "www.valid.example", "tls": {"mode": "Secret", "secretName": "www-tls"}}],
               "deletionPolicy": "Delete"},
    "LicenseOrder": {"quantity": 5},
}
# Unicode look-alikes (Cyrillic a, Greek omicrons, a fullwidth dot) that the patterns must refuse;
# their punycode (xn--...) is plain ASCII and passes.
LOOKALIKES = ["www.v\u0430lid.example", "www.g\u03bf\u03bfgle.example", "www\uff0evalid.example",
              "\u00fcn\u00efcode.example"]
# A system subject name: the CRD refuses it, while the model reads it (Text.lenient) so that an object
# stored before that rule reaches the operator's decision (InvalidOwner, InvalidAdmin; tenantry.subjects).
SYSTEM_NAME = "system user or group"
WRONG_TYPE = {"string": 12345, "integer": "seven", "number": "seven", "boolean": "yes", "object": "an object",
              "array": {"not": "a list"}}


def _crd_schemas() -> dict[str, dict[str, Any]]:
    schemas = {}
    for path in sorted((REPO_ROOT / "crds").glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        version = next(v for v in crd["spec"]["versions"] if v["name"] == VERSION)
        schemas[crd["spec"]["names"]["kind"]] = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return schemas


def _bad_values(schema: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """(what is wrong, value) for one field's schema."""
    kind = "int-or-string" if schema.get("x-kubernetes-int-or-string") else schema.get("type")
    if kind == "int-or-string":
        yield "wrong type", {"a": "map"}
    elif kind in WRONG_TYPE:
        yield "wrong type", WRONG_TYPE[kind]
    if "enum" in schema:
        yield "not in enum", "NotAnOption"
    if schema.get("pattern") == SUBJECT_NAME_PATTERN:
        # Any name but Kubernetes' own users and groups: the wrong value is a system one.
        yield SYSTEM_NAME, "system:authenticated"
    elif "pattern" in schema:
        yield "pattern", "Not Valid!"
        if kind == "string" and any(w in schema["pattern"] for w in ("[a-z0-9]", "A-Za-z0-9")):
            for lookalike in LOOKALIKES[:2]:
                yield "unicode look-alike", lookalike
    if schema.get("maxLength"):
        yield "too long", "a" * (int(schema["maxLength"]) + 1)
    if schema.get("minLength"):
        yield "empty", ""
    if "minimum" in schema and kind in ("integer", "number"):
        yield "below minimum", int(schema["minimum"]) - 1
    if "minimum" in schema and kind == "int-or-string":
        yield "negative", "-1"
    if "maximum" in schema and kind in ("integer", "number"):
        yield "above maximum", int(schema["maximum"]) + 1


def _walk(schema: dict[str, Any], value: Any, path: str) -> Iterator[tuple[str, str, Any]]:
    """(path, what is wrong, value) for every field under `schema`, where `value` is the valid data."""
    if path:
        for what, bad in _bad_values(schema):
            yield path, what, bad
    if schema.get("type") == "object" and isinstance(value, dict):
        for required in schema.get("required", []):
            if required in value:
                yield f"{path}.{required}".lstrip("."), "required field missing", ...
        for name, sub in (schema.get("properties") or {}).items():
            if name in value:
                yield from _walk(sub, value[name], f"{path}.{name}".lstrip("."))
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict) and value:
            key = next(iter(value))
            yield from _walk(extra, value[key], f"{path}.{key}".lstrip("."))
    if schema.get("type") == "array" and isinstance(value, list) and value:
        yield from _walk(schema.get("items") or {}, value[0], f"{path}.0")


def schema_corpus() -> list[tuple[str, str, str, Any]]:
    cases = []
    for kind, schema in _crd_schemas().items():
        for path, what, value in _walk(schema, VALID[kind], ""):
            cases.append((kind, f"spec.{path}", what, value))
    return cases


def _create(api: client.ApiClient, kind: str, name: str, spec: dict[str, Any], namespace: str) -> None:
    objects = client.CustomObjectsApi(api)
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind, "metadata": {"name": name}, "spec": spec}
    if kind in ("Plan", "Tenant", "LicenseOrder"):
        objects.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURALS[kind], body, dry_run="All")
    else:
        objects.create_cluster_custom_object(GROUP, VERSION, PLURALS[kind], body, dry_run="All")


def _write_doc(section: str, rows: list[str]) -> None:
    """Replace one generated section of docs/bad-input-corpus.md (the file is written by this suite)."""
    marker_start, marker_end = f"<!-- {section}: start -->", f"<!-- {section}: end -->"
    text = CORPUS_DOC.read_text() if CORPUS_DOC.exists() else (
        "# Bad input corpus\n\nGenerated by `tests/reliability/test_bad_input.py` on every run; do not edit by "
        "hand. Each row is one wrong input and what Tenantry did with it.\n\n"
        "<!-- schema: start -->\n<!-- schema: end -->\n\n<!-- semantic: start -->\n<!-- semantic: end -->\n")
    before, _, rest = text.partition(marker_start)
    _, _, after = rest.partition(marker_end)
    new = before + marker_start + "\n" + "\n".join(rows) + "\n" + marker_end + after
    if new != text:
        CORPUS_DOC.parent.mkdir(exist_ok=True)
        CORPUS_DOC.write_text(new)


def _stable(text: str) -> str:
    """The generated names of this run (rs-ca18, TN-0E54) as rs-xxxx, so the document only changes
    when an outcome does."""
    return re.sub(r"(?i)\b([a-z]+)-[0-9a-f]{4}\b", lambda m: f"{m.group(1)}-xxxx", text)


def _shown(value: Any) -> str:
    if value is ...:
        return "(removed)"
    text = json.dumps(value, ensure_ascii=False)
    return (text[:40] + "…") if len(text) > 40 else text


def test_every_field_of_every_kind_refuses_wrong_values_at_the_schema(
        control_plane: Any, api_client: client.ApiClient, namespace: str, unique_name: Any) -> None:
    cases = schema_corpus()
    accepted, model_disagrees, rows = [], [], []
    for kind, path, what, value in cases:
        name = unique_name(kind.lower()[:3], max_length=20)
        spec = VALID[kind]
        broken = set_in({"spec": spec}, path, value)["spec"]
        try:
            _create(api_client, kind, name, broken, namespace)
            status = 201
        except client.ApiException as error:
            status = error.status
        if status != 422:
            accepted.append(f"{kind} {path} ({what}): {_shown(value)} -> {status}")
        try:
            parse_spec(kind, {"kind": kind, "metadata": {"name": name}, "spec": broken})
            model_refused = False
        except SpecError:
            model_refused = True
        if not model_refused and what != SYSTEM_NAME:
            model_disagrees.append(f"{kind} {path} ({what}): {_shown(value)}")
        shown = "refused" if model_refused else "read, refused by the operator" if what == SYSTEM_NAME else "ACCEPTED"
        rows.append(f"| {kind} | `{path}` | {what} | `{_shown(value)}` | {status} | {shown} |")
    # The valid objects themselves pass (so each refusal is about the one broken field).
    for kind, spec in VALID.items():
        _create(api_client, kind, unique_name(kind.lower()[:3], max_length=20), spec, namespace)
    _write_doc("schema", [
        f"## Schema level: {len(cases)} wrong values, every field of the five kinds", "",
        "| kind | field | what is wrong | value | apiserver | model |", "|---|---|---|---|---|---|", *rows])
    FIGURES["bad input: schema-level cases"] += len(cases)
    FIGURES["bad input: schema-level refused by the apiserver"] += len(cases) - len(accepted)
    assert not accepted, f"{len(accepted)} wrong values were accepted by the apiserver: {accepted}"
    assert not model_disagrees, f"the model accepts what the CRD refuses: {model_disagrees}"


# ------------------------------------------------------------------------------------------ semantic
def _condition_and_event(platform: Platform, kind: str, name: str, namespace: str | None, type_: str, status: str,
                         reason: str, timeout: float = 60) -> str:
    obj = platform.wait_condition(kind, name, namespace, type_, status, reason, timeout=timeout)
    message = condition(obj, type_)["message"]  # type: ignore[index]
    # The Event that tells the transition: one with its reason (every Warning, and a Normal summary named
    # after it), or the Normal summary of the same status write that names it among others (DESIGN §2).
    wait_for(lambda: any(e.reason == reason or (e.type == "Normal" and type_ in told(e.message)[1:])
                         for e in platform.events_for(namespace or "default", name)),
             30, message=f"an Event telling {kind} {name}'s {type_}={status} ({reason})")
    return str(message)


def test_semantic_bad_input_gets_a_precise_condition_and_event_and_disturbs_nobody(
        platform: Platform, operator: OperatorProcess, api_client: client.ApiClient, namespace: str) -> None:
    region = platform.region(domainVerification="None")
    other_region = platform.region()
    reseller = platform.reseller(region, licenses=30, allotment={"cpu": "8", "memory": "64Gi", "storage": "64Gi",
                                                                 "pods": "400"})
    ns = f"reseller-{reseller}"
    platform.wait_namespace(ns)
    platform.plan(reseller, custom_domains=1)
    bystander_host = f"www.{platform.unique_name('by')}.example"
    bystander = platform.tenant(reseller, region, domains=[{"host": bystander_host}])
    platform.wait_tenant(reseller, bystander)
    pid = operator.pid
    before = namespace_children_versions(api_client, f"{reseller}--{bystander}")
    bystander_email = platform.tenant_obj(reseller, bystander)["spec"]["email"]  # type: ignore[index]

    rows: list[str] = []
    cases: list[tuple[str, str, str | None, str, str, str, str]] = []  # (label, kind, ns, name, type, status, reason)

    def tenant_case(label: str, reason: str, *, status: str = "False", **spec: Any) -> None:
        plan = spec.pop("plan", "small")
        name = platform.tenant(reseller, spec.pop("region", region), plan=plan, **spec)
        cases.append((label, "Tenant", ns, name, "Admitted", status, reason))

    tenant_case("unknown region", "UnknownRegion", region="nowhere")
    tenant_case("a region the reseller does not sell in", "UnknownRegion", region=other_region)
    tenant_case("unknown plan", "UnknownPlan", plan="platinum")
    tenant_case("e-mail of another tenant", "DuplicateEmail", email=bystander_email)
    tenant_case("e-mail of another tenant, other case", "DuplicateEmail", email=bystander_email.upper())
    tenant_case("e-mail of the reseller", "DuplicateEmail", email=f"billing@{reseller}.example")
    tenant_case("custom host of another tenant", "HostConflict", domains=[{"host": bystander_host}])
    tenant_case("custom host under the reseller's domain", "HostConflict",
                domains=[{"host": f"shop.{reseller}-cloud.example"}])
    tenant_case("more custom domains than the plan allows", "TooManyDomains",
                domains=[{"host": f"a.{platform.unique_name('d')}.example"},
                         {"host": f"b.{platform.unique_name('d')}.example"}])
    platform.plan(reseller, "giant", quota={"cpu": "1000000", "memory": "1Ei", "storage": "1Ei", "pods": "9e18"})
    tenant_case("giant quota (1e6 cpu, 1Ei)", "InsufficientCapacity", plan="giant")
    platform.plan(reseller, "incoherent", quota=QUOTA, defaults={"cpu": "2", "memory": "128Mi"})
    cases.append(("plan defaults above its quota", "Plan", ns, "incoherent", "Ready", "False", "InvalidSpec"))
    tenant_case("tenant on an incoherent plan", "UnknownPlan", plan="incoherent")
    punycode = f"xn--bckerei-{platform.unique_name('p', random_chars=4).split('-')[1]}.example"
    tenant_case("punycode custom host (ASCII, valid)", "Admitted", status="True", domains=[{"host": punycode}])
    swapped_tenant = platform.tenant(reseller, region, domains=[{
        "host": f"www.{platform.unique_name('sw')}.example", "tls": {"mode": "Secret", "secretName": "swapped"}}])
    outside = platform.unique_name("out", max_length=40)
    platform.create("Tenant", outside, {"email": "out@outside.example", "region": region, "plan": "small"}, namespace)
    cases.append(("tenant outside a reseller namespace", "Tenant", namespace, outside, "Admitted", "False",
                  "InvalidSpec"))
    # Resellers.
    bad = platform.reseller(other_region, regions=[{"name": "nowhere", "domain": f"{platform.unique_name('n')}.example",
                                                    "allotment": QUOTA}])
    cases.append(("reseller selling in an unknown region", "Reseller", None, bad, "Ready", "False", "UnknownRegion"))
    bad = platform.reseller(other_region, email=f"billing@{reseller}.example")
    cases.append(("reseller with another reseller's e-mail", "Reseller", None, bad, "Ready", "False",
                  "DuplicateEmail"))
    bad = platform.reseller(region, regions=[{"name": region, "domain": f"eu.{reseller}-cloud.example",
                                              "allotment": QUOTA}])
    cases.append(("reseller domain nested in another's", "Reseller", None, bad, "Ready", "False", "DomainConflict"))
    small_region = platform.region(capacity={"cpu": "1", "memory": "1Gi", "storage": "1Gi", "pods": "1"})
    platform.reseller(small_region, allotment={"cpu": "2", "memory": "1Gi", "storage": "1Gi", "pods": "1"})
    cases.append(("allotments beyond the region's capacity", "Region", None, small_region, "Overcommitted", "True",
                  "AllotmentsExceedCapacity"))
    # Names exactly at the length limits: accepted and provisioned (namespace name 62 characters).
    longest = platform.reseller(region, platform.unique_name("longest-reseller", max_length=20), licenses=1,
                                regions=[{"name": region, "domain": f"{platform.unique_name('long')}.example",
                                          "allotment": QUOTA}])
    platform.wait_namespace(f"reseller-{longest}")
    platform.plan(longest)
    long_tenant = platform.tenant(longest, region, platform.unique_name("t" * 35, max_length=40))
    assert len(longest) == 20 and len(long_tenant) == 40
    cases.append(("names at the limits (reseller 20, tenant 40)", "Tenant", f"reseller-{longest}", long_tenant,
                  "Ready", "True", "Ready"))

    for label, kind, where, name, type_, status, reason in cases:
        message = _condition_and_event(platform, kind, name, where, type_, status, reason)
        stable = _stable(message)  # names masked before cutting, so a cut name never shows
        shown = stable[:90] + ("…" if len(stable) > 90 else "")
        rows.append(f"| {label} | {kind} | {type_}={status} | {reason} | {shown} |")

    # Swapped TLS files: the tenant is admitted, its custom host gets no certificate, and says why.
    swapped_ns = f"{reseller}--{swapped_tenant}"
    platform.wait_namespace(swapped_ns)
    issued = pki.make_cert("swapped.example", dns_names=["swapped.example"])
    platform.core.create_namespaced_secret(swapped_ns, client.V1Secret(
        metadata=client.V1ObjectMeta(name="swapped"), type="kubernetes.io/tls",
        string_data={"tls.crt": issued.key_pem.decode(), "tls.key": issued.cert_pem.decode()}))
    message = _condition_and_event(platform, "Tenant", swapped_tenant, ns, "CertificateReady", "False", "SwappedFiles")
    assert "PRIVATE KEY" not in message
    rows.append(f"| swapped tls.crt and tls.key | Tenant | CertificateReady=False | SwappedFiles | "
                f"{_stable(message)[:90]}… |")

    # Nobody else disturbed, the operator alive and the same process.
    after = namespace_children_versions(api_client, f"{reseller}--{bystander}")
    assert after == before, {k: (before.get(k), after.get(k)) for k in set(before) | set(after)
                             if before.get(k) != after.get(k)}
    assert condition(platform.tenant_obj(reseller, bystander), "Ready")["status"] == "True"  # type: ignore[index]
    assert operator.pid == pid and operator.process is not None and operator.process.poll() is None
    operator.wait_healthy(10)
    _write_doc("semantic", [f"## Semantic level: {len(rows)} wrong inputs, the operator running", "",
                            "| input | kind | condition | reason (and Event) | message |", "|---|---|---|---|---|",
                            *rows, "", "A bystander tenant's namespace children kept their resourceVersions; the "
                            "operator kept its pid and stayed healthy."])
    FIGURES["bad input: semantic cases"] += len(rows)
