"""Least privilege over the API: PUT /workflows refuses a write through a read-only connector
(422 naming the field), GET /connectors lists the grants no step needs, a widening is audited."""

from __future__ import annotations

import json

from tests.http.conftest import Api

UPDATE_CRM = {"name": "Update", "tool": "salesforce.update", "connector": "crm", "access": "write"}


async def test_a_write_through_a_read_only_connector_is_422(api: Api) -> None:
    body = {"key": "crm-update", "name": "CRM update", "steps": [UPDATE_CRM]}
    refused = await api.call("PUT", "/workflows/crm-update", body)
    assert refused.status == 422
    why = (
        "connector 'crm' is granted read only (scopes: read); grant write in the source system "
        "and re-apply the connector, or make the step read"
    )
    assert refused.json["fields"] == {"steps.0.access": why}
    assert (await api.call("GET", "/workflows/crm-update")).status == 404

    crm = {"key": "crm", "toolkit": "salesforce", "account": "acme/crm", "scopes": ["read", "*"]}
    assert (await api.call("PUT", "/connectors/crm", crm)).status == 200
    events = await api.call("GET", "/audit", params={"entity": "connector:crm"})
    last = json.loads(events.text.splitlines()[-1])
    assert (last["summary"], json.loads(last["data"])["widened"]) == (
        "connector crm (salesforce) changed: scopes; scopes widened: +*",
        ["*"],
    )
    assert (await api.call("PUT", "/workflows/crm-update", body)).status == 201


async def test_connectors_list_the_grants_no_step_needs(api: Api) -> None:
    mail = {"key": "mail", "toolkit": "gmail", "account": "ops@acme.example", "scopes": ["send"]}
    assert (await api.call("PUT", "/connectors/mail", mail)).status == 201
    put = await api.call("PUT", "/connectors/mail", {**mail, "scopes": ["read", "write:#ops"]})
    assert "over_privileged" not in put.json, "listed connectors only"
    listed = await api.call("GET", "/connectors")
    assert listed.status == 200
    assert {c["key"]: c["over_privileged"] for c in listed.json["items"]} == {
        "crm": [],
        "mail": ["write:#ops"],
        "sheets": [],
    }
