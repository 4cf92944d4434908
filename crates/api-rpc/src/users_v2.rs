//! `zitadel.user.v2.UserService`, the human-user lifecycle, on the use cases.

use std::sync::Arc;

use buffa::MessageField;
use connectrpc::{ConnectError, RequestContext, Response, ServiceRequest, ServiceResult};
use userd_domain::authz::Caller;
use userd_domain::user::{Command, UserPatch};
use userd_ports::ServiceError;
use userd_ports::service::{IfMatch, ResourceDetails, UserRef, UserService as Users};

use crate::convert::user_id;
use crate::convert_v2 as convert;
use crate::errors::service_error;
use crate::proto::zitadel::object::v2::{Details, ListDetails};
use crate::proto::zitadel::user::v2::*;

/// How often an update that reads, merges and writes is retried when another write to
/// the same user came in between.
const MERGE_ATTEMPTS: usize = 8;

/// The v2 user service, as ZITADEL's SDKs call it.
pub struct UsersV2 {
    users: Arc<dyn Users>,
}

impl UsersV2 {
    pub fn new(users: Arc<dyn Users>) -> Self {
        UsersV2 { users }
    }

    async fn caller(&self, ctx: &RequestContext) -> Result<Caller, ConnectError> {
        crate::caller::caller(self.users.as_ref(), ctx).await
    }

    async fn run<P: buffa::ProtoBox<Details>>(
        &self,
        ctx: &RequestContext,
        id: &str,
        command: Command,
    ) -> Result<MessageField<Details, P>, ConnectError> {
        let caller = self.caller(ctx).await?;
        let target = UserRef::new(user_id(id).map_err(service_error)?);
        let changed = self
            .users
            .execute(&caller, &target, command)
            .await
            .map_err(service_error)?;
        Ok(details(&changed))
    }

    /// Applies an update that replaces parts of `data`: read, merge, write only if the
    /// user is still at the version read, retrying when it is not.
    async fn update(
        &self,
        caller: &Caller,
        request: &UpdateHumanUserRequest,
    ) -> Result<ResourceDetails, ServiceError> {
        let id = user_id(&request.user_id)?;
        for _ in 0..MERGE_ATTEMPTS {
            let user = self
                .users
                .get_user(caller, &UserRef::new(id.clone()))
                .await?;
            if let Some(username) = &request.username {
                let current = user.usernames.first().map(|u| u.username.as_str());
                if current != Some(username.as_str()) {
                    return Err(ServiceError::InvalidArgument {
                        reason: "UNSUPPORTED_USERNAME_CHANGE",
                        message: "userd does not rename users".to_owned(),
                        field: Some("username".to_owned()),
                    });
                }
            }
            let data = request
                .profile
                .as_option()
                .map(|profile| {
                    let mut data = user.data.as_map().clone();
                    convert::merge_profile(&mut data, profile);
                    convert::user_data(data)
                })
                .transpose()?;
            let patch = UserPatch {
                schema_id: None,
                data,
                email: request.email.as_option().map(convert::email).transpose()?,
                phone: request
                    .phone
                    .as_option()
                    .map(convert::phone)
                    .transpose()?
                    .flatten(),
            };
            let target = UserRef {
                if_match: Some(IfMatch::Versions(vec![user.sequence])),
                ..UserRef::new(id.clone())
            };
            match self
                .users
                .execute(caller, &target, Command::Patch(patch))
                .await
            {
                Err(ServiceError::VersionMismatch { .. }) => continue,
                outcome => return outcome,
            }
        }
        Err(ServiceError::Aborted {
            user_id: id.to_string(),
        })
    }
}

fn details<P>(details: &ResourceDetails) -> MessageField<Details, P>
where
    P: buffa::ProtoBox<Details>,
{
    MessageField::some(convert::details(details))
}

/// An RPC that runs one state-machine command on the user named by `user_id`.
macro_rules! state_change {
    ($method:ident, $request:ty, $response:ident, $command:ident) => {
        async fn $method(
            &self,
            ctx: RequestContext,
            request: ServiceRequest<'_, $request>,
        ) -> ServiceResult<$response> {
            let request = request.to_owned_message();
            Response::ok($response {
                details: self.run(&ctx, &request.user_id, Command::$command).await?,
                ..Default::default()
            })
        }
    };
}

// Concrete return types instead of the trait's `impl Encodable`: the generated trait allows it.
#[allow(refining_impl_trait)]
impl UserService for UsersV2 {
    async fn add_human_user(
        &self,
        ctx: RequestContext,
        request: ServiceRequest<'_, AddHumanUserRequest>,
    ) -> ServiceResult<AddHumanUserResponse> {
        let request = request.to_owned_message();
        let caller = self.caller(&ctx).await?;
        let org = convert::organization(request.organization.as_option()).map_err(service_error)?;
        let new_user = convert::new_human(&request).map_err(service_error)?;
        let created = self
            .users
            .create_user(&caller, org, new_user)
            .await
            .map_err(service_error)?;
        Response::ok(AddHumanUserResponse {
            user_id: created.id.clone(),
            details: details(&created),
            ..Default::default()
        })
    }

    async fn get_user_by_id(
        &self,
        ctx: RequestContext,
        request: ServiceRequest<'_, GetUserByIDRequest>,
    ) -> ServiceResult<GetUserByIDResponse> {
        let request = request.to_owned_message();
        let caller = self.caller(&ctx).await?;
        let target = UserRef::new(user_id(&request.user_id).map_err(service_error)?);
        let user = self
            .users
            .get_user(&caller, &target)
            .await
            .map_err(service_error)?;
        let found = convert::user(&user);
        Response::ok(GetUserByIDResponse {
            details: found.details.clone(),
            user: MessageField::some(found),
            ..Default::default()
        })
    }

    async fn list_users(
        &self,
        ctx: RequestContext,
        request: ServiceRequest<'_, ListUsersRequest>,
    ) -> ServiceResult<ListUsersResponse> {
        let request = request.to_owned_message();
        let caller = self.caller(&ctx).await?;
        let search = convert::search_request(&request).map_err(service_error)?;
        let found = self
            .users
            .search_users(&caller, search)
            .await
            .map_err(service_error)?;
        Response::ok(ListUsersResponse {
            details: MessageField::some(ListDetails {
                total_result: found.total,
                timestamp: MessageField::some(crate::convert::timestamp(found.timestamp)),
                ..Default::default()
            }),
            sorting_column: request.sorting_column,
            result: found.users.iter().map(convert::user).collect(),
            ..Default::default()
        })
    }

    async fn update_human_user(
        &self,
        ctx: RequestContext,
        request: ServiceRequest<'_, UpdateHumanUserRequest>,
    ) -> ServiceResult<UpdateHumanUserResponse> {
        let request = request.to_owned_message();
        let caller = self.caller(&ctx).await?;
        let changed = self
            .update(&caller, &request)
            .await
            .map_err(service_error)?;
        Response::ok(UpdateHumanUserResponse {
            details: details(&changed),
            ..Default::default()
        })
    }

    state_change!(
        deactivate_user,
        DeactivateUserRequest,
        DeactivateUserResponse,
        Deactivate
    );
    state_change!(
        reactivate_user,
        ReactivateUserRequest,
        ReactivateUserResponse,
        Activate
    );
    state_change!(lock_user, LockUserRequest, LockUserResponse, Lock);
    state_change!(unlock_user, UnlockUserRequest, UnlockUserResponse, Unlock);
    state_change!(delete_user, DeleteUserRequest, DeleteUserResponse, Delete);
}
