"""Walking template.yaml: the resources a value refers to."""

from __future__ import annotations

from typing import Any


def _refs(value: Any) -> set[str]:
    """Every logical id a value mentions (Ref, GetAtt, ${X} / ${X.Attr} in Sub)."""
    import re

    found: set[str] = set()
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "Ref" and isinstance(v, str):
                found.add(v.split(".")[0])
            elif k == "Fn::GetAtt":
                found.add(v[0] if isinstance(v, list) else v.split(".")[0])
            elif k == "Fn::Sub":
                text = v if isinstance(v, str) else v[0]
                found |= {m.split(".")[0] for m in re.findall(r"\$\{([A-Za-z0-9.:]+)\}", text)}
                if not isinstance(v, str):
                    found |= _refs(v[1])
            else:
                found |= _refs(v)
    elif isinstance(value, list):
        for v in value:
            found |= _refs(v)
    return found
