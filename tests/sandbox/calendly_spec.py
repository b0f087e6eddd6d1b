"""Calendly's own OpenAPI 3.0 document as JSON Schema validators: load it, convert its schema
objects, find an operation by method and path, and validate a response body against it."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs
import yaml

SPEC_FILE = "openapi/calendly-api-v2.speakeasy-vendored.2023-04-11.yaml"
SCHEMAS_REF = "#/components/schemas/"
RESPONSES_REF = "#/components/responses/"

Json = dict[str, Any]

# JSON Schema keywords carried over as they are; everything else in an OpenAPI 3.0 schema
# object is an annotation (`example`, `x-*`, `discriminator`, …) or handled below.
KEPT = frozenset(
    {
        "type",
        "format",
        "pattern",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
        "minItems",
        "maxItems",
        "uniqueItems",
        "title",
        "description",
    }
)
SCHEMA_LISTS = ("allOf", "anyOf", "oneOf")


def to_json_schema(node: Json) -> Json:
    """One OpenAPI 3.0 schema object as draft-7 JSON Schema (refs point into `definitions`)."""
    if "$ref" in node:
        out: Json = {"$ref": "#/definitions/" + node["$ref"].removeprefix(SCHEMAS_REF)}
    else:
        out = {key: value for key, value in node.items() if key in KEPT}
    if isinstance(node.get("properties"), dict):
        out["properties"] = {name: to_json_schema(sub) for name, sub in node["properties"].items()}
    if isinstance(node.get("items"), dict):
        out["items"] = to_json_schema(node["items"])
    if isinstance(node.get("additionalProperties"), dict):
        out["additionalProperties"] = to_json_schema(node["additionalProperties"])
    elif isinstance(node.get("additionalProperties"), bool):
        out["additionalProperties"] = node["additionalProperties"]
    for key in SCHEMA_LISTS:
        if key in node:
            out[key] = [to_json_schema(sub) for sub in node[key]]
    # the spec's UNAUTHENTICATED response has `enum: "The access token is invalid"`, a string
    # where a list belongs; a malformed enum is dropped (FACTS §7 lists other 401 messages)
    if isinstance(node.get("enum"), list):
        out["enum"] = list(node["enum"])
    if node.get("required"):
        out["required"] = list(node["required"])
    return _nullable(out) if node.get("nullable") is True else out


def _nullable(schema: Json) -> Json:
    """`nullable: true`: null is allowed besides what the schema allows."""
    if "type" not in schema:
        return {"anyOf": [schema, {"type": "null"}]}
    nullable = {**schema, "type": [schema["type"], "null"]}
    if "enum" in nullable and None not in nullable["enum"]:
        nullable["enum"] = [*nullable["enum"], None]
    return nullable


@dataclass(frozen=True)
class Operation:
    """One documented operation."""

    method: str
    template: str
    responses: Json


class CalendlySpec:
    """The 2023 copy of Calendly's API spec, ready to validate sandbox responses."""

    def __init__(self, document: Json) -> None:
        self.document = document
        schemas = document["components"]["schemas"]
        self.definitions = {name: to_json_schema(schema) for name, schema in schemas.items()}
        self.operations = [
            Operation(method.upper(), template, op.get("responses", {}))
            for template, item in document["paths"].items()
            for method, op in item.items()
            if method in ("get", "post", "put", "patch", "delete")
        ]
        self._validators: dict[str, Any] = {}

    def operation(self, method: str, path: str) -> Operation | None:
        """The operation for a concrete path; literal segments beat parameters (/users/me)."""
        matches = [
            op for op in self.operations if op.method == method and _matches(op.template, path)
        ]
        return min(matches, key=lambda op: op.template.count("{"), default=None)

    def response(self, operation: Operation, status: int) -> Json | None:
        """The documented response for status (else `default`), $ref resolved."""
        response = operation.responses.get(str(status), operation.responses.get("default"))
        if response is None:
            return None
        ref = response.get("$ref")
        if ref:
            resolved: Json = self.document["components"]["responses"][
                ref.removeprefix(RESPONSES_REF)
            ]
            return resolved
        return dict(response)

    def validator(self, schema: Json) -> Any:
        """A format-checking draft-7 validator for a converted schema, with the components."""
        key = json.dumps(schema, sort_keys=True)
        if key not in self._validators:
            full = {**schema, "definitions": self.definitions}
            self._validators[key] = jsonschema_rs.Draft7Validator(full, validate_formats=True)
        return self._validators[key]

    def component(self, name: str) -> Json:
        """A components/schemas entry as a reference (for validator())."""
        return {"$ref": f"#/definitions/{name}"}

    def errors(self, schema: Json, instance: Any) -> list[str]:
        """Every violation of schema by instance, as `path: message` lines."""
        return [
            f"{'/'.join(map(str, error.instance_path)) or '<root>'}: {error.message}"
            for error in self.validator(schema).iter_errors(instance)
        ]


def response_schema(response: Json) -> Json | None:
    """The converted JSON body schema of a response (None when it documents no body)."""
    content = response.get("content", {}).get("application/json")
    if not content or "schema" not in content:
        return None
    return to_json_schema(content["schema"])


def _matches(template: str, path: str) -> bool:
    """Whether a concrete path fits an OpenAPI path template."""
    pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
    return re.fullmatch(pattern, path) is not None


@cache
def load_spec(shared_dir: Path) -> CalendlySpec:
    """Parse the 2023 spec copy under the shared folder."""
    with (shared_dir / SPEC_FILE).open(encoding="utf-8") as handle:
        return CalendlySpec(yaml.safe_load(handle))
