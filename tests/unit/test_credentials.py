"""Credentials that change under a running process, and how long a refused request waits (issue 11,
finding 6). The login reads a real kubeconfig with the Kubernetes client's own loader (no server is
needed to read credentials); the end-to-end proof against the apiserver is in
tests/reliability/test_credential_rotation.py."""

from __future__ import annotations

import asyncio
import base64
import datetime
import email.utils
from pathlib import Path

import pytest
import yaml

from support.pki import cert_pem, make_cert
from tenantry.credentials import ClusterLogin
from tenantry.kube import RETRY_AFTER_CAP, RETRY_CAP, Credentials, retry_delay


def write_kubeconfig(directory: Path, user: dict[str, object]) -> Path:
    config = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443/", "insecure-skip-tls-verify": True}}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }
    path = directory / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def outside_a_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_PORT", raising=False)


def test_a_token_file_is_read_again_after_a_401_once_for_all_refused_requests(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, outside_a_cluster: None) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("first-token\n")
    monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path, {"tokenFile": str(token_file)})))
    login = ClusterLogin()

    async def scenario() -> None:
        first = await login.current()
        assert first.token == "first-token" and first.server == "https://127.0.0.1:6443" and first.insecure
        token_file.write_text("second-token\n")  # replaced (rotated, or revoked and re-issued)
        # Ten requests refused at once with the first token: one login, everyone gets the second.
        login._logged_in -= 5  # the previous login was long ago, not within the last second
        fresh = await asyncio.gather(*(login.rejected(first) for _ in range(10)))
        assert {c.token for c in fresh} == {"second-token"}
        assert login.logins == 2
        assert (await login.current()).token == "second-token"

    asyncio.run(scenario())
    # kopf's login handler gets the very same credentials (kopf re-asks after its own 401s).
    token_file.write_text("third-token\n")
    info = login.connection_info()
    assert info.token == "third-token" and info.server == "https://127.0.0.1:6443"


def test_fixed_credentials_are_their_own_source_and_a_401_stays_a_401() -> None:
    fixed = Credentials(server="https://127.0.0.1:6443", token="t")

    async def scenario() -> None:
        assert await fixed.current() is fixed
        assert await fixed.rejected(fixed) is fixed

    asyncio.run(scenario())
    assert fixed.authorization == "Bearer t"


def test_retry_after_is_honoured_with_jitter_and_bounded() -> None:
    assert 3.0 <= retry_delay(0, "3", rand=lambda: 0.0) <= retry_delay(0, "3", rand=lambda: 0.999) < 3.76
    assert retry_delay(0, "3600", rand=lambda: 0.0) == RETRY_AFTER_CAP  # a reconcile waits at most this long
    soon = email.utils.format_datetime(datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=4),
                                       usegmt=True)
    assert 2.5 <= retry_delay(0, soon, rand=lambda: 0.0) <= 4.0
    assert retry_delay(0, "0", rand=lambda: 0.5) == 0.0


def test_without_retry_after_the_back_off_grows_exponentially_with_jitter_up_to_a_cap() -> None:
    lows = [retry_delay(n, None, rand=lambda: 0.0) for n in range(8)]
    highs = [retry_delay(n, None, rand=lambda: 1.0) for n in range(8)]
    assert lows[:3] == [0.1, 0.2, 0.4] and highs[:3] == [0.2, 0.4, 0.8]
    assert max(highs) == RETRY_CAP and all(low >= high / 2 for low, high in zip(lows, highs, strict=True))
    assert retry_delay(2, "not a date", rand=lambda: 0.0) == 0.4  # an unreadable header: the back-off


def test_a_kubeconfig_with_inline_ca_data_is_one_server_however_often_it_is_loaded(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, outside_a_cluster: None) -> None:
    """certificate-authority-data is written to a new temporary file at every load: compared by path, each
    re-login looked like a new server (a new connection pool, every watch cut). And kopf's login must
    carry the CA too, or kopf cannot verify the API server at all (it then gives up and stops the operator)."""
    ca = make_cert("kube-ca", ca=True)
    config = yaml.safe_load(write_kubeconfig(tmp_path, {"token": "t"}).read_text())
    config["clusters"][0]["cluster"] = {"server": "https://127.0.0.1:6443",
                                        "certificate-authority-data": base64.b64encode(cert_pem(ca.cert)).decode()}
    (tmp_path / "kubeconfig").write_text(yaml.safe_dump(config))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "kubeconfig"))
    login = ClusterLogin()
    first, second = login.login(), login.login()
    assert first.transport == second.transport
    assert first.ca_data == cert_pem(ca.cert) and not first.insecure
    info = login.connection_info()
    assert info.ca_data == cert_pem(ca.cert) or (info.ca_path and Path(info.ca_path).read_bytes() == cert_pem(ca.cert))
