"""The Zendesk stand-in serves users, organizations, side-loads and sorted, paginated comments —
checked with plain requests, and with the real connector (zenpy) over HTTP."""

from __future__ import annotations

import pytest
import requests

from connectors.errors import NotFoundError
from connectors.models import TicketPeople
from connectors.settings import ZendeskSettings
from connectors.zendesk import ZendeskConnector
from sandbox import Sandbox, ZendeskError


def seed(sb: Sandbox) -> int:
    sb.zendesk.create_organization({"id": 501, "name": "Globex", "tags": ["Enterprise"],
                                    "organization_fields": {"plan_tier": "enterprise"}})
    sb.zendesk.create_user({"id": 7501, "name": "Dana Reyes", "email": "dana@globex.example",
                            "tags": ["vip"], "organization_id": 501,
                            "user_fields": {"seats": 250}})
    ticket = sb.zendesk.create_ticket({"subject": "Import fails", "description": "E1042",
                                       "requester_id": 7501, "organization_id": 501})
    return int(ticket["id"])


def connector(sb: Sandbox) -> ZendeskConnector:
    return ZendeskConnector(ZendeskSettings(
        subdomain="sandbox", email="agent@example.com", api_token="zd-token",
        base_url=sb.zendesk_url, user_fields=("seats",), organization_fields=("plan_tier",)))


def test_users_and_organizations_are_served_in_zendesk_shape(
        sb: Sandbox, zd: requests.Session) -> None:
    seed(sb)
    user = zd.get(f"{sb.zendesk_url}/api/v2/users/7501.json").json()["user"]
    org = zd.get(f"{sb.zendesk_url}/api/v2/organizations/501.json").json()["organization"]
    assert user["name"] == "Dana Reyes" and user["role"] == "end-user"
    assert user["user_fields"] == {"seats": 250} and user["tags"] == ["vip"]
    assert org["organization_fields"] == {"plan_tier": "enterprise"}
    assert org["tags"] == ["enterprise"]  # tags are lower-cased, as Zendesk does
    missing = zd.get(f"{sb.zendesk_url}/api/v2/users/999.json")
    assert missing.status_code == 404
    assert missing.json() == {"error": "RecordNotFound", "description": "Not found"}


def test_ticket_show_side_loads_its_users_and_organization(
        sb: Sandbox, zd: requests.Session) -> None:
    ticket_id = seed(sb)
    body = zd.get(f"{sb.zendesk_url}/api/v2/tickets/{ticket_id}.json",
                  params={"include": "users,organizations"}).json()
    assert body["ticket"]["id"] == ticket_id
    assert [u["id"] for u in body["users"]] == [7501]
    assert [o["id"] for o in body["organizations"]] == [501]
    plain = zd.get(f"{sb.zendesk_url}/api/v2/tickets/{ticket_id}.json").json()
    assert set(plain) == {"ticket"}


def test_comments_sort_newest_first_and_paginate_by_cursor(
        sb: Sandbox, zd: requests.Session) -> None:
    ticket_id = seed(sb)
    for n in range(3):
        sb.zendesk.update_ticket(ticket_id, {"comment": {"body": f"reply {n}", "public": True}})
    url = f"{sb.zendesk_url}/api/v2/tickets/{ticket_id}/comments.json"
    first = zd.get(url, params={"sort": "-created_at", "page[size]": 2}).json()
    assert [c["body"] for c in first["comments"]] == ["reply 2", "reply 1"]
    assert first["meta"]["has_more"] is True
    second = zd.get(first["links"]["next"]).json()
    assert [c["body"] for c in second["comments"]] == ["reply 0", "E1042"]
    assert second["meta"]["has_more"] is False and second["links"]["next"] is None
    offset = zd.get(url, params={"sort_order": "desc"}).json()
    assert offset["comments"][0]["body"] == "reply 2" and offset["next_page"] is None
    oldest = zd.get(url).json()
    assert oldest["comments"][0]["body"] == "E1042"


@pytest.mark.parametrize("params", [
    {"sort": "updated_at"}, {"sort_order": "sideways"}, {"page[size]": 0},
    {"page[size]": 101}, {"page[size]": 2, "page[after]": "!!"},
])
def test_bad_comment_listing_parameters_get_400(
        sb: Sandbox, zd: requests.Session, params: dict[str, object]) -> None:
    ticket_id = seed(sb)
    response = zd.get(f"{sb.zendesk_url}/api/v2/tickets/{ticket_id}/comments.json",
                      params=params)
    assert response.status_code == 400


def test_the_real_connector_reads_ticket_people_and_comments_from_the_sandbox(
        sb: Sandbox) -> None:
    ticket_id = seed(sb)
    sb.zendesk.update_ticket(ticket_id, {"comment": {"body": "internal", "public": False}})
    zd = connector(sb)
    ticket, people = zd.get_ticket_and_people(ticket_id)
    assert ticket.requester_id == 7501
    assert people.requester is not None and people.requester.fields == {"seats": 250}
    assert people.organization is not None and people.organization.name == "Globex"
    assert dict(people.organization.fields) == {"plan_tier": "enterprise"}
    comments = zd.recent_comments(ticket_id)
    assert [(c.body, c.public) for c in comments] == [("internal", False), ("E1042", True)]
    assert comments[0].author_id == sb.zendesk.agent_author_id


def test_the_connector_sees_a_deleted_requester_as_none(sb: Sandbox) -> None:
    ticket_id = seed(sb)
    sb.zendesk.delete_user(7501)
    zd = connector(sb)
    assert zd.get_people(ticket_id, 7501, 501).requester is None
    with pytest.raises(NotFoundError):
        zd.get_user(7501)


def test_default_users_exist_and_organizations_need_a_name(sb: Sandbox) -> None:
    assert sb.zendesk.user(sb.zendesk.requester_id)["role"] == "end-user"
    with pytest.raises(ZendeskError):
        sb.zendesk.create_organization({"name": ""})
    zd = connector(sb)
    ticket = sb.zendesk.create_ticket({"subject": "s", "description": "d"})
    people = zd.get_people(int(ticket["id"]), sb.zendesk.requester_id, None)
    assert people == TicketPeople(people.requester, None)
    assert people.requester is not None and people.requester.name == "Sandbox Customer"


def test_users_me_is_the_api_user_who_writes_the_hubs_comments(sb: Sandbox) -> None:
    zd = connector(sb)
    assert zd.own_user_id() == sb.zendesk.api_author_id
