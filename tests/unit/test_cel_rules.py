"""The CEL rules of the CRDs (x-kubernetes-validations) give the verdict the models give.

Clusters >= 1.25 run the rules at `kubectl apply`; the local v1.20 control plane cannot, so each rule
is evaluated here with cel-python (celpy) on the sub-object it is attached to, for one valid and one
invalid spec, and compared with what `parse_spec` + `spec_problems` say about the whole spec. A rule
without a case fails the coverage test, so a rule added to a model must come with its cases.
"""

from __future__ import annotations

import copy
from typing import Any, NamedTuple

import celpy
import pytest
import yaml
from pydantic import BaseModel

from tenantry import crdgen, models, naming
from tenantry.models import CelRule, parse_spec, spec_problems

QUOTA = {"cpu": "1", "memory": "1Gi", "storage": "1Gi", "pods": "10"}
REGION = {"capacity": QUOTA, "pricing": {"currency": "USD", "cpu": "0.01", "memory": "0.001", "storage": "0.0001"}}
RESELLER = {"companyName": "Minimal Ltd", "email": "billing@minimal.example"}
TENANT = {"email": "owner@minimal.example", "region": "eu-west", "plan": "starter"}


def reseller_region(name: str, domain: str, tls: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "domain": domain, "allotment": QUOTA, **({"tls": tls} if tls is not None else {})}


def region_with(toleration: dict[str, Any]) -> dict[str, Any]:
    return {**REGION, "nodePool": {"tolerations": [toleration]}}


class Case(NamedTuple):
    model: type[BaseModel]
    rule: int  # index into model.cel_rules
    kind: str
    spec: dict[str, Any]
    at: tuple[str | int, ...]  # where in the spec the rule's object is
    valid: bool


CASES = [
    # TLSConfig: mode Secret needs secretName; mode Issuer needs issuerRef (on tenants' domains and resellers' regions)
    Case(models.TLSConfig, 0, naming.TENANT, {**TENANT, "domains": [{"host": "www.a.example", "tls": {
        "mode": "Secret", "secretName": "www-tls"}}]}, ("domains", 0, "tls"), True),
    Case(models.TLSConfig, 0, naming.TENANT, {**TENANT, "domains": [{"host": "www.a.example", "tls": {
        "mode": "Secret"}}]}, ("domains", 0, "tls"), False),
    Case(models.TLSConfig, 1, naming.RESELLER, {**RESELLER, "regions": [reseller_region("eu-west", "a.example", {
        "mode": "Issuer", "issuerRef": {"kind": "ClusterIssuer", "name": "le"}})]}, ("regions", 0, "tls"), True),
    Case(models.TLSConfig, 1, naming.RESELLER, {**RESELLER, "regions": [reseller_region("eu-west", "a.example", {
        "mode": "Issuer", "secretName": "www-tls"})]}, ("regions", 0, "tls"), False),
    # Subject: a ServiceAccount needs a namespace, nothing else has one
    Case(models.Subject, 0, naming.TENANT, {**TENANT, "owners": [
        {"kind": "ServiceAccount", "name": "ci", "namespace": "tools"}]}, ("owners", 0), True),
    Case(models.Subject, 0, naming.TENANT, {**TENANT, "owners": [{"kind": "ServiceAccount", "name": "ci"}]},
         ("owners", 0), False),
    Case(models.Subject, 1, naming.RESELLER, {**RESELLER, "admins": [{"kind": "User", "name": "alice@a.example"}]},
         ("admins", 0), True),
    Case(models.Subject, 1, naming.RESELLER, {**RESELLER, "admins": [
        {"kind": "Group", "name": "ops", "namespace": "tools"}]}, ("admins", 0), False),
    # Toleration: Exists takes no value; Equal needs a key; tolerationSeconds only with NoExecute
    Case(models.Toleration, 0, naming.REGION, region_with({"operator": "Exists", "effect": "NoSchedule"}),
         ("nodePool", "tolerations", 0), True),
    Case(models.Toleration, 0, naming.REGION, region_with({"key": "pool", "operator": "Exists", "value": "x"}),
         ("nodePool", "tolerations", 0), False),
    Case(models.Toleration, 1, naming.REGION, region_with({"key": "pool", "value": "batch"}),
         ("nodePool", "tolerations", 0), True),
    Case(models.Toleration, 1, naming.REGION, region_with({"operator": "Equal", "value": "batch"}),
         ("nodePool", "tolerations", 0), False),
    Case(models.Toleration, 2, naming.REGION, region_with({"key": "pool", "effect": "NoExecute",
                                                          "tolerationSeconds": 30}),
         ("nodePool", "tolerations", 0), True),
    Case(models.Toleration, 2, naming.REGION, region_with({"key": "pool", "effect": "NoSchedule",
                                                          "tolerationSeconds": 30}),
         ("nodePool", "tolerations", 0), False),
    # ResellerSpec: each region its own domain
    Case(models.ResellerSpec, 0, naming.RESELLER, {**RESELLER, "regions": [
        reseller_region("eu-west", "eu.a.example"), reseller_region("us-east", "us.a.example")]}, (), True),
    Case(models.ResellerSpec, 0, naming.RESELLER, {**RESELLER, "regions": [
        reseller_region("eu-west", "a.example"), reseller_region("us-east", "a.example")]}, (), False),
]

_ENV = celpy.Environment()


def evaluate(rule: CelRule, obj: Any) -> bool:
    program = _ENV.program(_ENV.compile(rule.rule))
    return bool(program.evaluate({"self": celpy.json_to_cel(obj)}))


def at(spec: Any, path: tuple[str | int, ...]) -> Any:
    for part in path:
        spec = spec[part]
    return spec


def defaulted(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    """The spec as the apiserver hands it to CEL: with the CRD's defaults applied (the model's dump)."""
    return parse_spec(kind, spec).model_dump(mode="json", by_alias=True, exclude_none=True,
                                             exclude_defaults=False)


def model_verdict(kind: str, spec: dict[str, Any]) -> bool:
    try:
        parsed = parse_spec(kind, spec)
    except models.SpecError:
        return False
    return not spec_problems(parsed)


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.model.__name__}-{c.rule}-{'valid' if c.valid else 'bad'}")
def test_rule_agrees_with_the_model(case: Case) -> None:
    rule = case.model.cel_rules[case.rule]  # type: ignore[attr-defined]
    assert model_verdict(case.kind, case.spec) is case.valid, "the case does not say what the model says"
    assert evaluate(rule, at(case.spec, case.at)) is case.valid, f"as written: {rule.rule}"
    if case.valid:  # an invalid spec has no defaulted form (the model refuses it as a whole)
        assert evaluate(rule, at(defaulted(case.kind, case.spec), case.at)) is True, f"defaulted: {rule.rule}"


def test_an_invalid_case_breaks_only_its_own_rule() -> None:
    """Each bad case is bad for one reason: every other rule on the same object holds."""
    for case in CASES:
        obj = at(case.spec, case.at)
        for index, rule in enumerate(case.model.cel_rules):  # type: ignore[attr-defined]
            if index != case.rule:
                assert evaluate(rule, obj), (case, rule.rule)


def _models_with_rules() -> set[type[BaseModel]]:
    found: set[type[BaseModel]] = set()
    for name in dir(models):
        value = getattr(models, name)
        if isinstance(value, type) and issubclass(value, BaseModel) and "cel_rules" in vars(value):
            found.add(value)
    return found


def test_every_rule_has_a_valid_and_an_invalid_case() -> None:
    covered = {(case.model, case.rule, case.valid) for case in CASES}
    for model in _models_with_rules():
        for index, _ in enumerate(model.cel_rules):  # type: ignore[attr-defined]
            assert {(model, index, True), (model, index, False)} <= covered, f"{model.__name__}.cel_rules[{index}]"


def _validations(schema: Any) -> list[str]:
    found = []
    if isinstance(schema, dict):
        found += [rule["rule"] for rule in schema.get("x-kubernetes-validations", [])]
        for value in schema.values():
            found += _validations(value)
    elif isinstance(schema, list):
        for value in schema:
            found += _validations(value)
    return found


def test_the_chart_crds_carry_every_rule_and_crds_dir_none() -> None:
    with_cel = [yaml.safe_load_all(crdgen.render(kind, cel=True)) for kind in crdgen.KINDS]
    rules = {rule for documents in with_cel for document in documents for rule in _validations(document)}
    assert rules == {rule.rule for model in _models_with_rules() for rule in model.cel_rules}  # type: ignore
    without = [yaml.safe_load_all(crdgen.render(kind, cel=False)) for kind in crdgen.KINDS]
    assert not [rule for documents in without for document in documents for rule in _validations(document)]


def test_a_broken_rule_is_noticed() -> None:
    """The comparison can fail: a rule that forgets the Issuer case disagrees with the model."""
    case = next(c for c in CASES if c.model is models.TLSConfig and c.rule == 1 and not c.valid)
    broken = CelRule("true", "accepts everything")
    assert evaluate(broken, at(copy.deepcopy(case.spec), case.at)) is not case.valid
