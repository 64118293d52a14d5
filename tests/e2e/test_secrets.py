"""No configured secret in any log of a lab run at debug level (issue 14, finding 6).

The whole stack in the lab, its three daemons at DEBUG (kazoo's packets included), with every
kind of secret configured: ZooKeeper passwords (the daemons', the shared operator's, an
operator's own), the API's signing keys, TOTP secrets (the API's key and the operator's) and
the TSIG key. The operator works through the CLI (with its identity and second factor) and
through the signed API; then every log the lab kept is searched for every secret and for the
digests ZooKeeper's ACLs carry (they can be searched offline)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest
from kazoo.security import make_digest_acl_credential

from failover.api.auth import read_keys, signed_headers
from failover.lab.stack import OPERATOR_ERRORS, Stack, merged
from failover.testing.lab import unavailable
from failover.testing.servers.process import wait_until
from tests.e2e.conftest import E2E_OVERRIDES, post_in_client, running

pytestmark = [pytest.mark.lab, pytest.mark.slow]

ALICE_PASSWORD = "alice-Qm4vT8xK2pW7nR3zL9bH"
ALICE_TOTP = "KRSXG5CTMVRXEZLUKRSXG5CTMVRXEZLU"
API_TOTP = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


@pytest.fixture(scope="module")
def debug_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("lab-secrets")
    (folder / "alice.digest").write_text(f"alice:{ALICE_PASSWORD}\n")
    (folder / "lab.totp").write_text(f"ops-lab:{API_TOTP}\nalice:{ALICE_TOTP}\n")
    for secret in folder.iterdir():
        secret.chmod(0o600)
    overrides = merged(
        E2E_OVERRIDES,
        {
            "cluster": {
                "zookeeper": {
                    "operators": {"alice": {"credentials_file": str(folder / "alice.digest")}}
                },
                "api": {"totp_file": str(folder / "lab.totp"), "totp_actions": ["freeze"]},
            }
        },
    )
    stack = Stack(overrides, log_level="DEBUG")
    yield from running(stack)


def configured_secrets(stack: Stack) -> dict[str, str]:
    """Every secret the lab's config names, and the digest of each ZooKeeper identity."""
    zk, api = stack.config.cluster.zookeeper, stack.config.cluster.api
    found: dict[str, str] = {}
    files = {"daemon": zk.daemon_auth, "operator": zk.operator_auth}
    identities = {
        name: Path(auth.credentials_file).read_text().strip()
        for name, auth in files.items()
        if auth is not None
    }
    identities["alice"] = f"alice:{ALICE_PASSWORD}"
    for name, line in identities.items():
        user, _, password = line.partition(":")
        found[f"{name} ZooKeeper password"] = password
        digest = make_digest_acl_credential(user, password).partition(":")[2]
        found[f"{name} ZooKeeper digest"] = digest
    assert api.keys_file is not None and api.totp_file is not None
    for key_id, secret in read_keys(api.keys_file).items():
        found[f"API key {key_id}"] = secret
    for line in Path(api.totp_file).read_text().splitlines():
        key_id, _, secret = line.partition(":")
        found[f"TOTP secret of {key_id}"] = secret
    for group, spec in stack.config.groups.items():
        tsig = getattr(spec.steering, "tsig", None)
        if tsig is not None:
            found[f"TSIG key of {group}"] = Path(tsig.secret_file).read_text().strip()
    assert all(len(secret) >= 8 for secret in found.values()), found
    return found


def api_post(
    stack: Stack, instance: str, path: str, body: dict[str, Any], totp: str | None
) -> tuple[int, dict[str, Any]]:
    """A signed POST (with a second factor) to a daemon's API, from the client namespace."""
    api = stack.config.cluster.api
    assert api.keys_file is not None
    key_id, secret = next(iter(read_keys(api.keys_file).items()))
    text = json.dumps(body)
    address = stack.config.instances[instance].api
    headers = signed_headers(
        "POST", address, path, text, key_id, secret, api.credential_scope, totp=totp
    )
    return post_in_client(stack, instance, path, text.encode(), headers)


def frozen(stack: Stack) -> bool:
    return all(s is not None and s.frozen for s in (stack.desired(g) for g in stack.config.groups))


def test_no_configured_secret_in_any_log_of_a_debug_lab_run(debug_stack: Stack) -> None:
    stack = debug_stack
    stack.wait_steady("dc1", 60.0)
    alice = pyotp.TOTP(ALICE_TOTP)
    done = stack.cli("freeze", "--identity", "alice", "--totp", alice.now(), "--reason", "drill")
    assert done.returncode == 0, done.stdout + done.stderr
    wait_until(lambda: frozen(stack), 10.0, "frozen by alice", retry_on=OPERATOR_ERRORS)
    done = stack.cli("unfreeze", "--identity", "alice", "--reason", "drill over")
    assert done.returncode == 0, done.stdout + done.stderr
    wait_until(lambda: not frozen(stack), 10.0, "unfrozen", retry_on=OPERATOR_ERRORS)
    wrong = stack.cli("freeze", "--identity", "alice", "--totp", "000000")
    assert wrong.returncode == 1 and "wrong or expired second factor" in wrong.stdout
    instance = stack.instance_of("dc2")
    code, body = api_post(stack, instance, "/freeze", {"reason": "api"}, pyotp.TOTP(API_TOTP).now())
    assert code == 202, body
    wait_until(lambda: frozen(stack), 10.0, "frozen through the API", retry_on=OPERATOR_ERRORS)
    code, body = api_post(stack, instance, "/unfreeze", {"reason": "api over"}, None)
    assert code == 202, body
    wait_until(lambda: not frozen(stack), 10.0, "unfrozen", retry_on=OPERATOR_ERRORS)
    stack.wait_steady("dc1", 30.0)  # DNS steered (TSIG) and BGP applied at least once
    time.sleep(1.0)

    logs = {d.instance: d.log_path.read_text(errors="replace") for d in stack.daemons.values()}
    for path in sorted(stack.lab.run_dir.glob("*/*.log")):
        logs.setdefault(str(path), path.read_text(errors="replace"))
    assert all('"level": "debug"' in logs[d] for d in stack.daemons), "not at debug level"
    for instance in stack.daemons:  # kazoo logged its auth packet, and it was redacted
        assert "auth='***'" in logs[instance], f"no redacted auth packet in {instance}'s log"
    secrets = configured_secrets(stack)
    found = [
        f"the {what} is in {where}"
        for where, text in logs.items()
        for what, secret in secrets.items()
        if secret in text
    ]
    assert found == [], found
