"""Generated files are never kept by hand: each equals a fresh rendering, or `make manifests` is due.

`make manifests` runs hack/render-crds (the CRDs, from the pydantic models), hack/render-dashboard
and hack/render-manifests (manifests/install.yaml, from the chart and its CRDs); this test runs
their renderers and compares, without a cluster.
"""

from __future__ import annotations

from pathlib import Path

from support.hack_scripts import hack_script

REPO = Path(__file__).resolve().parents[2]
FIX = "stale: run `make manifests` and commit the result"


def test_crds_are_fresh() -> None:
    stale = [str(path.relative_to(REPO)) for path in hack_script("render-crds").stale_files()]
    assert stale == [], f"{', '.join(stale)}: {FIX}"


def test_dashboard_is_fresh() -> None:
    assert hack_script("render-dashboard").main(["--check"]) == 0, f"the Grafana dashboard is {FIX}"


def test_install_manifest_is_fresh() -> None:
    renderer = hack_script("render-manifests")
    assert renderer.OUTPUT.read_text() == renderer.install_manifest(), f"manifests/install.yaml is {FIX}"


def test_a_hand_edit_is_noticed(tmp_path: Path) -> None:
    """The check can fail: a CRD edited by hand (or left behind) is reported."""
    renderer = hack_script("render-crds")
    crds = tmp_path / "crds"
    crds.mkdir()
    vars(renderer)["OUTPUTS"] = {crds: False}
    for path, text in renderer.expected_files().items():
        path.write_text(text)
    assert renderer.stale_files() == []
    edited = crds / "tenantry.dev_tenants.yaml"
    edited.write_text(edited.read_text().replace("maxLength: 254", "maxLength: 255"))
    (crds / "tenantry.dev_old.yaml").write_text("kind: CustomResourceDefinition\n")
    assert renderer.stale_files() == sorted([edited, crds / "tenantry.dev_old.yaml"])
