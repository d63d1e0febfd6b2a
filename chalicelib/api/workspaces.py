"""Workspaces: create, list, read, rename and delete them; list, add, change and remove members.

These routes name a workspace in the path, not the token's: their rules read the caller's
membership of it (chalicelib.workspaces.service), so any signed-in user may call them.
"""

from __future__ import annotations

from chalice.app import Response

from chalicelib.api.routing import ApiBlueprint, no_content
from chalicelib.openapi import Operation
from chalicelib.runtime import settings
from chalicelib.schemas import (
    MemberIn,
    MemberOut,
    MemberPage,
    MemberPatch,
    PageQuery,
    WorkspaceIn,
    WorkspaceOut,
    WorkspacePage,
)
from chalicelib.web import json_response
from chalicelib.workspaces import service

workspaces_api = ApiBlueprint(__name__)

WORKSPACE = "/workspaces/{workspace_id}"
MEMBERS = WORKSPACE + "/members"
MEMBER = MEMBERS + "/{user_id}"


@workspaces_api.operation(
    "/workspaces",
    ["POST"],
    Operation("Create a shared workspace (you own it)", "workspaces", 201, WorkspaceOut, WorkspaceIn,
              operation_id="createWorkspace", idempotent=True),
)  # fmt: skip
def create_workspace() -> Response:
    return json_response(service.create(workspaces_api.user(), workspaces_api.body(WorkspaceIn).name), 201)


@workspaces_api.operation(
    "/workspaces",
    ["GET"],
    Operation("Your workspaces and your role in each", "workspaces", response=WorkspacePage, query=PageQuery,
              operation_id="listWorkspaces"),
)  # fmt: skip
def list_workspaces() -> Response:
    page = service.list_mine(settings(), workspaces_api.user(), workspaces_api.page_query())
    return json_response(page)


@workspaces_api.operation(
    WORKSPACE, ["GET"], Operation("Get a workspace", "workspaces", response=WorkspaceOut, operation_id="getWorkspace")
)
def get_workspace(workspace_id: str) -> Response:
    return json_response(service.get(workspaces_api.user(), workspace_id))


@workspaces_api.operation(
    WORKSPACE,
    ["PATCH"],
    Operation("Rename a workspace (admins)", "workspaces", 200, WorkspaceOut, WorkspaceIn, problems=(403,),
              operation_id="updateWorkspace"),
)  # fmt: skip
def update_workspace(workspace_id: str) -> Response:
    data = workspaces_api.body(WorkspaceIn)
    return json_response(service.rename(workspaces_api.user(), workspace_id, data.name))


@workspaces_api.operation(
    WORKSPACE,
    ["DELETE"],
    Operation("Delete a shared workspace and its data (owners)", "workspaces", 204, problems=(403, 409),
              operation_id="deleteWorkspace"),
)  # fmt: skip
def delete_workspace(workspace_id: str) -> Response:
    service.delete(workspaces_api.user(), workspace_id)
    return no_content()


@workspaces_api.operation(
    MEMBERS,
    ["GET"],
    Operation("A workspace's members", "workspaces", response=MemberPage, query=PageQuery, operation_id="listMembers"),
)
def list_members(workspace_id: str) -> Response:
    query = workspaces_api.page_query()
    return json_response(service.list_members(settings(), workspaces_api.user(), workspace_id, query))


@workspaces_api.operation(
    MEMBERS,
    ["POST"],
    Operation("Add an existing user as a member (admins)", "workspaces", 201, MemberOut, MemberIn,
              problems=(403, 409), operation_id="addMember", idempotent=True),
)  # fmt: skip
def add_member(workspace_id: str) -> Response:
    data = workspaces_api.body(MemberIn)
    return json_response(service.add_member(workspaces_api.user(), workspace_id, data), 201)


@workspaces_api.operation(
    MEMBER,
    ["PATCH"],
    Operation("Change a member's role (admins; owners for owners)", "workspaces", 200, MemberOut, MemberPatch,
              problems=(403, 409), operation_id="updateMember"),
)  # fmt: skip
def update_member(workspace_id: str, user_id: str) -> Response:
    data = workspaces_api.body(MemberPatch)
    return json_response(service.change_member_role(workspaces_api.user(), workspace_id, user_id, data.role))


@workspaces_api.operation(
    MEMBER,
    ["DELETE"],
    Operation("Remove a member (admins), or leave", "workspaces", 204, problems=(403, 409),
              operation_id="removeMember"),
)  # fmt: skip
def remove_member(workspace_id: str, user_id: str) -> Response:
    service.remove_member(workspaces_api.user(), workspace_id, user_id)
    return no_content()
