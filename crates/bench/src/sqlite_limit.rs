//! The SQLite limit: the statements userd's store runs for each scenario, run in-process
//! by plain threads, each with its own connection: no HTTP, no async bridge.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use userd_app::clock::SystemClock;
use userd_app::ids::SnowflakeIds;
use userd_domain::user::{
    Command, Contact, EmailContact, User, UserCreated, UserPatch, UsernameEntry,
};
use userd_domain::values::{Email, OrgId, UserData, UserId, Username, UsernameId};
use userd_ports::clock::Clock;
use userd_ports::ids::IdGenerator;
use userd_ports::repository::{Organization, OrganizationRepository};
use userd_store_diesel::{BlockingSession, Database, DatabaseTarget, PoolSettings};

use crate::Error;
use crate::load::Scenario;

fn flow_once(
    session: &mut BlockingSession,
    ids: &SnowflakeIds,
    org: &OrgId,
    n: u64,
) -> Result<(), Error> {
    let name = format!("limit-{n}-{}", ids.next_id());
    let created = UserCreated {
        org_id: org.clone(),
        schema_id: None,
        data: UserData::from_value(json!({"givenName": "Ada", "familyName": "Lovelace", "n": n}))?,
        contact: Contact {
            email: Some(EmailContact {
                address: Email::new(format!("{name}@example.com"))?,
                verified: true,
            }),
            phone: None,
        },
        usernames: vec![UsernameEntry {
            id: UsernameId::new(ids.next_id())?,
            username: Username::new(name)?,
            organization_specific: true,
        }],
    };
    let actor = Some(UserId::new("bench-admin")?);
    let (user, event) = User::create(
        UserId::new(ids.next_id())?,
        created,
        SystemClock.now(),
        actor.clone(),
    )?;
    session.append(&user, &event)?;
    session.find(&user.id)?.ok_or("the created user is gone")?;
    let patch = Command::Patch(UserPatch {
        data: Some(UserData::from_value(
            json!({"givenName": "Augusta", "n": n}),
        )?),
        ..UserPatch::default()
    });
    for command in [patch, Command::Lock, Command::Unlock, Command::Delete] {
        let current = session.find(&user.id)?.ok_or("the user is gone")?;
        let (next, event) = current
            .execute(&command, SystemClock.now(), actor.clone())
            .map_err(|refusal| format!("{refusal}"))?
            .ok_or("nothing to change")?;
        session.append(&next, &event)?;
    }
    Ok(())
}

/// Iterations per second of `scenario` run in-process with `threads` threads against a
/// fresh SQLite file in `dir`.
pub fn run(
    dir: &std::path::Path,
    scenario: Scenario,
    threads: usize,
    duration: Duration,
    read_users: usize,
) -> Result<f64, Error> {
    let path = dir.join(format!("limit-{}.db", scenario.name()));
    let target = DatabaseTarget::parse(&format!("sqlite://{}", path.display()))?;
    let settings = PoolSettings {
        max_size: u32::try_from(threads)? + 1,
        ..PoolSettings::default()
    };
    let database = Database::open(&target, &settings)?;
    database.migrate()?;
    let ids = Arc::new(SnowflakeIds::new(9));
    let org = OrgId::new(ids.next_id())?;
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    runtime.block_on(database.create_organization(&Organization {
        id: org.clone(),
        name: "Bench".into(),
        created: SystemClock.now(),
        changed: SystemClock.now(),
    }))?;
    let mut readable = Vec::new();
    if scenario == Scenario::Read {
        let mut session = database.blocking_session()?;
        for n in 0..read_users {
            let created = UserCreated {
                org_id: org.clone(),
                schema_id: None,
                data: UserData::from_value(json!({"n": n}))?,
                contact: Contact::default(),
                usernames: Vec::new(),
            };
            let (user, event) = User::create(
                UserId::new(ids.next_id())?,
                created,
                SystemClock.now(),
                None,
            )?;
            session.append(&user, &event)?;
            readable.push(user.id);
        }
    }
    let readable = Arc::new(readable);
    let done = Arc::new(AtomicU64::new(0));
    let stop_at = Instant::now() + duration;
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let (database, ids, org, readable, done) = (
                database.clone(),
                Arc::clone(&ids),
                org.clone(),
                Arc::clone(&readable),
                Arc::clone(&done),
            );
            std::thread::spawn(move || -> Result<(), String> {
                let mut session = database.blocking_session().map_err(|e| e.to_string())?;
                let mut n = t as u64 * 1_000_000;
                let mut next = t.wrapping_mul(7919);
                while Instant::now() < stop_at {
                    match scenario {
                        // The same database work, whichever door userd's flow came through.
                        Scenario::Flow | Scenario::GrpcFlow => {
                            flow_once(&mut session, &ids, &org, n).map_err(|e| e.to_string())?
                        }
                        Scenario::Read => {
                            next = next.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                            let id = &readable[next % readable.len()];
                            session.find(id).map_err(|e| e.to_string())?;
                        }
                    }
                    n += 1;
                    done.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            })
        })
        .collect();
    for worker in workers {
        worker.join().map_err(|_| "a limit thread panicked")??;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / duration.as_secs_f64())
}
