"""`failover schema` and docs/config.md: every field explained, the doc current, the schema
accepting the example and refusing what the loader refuses."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import yaml
from click.testing import CliRunner

from failover.cli import cli
from failover.config import reference

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "two-dc.yaml"


def test_every_field_has_a_meaning_and_every_meaning_a_field() -> None:
    fields = {
        f"{reference.owner(cls, field)}.{field}"
        for cls in reference.models().values()
        for field in cls.model_fields
    }
    assert sorted(fields - set(reference.MEANINGS)) == []
    assert sorted(set(reference.MEANINGS) - fields) == []
    assert set(reference.UNITS) <= fields


def test_docs_config_md_is_current() -> None:
    result = CliRunner().invoke(cli, ["schema", "--markdown"])
    assert result.exit_code == 0
    checked_in = (ROOT / "docs" / "config.md").read_text(encoding="utf-8")
    assert checked_in == result.output, (
        "docs/config.md is stale: run `failover schema --markdown > docs/config.md`"
    )


def test_the_reference_documents_every_model_and_field() -> None:
    text = reference.markdown()
    for name, cls in reference.models().items():
        assert f"\n## {name}\n" in text, name
        for field in cls.model_fields:
            if name == "CheckBase" or reference.owner(cls, field) != "CheckBase":
                assert f"| `{field}` |" in text.split(f"\n## {name}\n")[1].split("\n## ")[0]
    assert "| `session_timeout_s` | number (> 0) | `4.0` | seconds |" in text


def schema() -> dict:  # type: ignore[type-arg]
    result = CliRunner().invoke(cli, ["schema"])
    assert result.exit_code == 0
    return json.loads(result.output)  # type: ignore[no-any-return]


def test_the_schema_accepts_the_example_and_describes_its_fields() -> None:
    checked = schema()
    jsonschema.Draft202012Validator.check_schema(checked)
    jsonschema.validate(yaml.safe_load(EXAMPLE.read_text()), checked)
    policy = checked["$defs"]["Policy"]["properties"]["hold_down_s"]
    assert policy["description"].endswith("Unit: seconds.")


def test_the_schema_refuses_what_the_loader_refuses() -> None:
    checked = schema()
    data = yaml.safe_load(EXAMPLE.read_text())
    data["policy"]["hold_down"] = 3  # unknown key (the unit suffix forgotten)
    errors = list(jsonschema.Draft202012Validator(checked).iter_errors(data))
    assert any("hold_down" in e.message for e in errors)
    data = yaml.safe_load(EXAMPLE.read_text())
    data["groups"]["web"]["steering"]["method"] = "ospf"
    assert list(jsonschema.Draft202012Validator(checked).iter_errors(data))
