"""The config reference is generated from the models and current; `grodt config check` and
`grodt config schema` work on every shipped config."""

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from grodt.cli import main
from node_configs.live_schema import LiveNodeSpec
from node_configs.loader import load_yaml_document
from node_configs.reference import field_meaning
from node_configs.reference import node_json_schema
from node_configs.reference import reference_markdown
from node_configs.reference import section_models
from node_configs.schema import BacktestNodeSpec

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "configs.md"
CONFIGS = sorted((REPO / "node_configs").glob("*/*.yaml"))
NODE_CONFIGS = [p for p in CONFIGS if p.parent.name in ("backtest", "live")]


def test_docs_configs_md_is_current():
    assert DOC.read_text(encoding="utf-8") == reference_markdown(), (
        "docs/configs.md is stale: run `grodt config reference --write docs/configs.md`"
    )


def _all_models():
    seen, queue = [], [BacktestNodeSpec, LiveNodeSpec, *section_models().values()]
    while queue:
        model = queue.pop()
        if model in seen:
            continue
        seen.append(model)
        for field in model.model_fields.values():
            queue.extend(_models_in(field.annotation))
    return seen


def _models_in(annotation):
    from typing import get_args

    from pydantic import BaseModel

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in _models_in(arg)]


def test_every_field_has_a_meaning():
    models = _all_models()
    assert len(models) > 20
    missing = [
        f"{model.__name__}.{name}"
        for model in models
        for name, field in model.model_fields.items()
        if not field_meaning(model, name, field)
    ]
    assert not missing, f"fields without a description: {missing}"


def test_json_schema_types_the_sections_and_names_both_node_kinds():
    result = CliRunner().invoke(main, ["config", "schema"])
    assert result.exit_code == 0, result.output
    schema = json.loads(result.output)
    assert schema == json.loads(json.dumps(node_json_schema()))
    definitions = schema["$defs"]
    assert {"BacktestNodeSpec", "LiveNodeSpec", "RiskConfig", "ForensicsSection"} <= set(
        definitions
    )
    risk = definitions["BacktestNodeSpec"]["properties"]["risk"]
    assert {"$ref": "#/$defs/RiskConfig"} in risk["anyOf"]
    assert definitions["VenueSpec"]["additionalProperties"] is False


def _schema_accepts(schema: dict, document: dict) -> list[str]:
    """Check keys against the schema's object definitions (the structure an editor validates):
    every key of every mapping must be a declared property. Returns the paths of unknown keys."""
    definitions = schema["$defs"]

    def resolve(node: dict) -> list[dict]:
        if "$ref" in node:
            return resolve(definitions[node["$ref"].rsplit("/", 1)[1]])
        options = node.get("anyOf") or node.get("oneOf")
        if options:
            return [found for option in options for found in resolve(option)]
        return [node]

    unknown: list[str] = []

    def visit(value, node: dict, path: str) -> None:
        candidates = resolve(node)
        if isinstance(value, dict):
            objects = [c for c in candidates if c.get("type") == "object" and "properties" in c]
            if "type" in value and len(objects) > 1:  # discriminated clients
                objects = [
                    c for c in objects if value["type"] == c["properties"]["type"].get("const")
                ] or objects
            if not objects:
                return
            properties = objects[0]["properties"]
            for key, item in value.items():
                if key not in properties:
                    unknown.append(f"{path}.{key}")
                else:
                    visit(item, properties[key], f"{path}.{key}")
        elif isinstance(value, list):
            arrays = [c for c in candidates if c.get("type") == "array" and "items" in c]
            for index, item in enumerate(value):
                if arrays:
                    visit(item, arrays[0]["items"], f"{path}[{index}]")

    kind = "LiveNodeSpec" if document.get("kind") == "live" else "BacktestNodeSpec"
    visit(document, {"$ref": f"#/$defs/{kind}"}, "")
    return unknown


@pytest.mark.parametrize("path", NODE_CONFIGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_shipped_config_checks_and_fits_the_schema(path):
    assert NODE_CONFIGS, "no node configs found"
    result = CliRunner().invoke(main, ["config", "check", str(path), "--no-catalog"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"ok: {path}")
    document = json.loads(json.dumps(load_yaml_document(path), default=str))
    assert _schema_accepts(node_json_schema(), document) == []


def test_config_check_exits_2_naming_the_field(tmp_path):
    document = yaml.safe_load((REPO / "node_configs/backtest/ema_cross_sp500.yaml").read_text())
    document["venues"] = [{"name": "SAMPLE", "starting_balances": ["1 USD"], "oms_typ": "NETTING"}]
    document["strategies"][0]["include"] = str(
        REPO / "node_configs/components/strategies/ema_cross_spx.yaml"
    )
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(document))
    result = CliRunner().invoke(main, ["config", "check", str(path), "--no-catalog"])
    assert result.exit_code == 2
    assert "venues[0].oms_typ" in result.output
    fixed = CliRunner().invoke(
        main,
        [
            "config",
            "check",
            str(path),
            "--no-catalog",
            "--set",
            "venues[0]={name: SAMPLE, starting_balances: ['1 USD']}",
        ],
    )
    assert fixed.exit_code == 0, fixed.output
