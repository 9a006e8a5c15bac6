"""Which RBAC subjects Tenantry may bind (tenantry.subjects), and what admission makes of the rest:
a new tenant naming one is refused (InvalidOwner), an admitted one keeps running and is told."""

from __future__ import annotations

import dataclasses
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_admission import admit, book_with, reseller, tenant

from tenantry import models
from tenantry.models import Subject, TenantSpec
from tenantry.subjects import (
    allowed_subjects,
    reseller_admin_problems,
    subject_problems,
    tenant_owner_problems,
)

OWN = "acme--bakery"


@pytest.mark.parametrize("kind, name", [
    ("Group", "system:authenticated"), ("Group", "system:unauthenticated"), ("Group", "system:masters"),
    ("Group", "system:serviceaccounts"), ("Group", f"system:serviceaccounts:{OWN}"),
    ("User", "system:anonymous"), ("User", "system:admin"), ("User", "system:kube-controller-manager"),
    ("User", "system:serviceaccount:kube-system:default"),
])
def test_system_users_and_groups_are_never_bound(kind: str, name: str) -> None:
    (problem,) = subject_problems([{"kind": kind, "name": name}], OWN)
    assert problem.startswith(f"spec.owners[0]: {kind} {name} is a Kubernetes system")
    assert "never grants access" in problem and "remove it from spec.owners" in problem


def test_a_service_account_written_as_a_user_of_the_own_namespace_is_told_how_to_write_it() -> None:
    (problem,) = subject_problems([{"kind": "User", "name": f"system:serviceaccount:{OWN}:deployer"}], OWN)
    assert f"{{kind: ServiceAccount, namespace: {OWN}, name: deployer}}" in problem


def test_service_accounts_only_of_the_allowed_namespace() -> None:
    assert subject_problems([{"kind": "ServiceAccount", "namespace": OWN, "name": "deployer"}], OWN) == []
    (problem,) = subject_problems([{"kind": "ServiceAccount", "namespace": "acme--other", "name": "default"}], OWN)
    assert problem == (f"spec.owners[0]: ServiceAccount acme--other/default is outside namespace {OWN}, and only "
                       f"ServiceAccounts of {OWN} may be named here; create the ServiceAccount in {OWN}, or remove "
                       "it from spec.owners.")


def test_people_and_groups_of_people_are_fine_and_case_matters() -> None:
    good = [{"kind": "User", "name": "joe@bakery.example"}, {"kind": "Group", "name": "bakery-staff"},
            {"kind": "User", "name": "system"}, {"kind": "Group", "name": "systemd"},
            {"kind": "User", "name": "System:authenticated"}]  # RBAC names are case-sensitive: not a system group
    assert subject_problems(good, OWN) == []


def test_models_and_dicts_give_the_same_answer_and_indexes_name_the_entry() -> None:
    subjects = [Subject(kind="User", name="joe"), Subject(kind="Group", name="system:authenticated"),
                Subject(kind="ServiceAccount", name="ci", namespace="elsewhere")]
    problems = subject_problems(subjects, OWN, field="spec.admins")
    assert [p.split(":")[0] for p in problems] == ["spec.admins[1]", "spec.admins[2]"]
    assert problems == subject_problems([s.model_dump(exclude_none=True) for s in subjects], OWN, field="spec.admins")
    assert allowed_subjects(subjects, OWN) == subjects[:1]


def test_tenant_owners_and_reseller_admins_each_have_their_own_namespace() -> None:
    sa = {"kind": "ServiceAccount", "name": "ci"}
    assert tenant_owner_problems([{**sa, "namespace": "acme--bakery"}], "acme", "bakery") == []
    assert tenant_owner_problems([{**sa, "namespace": "reseller-acme"}], "acme", "bakery")
    assert reseller_admin_problems([{**sa, "namespace": "reseller-acme"}], "acme") == []
    (problem,) = reseller_admin_problems([{**sa, "namespace": "acme--bakery"}], "acme")
    assert problem.startswith("spec.admins[0]: ServiceAccount acme--bakery/ci is outside namespace reseller-acme")


@given(st.text(min_size=1, max_size=12))
def test_the_crd_pattern_refuses_exactly_the_system_prefix(name: str) -> None:
    """The CRD's RE2-compatible pattern (no lookahead) says the same as `startswith("system:")`."""
    assert bool(re.match(models.SUBJECT_NAME_PATTERN, name)) == (not name.startswith("system:"))
    for prefix in ("system:", "system:authenticated", "syst", "system"):
        assert bool(re.match(models.SUBJECT_NAME_PATTERN, prefix)) == (not prefix.startswith("system:"))


def test_the_model_reads_a_system_name_so_that_the_operator_can_refuse_it() -> None:
    """Objects stored before the CRD had the pattern must still be read: the operator then says
    InvalidOwner and leaves the subject unbound, instead of InvalidSpec and leaving everything as it was."""
    spec = TenantSpec.model_validate({"email": "joe@bakery.example", "region": "eu", "plan": "small",
                                      "owners": [{"kind": "Group", "name": "system:authenticated"}]})
    assert spec.owners[0].name == "system:authenticated"


# -- what admission makes of it -------------------------------------------------------------------------


def test_a_new_tenant_with_a_bad_owner_is_refused_and_admitted_once_fixed() -> None:
    book = book_with(reseller(licenses=1))
    problems = tuple(tenant_owner_problems([{"kind": "Group", "name": "system:authenticated"}], "acme", "a"))
    claim = dataclasses.replace(tenant("a"), owner_problems=problems)
    verdict = admit(book, claim)
    assert (verdict.admitted, verdict.reason) == (False, "InvalidOwner")
    assert verdict.message.startswith("spec.owners[0]: Group system:authenticated is a Kubernetes system group")
    assert verdict.message.endswith("it is admitted by itself once spec.owners is fixed.")
    # It holds no licence meanwhile: the next tenant gets the only one.
    assert admit(book, tenant("b", created="2026-03-01T00:00:00Z")).admitted
    book.remove_tenant(("acme", "b"))
    assert admit(book, tenant("a")).admitted


def test_an_admitted_tenant_whose_owners_turn_bad_keeps_running_and_is_told() -> None:
    book = book_with(reseller())
    assert admit(book, tenant("a")).admitted
    problems = tuple(tenant_owner_problems([{"kind": "ServiceAccount", "namespace": "acme--b", "name": "x"}],
                                           "acme", "a"))
    verdict = admit(book, dataclasses.replace(tenant("a"), owner_problems=problems))
    assert verdict.admitted and verdict.record is not None
    assert verdict.change_refused is not None and verdict.change_refused[0] == "InvalidOwner"
    assert "ServiceAccount acme--b/x is outside namespace acme--a" in verdict.change_refused[1]
    assert verdict.change_refused[1].endswith("that subject is not bound, and the other owners keep their access.")
