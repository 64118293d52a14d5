"""The playbook expressions an SRE needs: bounds and windows, what routers announce and name
servers answer, counts, refused commands; each can fail, and bad ones are refused by path."""

from __future__ import annotations

from pathlib import Path

import pytest

from failover.config import ConfigError
from failover.sim.playbook import load_playbook
from failover.sim.run import run_playbook
from tests.sim.conftest import REFERENCE, ROOT

SRE = ROOT / "playbooks" / "what-an-sre-checks.yaml"


def judged(tmp_path: Path, *expectations: str) -> dict[str, bool]:
    """Each expectation's verdict over the SRE playbook's method."""
    text = (
        SRE.read_text()
        .split("expectations:")[0]
        .replace("topology: ../simulations/reference.yaml", f"topology: {REFERENCE.as_posix()}")
    )
    body = "\n".join(f"  - {e}" for e in expectations)
    path = tmp_path / "book.yaml"
    path.write_text(text + "expectations:\n" + body + "\n")
    outcome = run_playbook(load_playbook(path))
    return {v.name: v.passed for v in outcome.expectations}


def test_each_new_expression_can_fail(tmp_path: Path) -> None:
    verdicts = judged(
        tmp_path,
        "{expect: active == dc2 within 10 s not before 6 s, from: db stops}",
        '{expect: "announced(web, dc1) == primary within 10 s", from: db stops}',
        "dns(mail) == dc2",
        "{expect: switches == 0 between 0 s and 10 s, from: db stops}",
        "{expect: switches == 1 between 0 s and 10 s, from: db stops}",
        "refused(switchover to dc1) naming target_healthy",
        "refused(switchover to dc2)",
        "decisions(desired) <= 1",
        "dual_primary_s > 0",
    )
    assert verdicts == {
        "active == dc2 within 10 s not before 6 s": False,  # it came after about 4 s
        "announced(web, dc1) == primary within 10 s": False,  # it was already primary before
        "dns(mail) == dc2": False,
        "switches == 0 between 0 s and 10 s": False,
        "switches == 1 between 0 s and 10 s": True,
        "refused(switchover to dc1) naming target_healthy": False,  # refused for `target`
        "refused(switchover to dc2)": False,
        "decisions(desired) <= 1": False,
        "dual_primary_s > 0": False,
    }


@pytest.mark.parametrize(
    ("expectation", "message"),
    [
        ("announced(mail, dc1) == primary", "group mail is not steered by BGP"),
        ("announced(web, witness) == primary", "'witness' is not a site of group web"),
        ("dns(web) == dc1", "group web is not steered by DNS"),
        ("dns(mail, 10.9.9.9) == dc1", "'10.9.9.9' is not a name server of group mail"),
        ("decisions(sometimes) <= 1", "decisions needs one kind"),
        ("active == dc2 between 1 s and 2 s", "`between A s and B s`"),
        ("switches == 0 between 9 s and 2 s", "`between A s and B s`"),
        ("switches == 0 not before 3 s", "`within` and `not before`"),
        ("refused(switchover to dc9)", "'dc9' is not a serving site"),
    ],
)
def test_a_bad_expression_is_refused_by_its_path(
    tmp_path: Path, expectation: str, message: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        f"title: bad\ntopology: {REFERENCE.as_posix()}\nduration_s: 10\n"
        "method: [{at_s: 1, fault: {kind: freeze}}]\n"
        f"expectations: ['{expectation}']\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_playbook(path)
    assert any(
        p.path.startswith("expectations.0") and message in p.message for p in caught.value.problems
    ), caught.value.problems


def test_from_a_faults_end_needs_a_step_of_that_name(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        f"title: bad\ntopology: {REFERENCE.as_posix()}\nduration_s: 10\n"
        "method: [{name: cut, at_s: 1, fault: {kind: freeze}}]\n"
        "expectations: [{expect: switches == 0 between 0 s and 1 s, "
        "from: nothing end}]\n"
    )
    with pytest.raises(ConfigError, match=r"expectations\.0\.from"):
        load_playbook(path)


def test_the_playbook_reference_is_current() -> None:
    from failover.sim.reference import markdown

    assert (ROOT / "docs" / "playbooks.md").read_text() == markdown(), (
        "docs/playbooks.md is stale: python -m failover.sim.reference > docs/playbooks.md"
    )


def test_a_playbook_chooses_its_leader_and_hits_a_role_holder() -> None:
    outcome = run_playbook(load_playbook(ROOT / "playbooks" / "witness-leads-agent-frozen.yaml"))
    assert outcome.passed, outcome.expectations
    assert "dc1-a frozen" in outcome.trace and "[leader witness-a]" in outcome.trace


@pytest.mark.parametrize(
    ("line", "path"),
    [
        ("leader: dc9-a\n", "leader"),
        ("leader: witness-a\n", None),
    ],
)
def test_the_leader_must_be_an_instance_that_may_lead(
    tmp_path: Path, line: str, path: str | None
) -> None:
    book = tmp_path / "book.yaml"
    book.write_text(
        f"title: t\ntopology: {REFERENCE.as_posix()}\n{line}duration_s: 10\n"
        "method: [{at_s: 1, fault: {kind: daemon_pause, instance: 'agent:dc9'}}]\n"
        "expectations: [no_violations]\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_playbook(book)
    paths = {p.path for p in caught.value.problems}
    assert "method.0.fault.instance" in paths
    assert (path in paths) if path else ("leader" not in paths)
