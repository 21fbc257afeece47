#!/usr/bin/env python3
"""Validates client events the bridge sent against the `openai` package's own GA types.

Reads JSON lines (one client event each) and checks each with pydantic's TypeAdapter over
`openai.types.realtime.RealtimeClientEvent`. pydantic keeps undeclared fields, so every parsed model
(nested ones too) is also checked for keys that land in `model_extra`. Exit 0 when all pass.
"""
import json
import sys

from pydantic import BaseModel, TypeAdapter
from openai.types.realtime import RealtimeClientEvent

ADAPTER = TypeAdapter(RealtimeClientEvent)


def extras(model, path="event"):
    """Yields (path, key) for every undeclared field anywhere in the parsed model."""
    if isinstance(model, BaseModel):
        for key in (model.model_extra or {}):
            yield path, key
        for name in type(model).model_fields:
            yield from extras(getattr(model, name), f"{path}.{name}")
    elif isinstance(model, (list, tuple)):
        for i, item in enumerate(model):
            yield from extras(item, f"{path}[{i}]")
    elif isinstance(model, dict):
        for k, v in model.items():
            yield from extras(v, f"{path}.{k}")


def main(path):
    failures = 0
    count = 0
    kinds = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            count += 1
            raw = json.loads(line)
            kinds[raw.get("type")] = kinds.get(raw.get("type"), 0) + 1
            try:
                event = ADAPTER.validate_python(raw)
            except Exception as e:  # pydantic.ValidationError
                failures += 1
                print(f"line {lineno}: {raw.get('type')}: invalid: {e}")
                continue
            bad = list(extras(event))
            if bad:
                failures += 1
                print(f"line {lineno}: {raw.get('type')}: undeclared fields: {bad}")
    print(f"validated {count} client events of {len(kinds)} types: {sorted(kinds)}")
    if count == 0:
        print("no events to validate")
        return 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
