"""Drives userd's zitadel.user.v2.UserService, SessionService and SettingsService with
ZITADEL's official Python SDK (PyPI `zitadel-client`), as a client of ZITADEL would: the
SDK posts Connect unary JSON over HTTP/1.1. Usage: sdk_v2_lifecycle.py <rpc base URL> <token>. Exits non-zero, with
the failed step, when anything differs from docs/api.md."""

import sys
import uuid

import zitadel_client as zitadel
from zitadel_client.exceptions import ApiError
from zitadel_client.models import (
    SessionServiceCheckPassword,
    SessionServiceChecks,
    SessionServiceCheckUser,
    SessionServiceCreateSessionRequest,
    SessionServiceDeleteSessionRequest,
    SessionServiceGetSessionRequest,
    SettingsServiceGetLockoutSettingsRequest,
    SettingsServiceRequestContext,
    UserServiceAddHumanUserRequest,
    UserServiceDeactivateUserRequest,
    UserServiceDeleteUserRequest,
    UserServiceGetUserByIDRequest,
    UserServiceInUserIDQuery,
    UserServiceListUsersRequest,
    UserServiceLockUserRequest,
    UserServicePassword,
    UserServicePasswordResetRequest,
    UserServiceReactivateUserRequest,
    UserServiceSearchQuery,
    UserServiceSetHumanEmail,
    UserServiceSetEmailRequest,
    UserServiceSetHumanProfile,
    UserServiceSetPasswordRequest,
    UserServiceVerifyEmailRequest,
    UserServiceUnlockUserRequest,
)


def expect(condition, what):
    if not condition:
        sys.exit(f"FAILED: {what}")
    print(f"ok: {what}")


def main(base, token):
    client = zitadel.Zitadel.with_access_token(base, token)
    users = client.users
    suffix = uuid.uuid4().hex[:8]

    added = users.add_human_user(
        UserServiceAddHumanUserRequest(
            username=f"minnie-{suffix}",
            profile=UserServiceSetHumanProfile(given_name="Minnie", family_name="Mouse"),
            email=UserServiceSetHumanEmail(email=f"minnie-{suffix}@example.com", is_verified=True),
        )
    )
    user_id = added.user_id
    expect(bool(user_id), f"AddHumanUser made user {user_id}")
    expect(added.details is not None and added.details.resource_owner, "details name the owner")

    got = users.get_user_by_id(UserServiceGetUserByIDRequest(user_id=user_id)).user
    expect(got.state.value == "USER_STATE_ACTIVE", "a new user is active")
    expect(got.username == f"minnie-{suffix}", "the username reads back")
    expect(got.human.profile.given_name == "Minnie", "the profile reads back")
    expect(got.human.email.is_verified, "the e-mail is verified")

    users.lock_user(UserServiceLockUserRequest(user_id=user_id))
    got = users.get_user_by_id(UserServiceGetUserByIDRequest(user_id=user_id)).user
    expect(got.state.value == "USER_STATE_LOCKED", "LockUser locks")

    users.unlock_user(UserServiceUnlockUserRequest(user_id=user_id))
    try:
        users.unlock_user(UserServiceUnlockUserRequest(user_id=user_id))
        expect(False, "unlocking an unlocked user is refused")
    except ApiError as error:
        body = str(error.response_body)
        expect(error.code == 400, f"unlock again answers 400 (got {error.code})")
        expect("failed_precondition" in body, "with code failed_precondition")
        expect("user is not locked" in body, "and the same message as REST")

    users.deactivate_user(UserServiceDeactivateUserRequest(user_id=user_id))
    got = users.get_user_by_id(UserServiceGetUserByIDRequest(user_id=user_id)).user
    expect(got.state.value == "USER_STATE_INACTIVE", "DeactivateUser deactivates")
    users.reactivate_user(UserServiceReactivateUserRequest(user_id=user_id))

    listed = users.list_users(
        UserServiceListUsersRequest(
            queries=[
                UserServiceSearchQuery(in_user_ids_query=UserServiceInUserIDQuery(user_ids=[user_id]))
            ]
        )
    )
    expect(int(listed.details.total_result) == 1, "ListUsers finds the user by id")
    expect(listed.result[0].state.value == "USER_STATE_ACTIVE", "reactivated")

    passwords_and_sessions(client, user_id, f"minnie-{suffix}")

    new_email = f"minnie-{suffix}@new.example.com"
    set_email = users.set_email(UserServiceSetEmailRequest(user_id=user_id, email=new_email, return_code={}))
    expect(bool(set_email.verification_code), "SetEmail returns a code when asked")
    got = users.get_user_by_id(UserServiceGetUserByIDRequest(user_id=user_id)).user
    expect(got.human.email.email == new_email and not got.human.email.is_verified, "the new e-mail waits")
    users.verify_email(UserServiceVerifyEmailRequest(user_id=user_id, verification_code=set_email.verification_code))
    got = users.get_user_by_id(UserServiceGetUserByIDRequest(user_id=user_id)).user
    expect(got.human.email.is_verified, "VerifyEmail proves it with the code")

    users.delete_user(UserServiceDeleteUserRequest(user_id=user_id))
    try:
        users.get_user_by_id(UserServiceGetUserByIDRequest(user_id=user_id))
        expect(False, "a deleted user is gone")
    except ApiError as error:
        expect(error.code == 404, f"a deleted user answers 404 (got {error.code})")


def passwords_and_sessions(client, user_id, username):
    users, sessions = client.users, client.sessions
    users.set_password(
        UserServiceSetPasswordRequest(
            user_id=user_id, new_password=UserServicePassword(password="Sdk-Password-1")
        )
    )
    reset = users.password_reset(UserServicePasswordResetRequest(user_id=user_id, return_code={}))
    expect(bool(reset.verification_code), "PasswordReset returns a code when asked")
    users.set_password(
        UserServiceSetPasswordRequest(
            user_id=user_id,
            new_password=UserServicePassword(password="Sdk-Password-2"),
            verification_code=reset.verification_code,
        )
    )

    def login(password):
        return sessions.create_session(
            SessionServiceCreateSessionRequest(
                checks=SessionServiceChecks(
                    user=SessionServiceCheckUser(login_name=username),
                    password=SessionServiceCheckPassword(password=password),
                ),
                lifetime="3600s",
            )
        )

    try:
        login("Sdk-Password-1")
        expect(False, "the password before the reset no longer logs in")
    except ApiError as error:
        body = str(error.response_body)
        expect(error.code == 400, f"a wrong password answers 400 (got {error.code})")
        expect("invalid_argument" in body, "with code invalid_argument")

    created = login("Sdk-Password-2")
    expect(bool(created.session_id) and bool(created.session_token), "CreateSession checks the password")
    session = sessions.get_session(SessionServiceGetSessionRequest(session_id=created.session_id)).session
    expect(session.factors.user.id == user_id, "the session names its user")
    expect(session.factors.password.verified_at is not None, "and when the password was checked")
    expect(session.expiration_date is not None, "and when it expires")
    sessions.delete_session(SessionServiceDeleteSessionRequest(session_id=created.session_id))
    try:
        sessions.get_session(SessionServiceGetSessionRequest(session_id=created.session_id))
        expect(False, "a deleted session is gone")
    except ApiError as error:
        expect(error.code == 404, f"a deleted session answers 404 (got {error.code})")

    lockout = client.settings.get_lockout_settings(
        SettingsServiceGetLockoutSettingsRequest(ctx=SettingsServiceRequestContext(instance=True))
    ).settings
    expect(int(lockout.max_password_attempts) == 10, "GetLockoutSettings shows the instance default")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
