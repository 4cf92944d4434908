//! `userd admin-token`: a new IAM_OWNER token, issued against the database directly.

use std::io::Write;

use userd_app::clock::SystemClock;
use userd_app::ids::SnowflakeIds;
use userd_app::recovery::{RecoveryPorts, issue_admin_token};
use userd_domain::Timestamp;
use userd_domain::values::UserId;
use userd_ports::clock::Clock;

use crate::AdminTokenArgs;
use crate::pat_file::PendingPatFile;
use crate::serve::{StartError, prepare_database};
use crate::settings::Settings;

pub fn admin_token(settings: &Settings, args: AdminTokenArgs) -> Result<(), StartError> {
    let user = args
        .user_id
        .map(UserId::new)
        .transpose()
        .map_err(StartError::UserId)?;
    let expires_at = args.expires_in_days.map(|days| {
        let micros = i64::from(days) * 86_400 * 1_000_000;
        Timestamp::from_unix_micros(SystemClock.now().unix_micros().saturating_add(micros))
    });
    let destination = (!args.print).then(|| {
        args.output
            .unwrap_or_else(|| settings.bootstrap.admin_pat_path.clone())
    });
    // Make sure the token can be written before it exists.
    let pending = destination
        .as_ref()
        .map(|path| {
            PendingPatFile::prepare(path).map_err(|cause| StartError::PatFile {
                path: path.display().to_string(),
                cause,
            })
        })
        .transpose()?;

    let database = prepare_database(settings)?;
    let ids = SnowflakeIds::with_random_node();
    let outcome = actix_web::rt::System::new().block_on(issue_admin_token(
        RecoveryPorts {
            recovery: &database,
            users: &database,
            members: &database,
            tokens: &database,
            clock: &SystemClock,
            ids: &ids,
        },
        user,
        expires_at,
    ));
    let access = match outcome {
        Ok(access) => access,
        Err(error) => {
            if let Some(pending) = pending {
                pending.abandon();
            }
            return Err(error.into());
        }
    };
    if access.created_user {
        tracing::warn!(user_id = %access.user_id, "no usable IAM_OWNER was left; made a new admin user");
    }
    match (pending, destination) {
        (Some(pending), Some(path)) => {
            pending
                .commit(access.token.expose())
                .map_err(|cause| StartError::PatFile {
                    path: path.display().to_string(),
                    cause,
                })?;
            tracing::info!(
                user_id = %access.user_id,
                token_id = %access.token_id,
                token_file = %path.display(),
                "issued a new IAM_OWNER token"
            );
        }
        _ => {
            tracing::info!(user_id = %access.user_id, token_id = %access.token_id, "issued a new IAM_OWNER token");
            let mut out = std::io::stdout().lock();
            writeln!(out, "{}", access.token.expose()).map_err(StartError::Print)?;
        }
    }
    Ok(())
}
