"""Transform template.yaml offline with aws-sam-translator and evaluate the CloudFormation it produces.

The translator is what CloudFormation's SAM transform runs, so the tests see the real generated
RestApi body, usage plan, aliases and CodeDeploy groups. ``Stack.resolve`` then evaluates the intrinsic
functions (Ref, Sub, Join, Split, Select, If, FindInMap, GetAtt) for one set of parameters, so IAM resources are
asserted as the concrete ARNs CloudFormation would create, for each configuration we care about.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import boto3
import pytest
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator
from samtranslator.utils.py27hash_fix import to_py27_compatible_template, undo_mark_unicode_str_in_template
from samtranslator.yaml_helper import yaml_parse

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "template.yaml"
REGION = "us-east-1"
ACCOUNT = "123456789012"
PSEUDO = {
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT,
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": "omnisearch-embed-test",
}
MODEL_DATA_URL = "s3://omni-models/clip/vit-b-32/model.tar.gz"
BASE_PARAMS = {"ModelDataUrl": MODEL_DATA_URL}
NO_VALUE = object()


@functools.cache
def raw_template() -> dict[str, Any]:
    return yaml_parse(TEMPLATE_PATH.read_text())


def _translate(params_items: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    template = copy.deepcopy(raw_template())
    # `sam package` replaces local code paths with S3 URIs before CloudFormation sees the template.
    for resource in template["Resources"].values():
        props = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if isinstance(props.get(key), str) and not props[key].startswith("s3://"):
                props[key] = f"s3://package-bucket/{props[key]}.zip"
        # ... and names the image it pushed for a function packaged as a container image.
        if props.get("PackageType") == "Image":
            props["ImageUri"] = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/omnisearch-embed-model:packaged"
    params = dict(params_items)
    to_py27_compatible_template(template, params)
    translator = Translator({}, Parser(), boto_session=boto3.Session(region_name=REGION))
    return undo_mark_unicode_str_in_template(translator.translate(template, parameter_values=params))


_translate_cached = functools.lru_cache(maxsize=8)(_translate)


class Stack:
    """The transformed template plus an evaluator of its intrinsics for one parameter set."""

    def __init__(self, params: Mapping[str, str]) -> None:
        self.template = copy.deepcopy(_translate_cached(tuple(sorted(params.items()))))
        self.resources: dict[str, dict[str, Any]] = self.template["Resources"]
        self.params = self._parameter_values(params)

    def _parameter_values(self, given: Mapping[str, str]) -> dict[str, str]:
        values = {}
        for name, spec in self.template["Parameters"].items():
            value = given.get(name, spec.get("Default"))
            assert value is not None, f"parameter {name} has no default and the test gave none"
            values[name] = str(value)
        return values

    # ---- lookups -------------------------------------------------------------------------------------
    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {name: r for name, r in self.resources.items() if r["Type"] == resource_type}

    def created(self, resource_type: str) -> dict[str, dict[str, Any]]:
        """The resources of that type CloudFormation creates with these parameters (their Condition holds)."""
        return {
            name: r
            for name, r in self.of_type(resource_type).items()
            if "Condition" not in r or self.condition(r["Condition"])
        }

    def one(self, resource_type: str) -> tuple[str, dict[str, Any]]:
        found = self.of_type(resource_type)
        assert len(found) == 1, f"expected one {resource_type}, found {sorted(found)}"
        return next(iter(found.items()))

    def props(self, logical_id: str) -> dict[str, Any]:
        return self.resolve(self.resources[logical_id].get("Properties", {}))

    def prefixed(self, prefix: str, resource_type: str) -> str:
        """Logical id of a SAM-generated resource whose id carries a hash suffix (versions, layers)."""
        found = [n for n, r in self.resources.items() if n.startswith(prefix) and r["Type"] == resource_type]
        assert len(found) == 1, (prefix, resource_type, found)
        return found[0]

    # ---- intrinsics ----------------------------------------------------------------------------------
    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.template["Conditions"][name]))

    def resolve(self, value: Any) -> Any:
        out = self._resolve(value)
        return None if out is NO_VALUE else out

    def _resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [v for v in (self._resolve(x) for x in value) if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self._ref(arg)
            if key == "Fn::GetAtt":
                name, attr = arg if isinstance(arg, list) else arg.split(".", 1)
                return self._get_att(name, attr)
            if key == "Fn::Sub":
                return self._sub(arg)
            if key == "Fn::Join":
                sep, items = arg
                return sep.join(str(x) for x in self._resolve(items))
            if key == "Fn::Split":
                sep, text = arg
                return str(self._resolve(text)).split(sep)
            if key == "Fn::Select":
                index, items = arg
                return self._resolve(items)[int(self._resolve(index))]
            if key == "Fn::FindInMap":
                mapping, top, second = (self._resolve(x) for x in arg)
                return self.template["Mappings"][mapping][top][second]
            if key == "Fn::If":
                cond, yes, no = arg
                return self._resolve(yes if self.condition(cond) else no)
            if key == "Fn::Equals":
                left, right = (self._resolve(x) for x in arg)
                return str(left) == str(right)
            if key == "Fn::Not":
                return not self._resolve(arg[0])
            if key == "Fn::And":
                return all(self._resolve(x) for x in arg)
            if key == "Fn::Or":
                return any(self._resolve(x) for x in arg)
            if key == "Condition":
                return self.condition(arg)
            assert not key.startswith("Fn::"), f"unsupported intrinsic {key}"
        return {k: v for k, v in ((k, self._resolve(v)) for k, v in value.items()) if v is not NO_VALUE}

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in PSEUDO:
            return PSEUDO[name]
        if name in self.params:
            return self.params[name]
        assert name in self.resources, f"Ref to unknown {name}"
        return f"<{name}>"

    def _get_att(self, name: str, attr: str) -> str:
        assert name in self.resources, f"GetAtt to unknown {name}"
        resource = self.resources[name]
        if resource["Type"] == "AWS::Logs::LogGroup" and attr == "Arn":
            group = self.resolve(resource["Properties"]["LogGroupName"])
            return f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{group}:*"
        return f"<{name}.{attr}>"

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
        local = {k: self._resolve(v) for k, v in variables.items()}

        def replace(match: re.Match[str]) -> str:
            token = match.group(1)
            if token.startswith("!"):
                return "${" + token[1:] + "}"
            if token in local:
                return str(local[token])
            if "." in token:
                name, attr = token.split(".", 1)
                return self._get_att(name, attr)
            return str(self._ref(token))

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    # ---- helpers for exact comparisons ---------------------------------------------------------------
    @staticmethod
    def statements(policy_document: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Statements with Action/Resource normalised to sorted lists."""
        out = []
        for st in policy_document["Statement"]:
            st = dict(st)
            for key in ("Action", "Resource"):
                if key in st:
                    st[key] = sorted([st[key]] if isinstance(st[key], str) else st[key])
            out.append(st)
        return out

    @staticmethod
    def filled_json(text: str) -> Any:
        """Parse a gateway-response or access-log template once API Gateway fills in its variables."""
        filled = text.replace("$context.error.messageString", json.dumps("an error"))
        return json.loads(re.sub(r"\$context\.[A-Za-z.]+", "x", filled))


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    """The template as written (before the SAM transform)."""
    return raw_template()


@pytest.fixture
def stack() -> Stack:
    """Default parameters (what `sam deploy` gets with only ModelDataUrl set)."""
    return Stack(BASE_PARAMS)


@pytest.fixture
def make_stack() -> Any:
    def make(**overrides: str) -> Stack:
        return Stack({**BASE_PARAMS, **overrides})

    return make
