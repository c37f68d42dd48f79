"""tahsil.store.aws: the shared botocore session and its data loader (docs/decisions/cost.md, docs/decisions/cold-start.md)."""

from __future__ import annotations

from typing import Any

import botocore.loaders
import botocore.session
import pytest
from botocore.exceptions import UnknownServiceError

from tahsil.store import aws


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> Any:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_DATA_PATH", raising=False)
    aws.reset()
    yield aws
    aws.reset()


def test_the_loader_finds_the_same_models_as_botocores(fresh: Any) -> None:
    ours = fresh.session().get_component("data_loader")
    theirs = botocore.loaders.create_loader()
    for service in ("dynamodb", "sqs", "kms", "secretsmanager", "stepfunctions"):
        assert service in ours.list_available_services("service-2")
        assert ours.load_service_model(service, "service-2") == theirs.load_service_model(service, "service-2")
        assert (ours.load_service_model(service, "endpoint-rule-set-1")
                == theirs.load_service_model(service, "endpoint-rule-set-1"))
    assert ours.load_data("endpoints") == theirs.load_data("endpoints")
    # listing them all gives botocore's list
    assert sorted(ours.list_available_services("service-2")) == theirs.list_available_services("service-2")
    assert fresh.session().get_available_services() is not None


def test_an_unknown_service_is_still_refused_by_name(fresh: Any) -> None:
    with pytest.raises(UnknownServiceError) as caught:
        fresh.client("no-such-service")
    assert "no-such-service" in str(caught.value)
    assert "dynamodb" in str(caught.value)  # the known services, as botocore names them
    for name in ("", "../data", ".hidden", "dynamodb/2012-08-10"):
        assert name not in fresh.session().get_component("data_loader").list_available_services("service-2")


def test_clients_are_shared_and_made_from_one_session(fresh: Any) -> None:
    first = fresh.client("dynamodb")
    assert fresh.client("dynamodb") is first
    quick = fresh.client("sqs", quick=True)
    assert quick is not fresh.client("sqs")
    assert quick.meta.config.read_timeout == 2
    assert first.meta.service_model.service_name == "dynamodb"
    assert isinstance(fresh.session(), botocore.session.Session)


def test_aws_data_path_is_still_honoured(fresh: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setenv("AWS_DATA_PATH", str(tmp_path))
    fresh.reset()
    assert str(tmp_path) in fresh.session().get_component("data_loader").search_paths
