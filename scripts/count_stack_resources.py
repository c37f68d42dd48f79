"""How many resources the stack has after the SAM transform, by SAM's own translator (CloudFormation allows 500).

Run with aws-sam-cli's Python, which has ``samtranslator`` and ``cfnlint``; .ci/run does:

    ~/.cache/tahsil-samvenv/bin/python scripts/count_stack_resources.py template.yaml

Prints the total and the count per type, and exits 1 at or over ``--limit`` (default 480: room for a
feature's functions before CloudFormation's hard 500). Local paths (CodeUri, ContentUri) are replaced by a
placeholder S3 URI, as ``sam build`` and ``sam package`` would; nothing is sent anywhere.
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import os
import sys

from cfnlint.decode import decode
from samtranslator.public.exceptions import InvalidDocumentException
from samtranslator.translator.transform import transform


class _NoManagedPolicies:
    """The template names its managed policies by ARN or !Ref: the translator needs no lookup."""

    def load(self) -> dict[str, str]:
        return {}


def translate(path: str) -> dict:
    template, problems = decode(path)
    if problems:
        raise SystemExit("\n".join(str(p) for p in problems))
    for resource in template["Resources"].values():
        props = resource.get("Properties") or {}
        for key in ("CodeUri", "ContentUri", "DefinitionUri"):
            if isinstance(props.get(key), str) and not props[key].startswith("s3://"):
                props[key] = "s3://placeholder/key"
    parameters = {"AWS::Region": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"), "AWS::AccountId": "123456789012",
                  "AWS::Partition": "aws"}
    try:
        return transform(json.loads(json.dumps(template, default=str)), parameters, _NoManagedPolicies())
    except InvalidDocumentException as exc:
        raise SystemExit("\n".join(cause.message for cause in exc.causes)) from exc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("template", nargs="?", default="template.yaml")
    parser.add_argument("--limit", type=int, default=480)
    args = parser.parse_args()
    logging.getLogger("samtranslator").setLevel(logging.ERROR)  # feature-toggle notices, not findings
    out = translate(args.template)
    counts = collections.Counter(r["Type"] for r in out["Resources"].values())
    total = sum(counts.values())
    for kind, n in counts.most_common():
        print(f"{n:5d}  {kind}")
    print(f"{total:5d}  resources after the SAM transform (limit {args.limit}; CloudFormation allows 500)")
    return 0 if total < args.limit else 1


if __name__ == "__main__":
    sys.exit(main())
