//! Delivery of codes through the outbox, against the real binary on both backends, a real
//! SMTP server (aiosmtpd) and a real HTTP endpoint (scripts/notify_sink.py): content and
//! `urlTemplate`, a mail server that is down and comes back, a restart with messages
//! waiting, and two processes sharing one outbox.
//!
//! Needs Python's `aiosmtpd`. USERD_TEST_NOTIFY=require fails without it; =skip, or its
//! absence otherwise, skips these tests and says so loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{USERS, Userd, World};
use userd_testkit::{TestDatabase, on_both_backends_blocking};

on_both_backends_blocking!(
    reset_codes_reach_the_user_by_email_and_sms,
    delivery_survives_a_mail_server_down_and_a_restart,
    two_processes_share_one_outbox_and_send_each_message_once,
    a_new_address_is_proven_with_the_code_sent_to_it,
    contact_codes_are_single_use_expire_and_die_after_five_wrong_tries,
    create_and_patch_make_codes_for_new_addresses,
);

const TEMPLATE: &str =
    "https://login.example.com/reset?user={{.UserID}}&code={{.Code}}&org={{.OrgID}}";

fn python() -> String {
    std::env::var("USERD_TEST_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

/// Whether these tests run here: loudly not when aiosmtpd is missing, unless required.
fn sink_available() -> bool {
    let mode = std::env::var("USERD_TEST_NOTIFY").unwrap_or_default();
    if mode == "skip" {
        eprintln!("!!! delivery tests NOT run: USERD_TEST_NOTIFY=skip");
        return false;
    }
    let found = Command::new(python())
        .args(["-c", "import aiosmtpd"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    match (found, mode.as_str()) {
        (true, _) => true,
        (false, "require") => panic!(
            "USERD_TEST_NOTIFY=require but {} cannot import aiosmtpd \
             (pip install -r scripts/requirements-api-test.txt)",
            python()
        ),
        (false, _) => {
            eprintln!(
                "!!! delivery tests NOT run: {} cannot import aiosmtpd \
                 (pip install -r scripts/requirements-api-test.txt)",
                python()
            );
            false
        }
    }
}

/// The SMTP server and SMS endpoint, and everything they received.
struct Sink {
    child: Child,
    smtp: u16,
    http: u16,
    received: Arc<(Mutex<Vec<Value>>, Condvar)>,
}

impl Sink {
    fn start(smtp: u16, http: u16) -> Sink {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/notify_sink.py");
        let mut child = Command::new(python())
            .args([
                script,
                "--smtp-port",
                &smtp.to_string(),
                "--http-port",
                &http.to_string(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the notify sink");
        let received = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let stdout = child.stdout.take().unwrap();
        {
            let received = Arc::clone(&received);
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    let (lines, arrived) = &*received;
                    lines
                        .lock()
                        .unwrap()
                        .push(serde_json::from_str(&line).unwrap());
                    arrived.notify_all();
                }
            });
        }
        let mut sink = Sink {
            child,
            smtp,
            http,
            received,
        };
        let listening = sink.wait_for(|v| v.get("listening").is_some());
        sink.smtp = u16::try_from(listening["listening"]["smtp"].as_u64().unwrap()).unwrap();
        sink.http = u16::try_from(listening["listening"]["http"].as_u64().unwrap()).unwrap();
        sink
    }

    /// Every record so far that `wanted` accepts.
    fn all(&self, wanted: impl Fn(&Value) -> bool) -> Vec<Value> {
        let lines = self.received.0.lock().unwrap();
        lines.iter().filter(|v| wanted(v)).cloned().collect()
    }

    /// Waits until `count` records that `wanted` accepts have arrived; fails after a
    /// generous deadline.
    fn wait_for_n(&self, count: usize, wanted: impl Fn(&Value) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let (lines, arrived) = &*self.received;
        let mut guard = lines.lock().unwrap();
        loop {
            let found: Vec<Value> = guard.iter().filter(|v| wanted(v)).cloned().collect();
            if found.len() >= count {
                return found;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "only {found:?} arrived, {count} were expected"
            );
            guard = arrived.wait_timeout(guard, left).unwrap().0;
        }
    }

    fn wait_for(&self, wanted: impl Fn(&Value) -> bool) -> Value {
        self.wait_for_n(1, wanted).remove(0)
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// userd delivering to `sink`'s ports, retrying fast.
fn userd_for(db: TestDatabase, smtp: u16, http: u16) -> Userd {
    let smtp = format!("smtp://127.0.0.1:{smtp}");
    let sms = format!("http://127.0.0.1:{http}/sms");
    Userd::start_with(
        db,
        &[
            ("USERD__NOTIFY__SMTP__URL", &smtp),
            ("USERD__NOTIFY__SMTP__FROM", "userd <no-reply@userd.test>"),
            ("USERD__NOTIFY__SMS__WEBHOOK_URL", &sms),
            ("USERD__NOTIFY__RETRY_FIRST_MS", "100"),
            ("USERD__NOTIFY__RETRY_LONGEST_SECS", "1"),
            ("USERD__NOTIFY__POLL_INTERVAL_MS", "200"),
            ("USERD__NOTIFY__SEND_TIMEOUT_SECS", "5"),
        ],
    )
}

fn user_with_contact(w: &World, id: &str) {
    let (status, body) = w.userd.post(
        USERS,
        &json!({"userId": id,
                "contact": {"email": {"address": format!("{id}@example.com")},
                            "phone": {"number": "+41791234567"}}}),
    );
    assert_eq!(status, 201, "{body}");
}

fn reset(w: &World, id: &str, body: &Value) -> Value {
    let (status, answer) = w.userd.post(&format!("{USERS}/{id}/password/_reset"), body);
    assert_eq!(status, 200, "{answer}");
    assert!(
        answer.get("verificationCode").is_none(),
        "a code sent is not shown to the caller: {answer}"
    );
    answer
}

fn to(address: &str) -> impl Fn(&Value) -> bool + '_ {
    move |v| v["kind"] == "email" && v["to"][0] == address
}

/// The value /metrics shows for `series`, if any.
fn metric(client: &support::Client, series: &str) -> Option<f64> {
    let (status, text) = client.get_text("/metrics");
    assert_eq!(status, 200);
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

/// Waits until the worker of `userd` publishes outbox counts that `wanted` accepts
/// (it logs them whenever they change, after setting the gauges).
fn wait_for_counts(userd: &Userd, mark: usize, wanted: impl Fn(u64, u64) -> bool) {
    userd.wait_for_log_line(mark, |line| {
        serde_json::from_str::<Value>(line).is_ok_and(|entry| {
            entry["message"] == "outbox counts changed"
                && wanted(
                    entry["pending"].as_u64().unwrap_or(u64::MAX),
                    entry["sent"].as_u64().unwrap_or(u64::MAX),
                )
        })
    });
}

fn reset_codes_reach_the_user_by_email_and_sms(db: TestDatabase) {
    if !sink_available() {
        return;
    }
    let sink = Sink::start(0, 0);
    let w = World::with(userd_for(db, sink.smtp, sink.http));
    user_with_contact(&w, "ada");

    reset(&w, "ada", &json!({"sendEmail": {"urlTemplate": TEMPLATE}}));
    let mail = sink.wait_for(to("ada@example.com"));
    assert_eq!(mail["subject"], "Reset your password");
    assert_eq!(mail["from"], "no-reply@userd.test");
    let text = mail["text"].as_str().unwrap();
    let link_start = text.find("https://login.example.com/reset?").unwrap();
    let link = text[link_start..].lines().next().unwrap();
    let code = link
        .split("code=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    assert_eq!(code.len(), 8, "{text}");
    assert_eq!(
        link,
        format!(
            "https://login.example.com/reset?user=ada&code={code}&org={}",
            w.home
        )
    );
    assert!(text.contains(&format!("Your code: {code}")), "{text}");

    // The code the user received sets the password, once.
    let set = |code: &str| {
        w.userd.post(
            &format!("{USERS}/ada/password"),
            &json!({"newPassword": {"password": "Correct-Horse-7", "verificationCode": code}}),
        )
    };
    assert_eq!(set(code).0, 200);
    assert_eq!(set(code).0, 400);

    // By SMS, to the webhook; and a new code voids the one before.
    reset(&w, "ada", &json!({"sendSms": {}}));
    let sms = sink.wait_for(|v| v["kind"] == "sms");
    assert_eq!(
        (sms["path"].as_str(), sms["to"].as_str()),
        (Some("/sms"), Some("+41791234567"))
    );
    let sms_text = sms["text"].as_str().unwrap();
    let sms_code = sms_text
        .split("code: ")
        .nth(1)
        .unwrap()
        .split('.')
        .next()
        .unwrap();
    reset(&w, "ada", &json!({"sendEmail": {}}));
    sink.wait_for_n(2, to("ada@example.com"));
    let (status, voided) = set(sms_code);
    assert_eq!((status, support::reason(&voided)), (400, "INVALID_CODE"));

    // A user without a phone cannot get an SMS; a bad template is refused up front.
    let (status, body) = w.userd.post(USERS, &json!({"userId": "bob"}));
    assert_eq!(status, 201, "{body}");
    let (status, body) = w.userd.post(
        &format!("{USERS}/bob/password/_reset"),
        &json!({"sendSms": {}}),
    );
    assert_eq!((status, support::reason(&body)), (400, "PHONE_NOT_SET"));
    let (status, body) = w.userd.post(
        &format!("{USERS}/ada/password/_reset"),
        &json!({"sendEmail": {"urlTemplate": "https://x.test/{{.Password}}"}}),
    );
    assert_eq!(
        (status, support::reason(&body)),
        (400, "INVALID_URL_TEMPLATE")
    );

    wait_for_counts(&w.userd, 0, |pending, sent| (pending, sent) == (0, 3));
    assert_eq!(
        metric(&w.userd.client, "userd_outbox_messages{state=\"sent\"}"),
        Some(3.0)
    );
    assert_eq!(
        metric(
            &w.userd.client,
            "userd_outbox_deliveries_total{outcome=\"sent\"}"
        ),
        Some(3.0)
    );

    // No code in userd's log.
    let log = w.userd.log.lock().unwrap().join("\n");
    for secret in [code, sms_code] {
        assert!(!log.contains(secret), "the log holds a code");
    }
}

fn delivery_survives_a_mail_server_down_and_a_restart(db: TestDatabase) {
    if !sink_available() {
        return;
    }
    // Nothing listens on these ports yet: the mail server is down.
    let (smtp, http) = (free_port(), free_port());
    let mut w = World::with(userd_for(db, smtp, http));
    user_with_contact(&w, "ada");
    let mark = w.userd.log_len();
    let asked = Instant::now();
    reset(&w, "ada", &json!({"sendEmail": {}}));
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "the request does not wait on the mail server"
    );
    w.userd.wait_for_log(mark, "will retry");
    wait_for_counts(&w.userd, mark, |pending, _| pending == 1);
    assert_eq!(
        metric(&w.userd.client, "userd_outbox_messages{state=\"pending\"}"),
        Some(1.0)
    );

    // userd stops with the message still waiting; the server comes back; userd starts.
    w.userd.stop();
    let sink = Sink::start(smtp, http);
    w.userd.restart();
    let mail = sink.wait_for(to("ada@example.com"));
    assert!(mail["text"].as_str().unwrap().contains("Your code: "));
    wait_for_counts(&w.userd, 0, |pending, sent| (pending, sent) == (0, 1));

    // And down again while userd runs: retried until the server is back.
    drop(sink);
    let mark = w.userd.log_len();
    reset(&w, "ada", &json!({"sendEmail": {}}));
    w.userd.wait_for_log(mark, "will retry");
    let sink = Sink::start(smtp, http);
    sink.wait_for(to("ada@example.com"));
    assert_eq!(sink.all(to("ada@example.com")).len(), 1);
}

fn two_processes_share_one_outbox_and_send_each_message_once(db: TestDatabase) {
    if !sink_available() {
        return;
    }
    let sink = Sink::start(0, 0);
    let w = World::with(userd_for(db, sink.smtp, sink.http));
    let peer = w.userd.start_peer();
    const USERS_COUNT: usize = 24;
    for n in 0..USERS_COUNT {
        user_with_contact(&w, &format!("u{n}"));
    }
    // Half the requests reach each process; both workers deliver from the one outbox.
    for n in 0..USERS_COUNT {
        let path = format!("{USERS}/u{n}/password/_reset");
        let body = json!({"sendEmail": {}}).to_string();
        let (status, answer) = if n % 2 == 0 {
            w.userd.call("POST", &path, Some(&body))
        } else {
            peer.client
                .call_as(Some(&w.userd.token), "POST", &path, Some(&body))
        };
        assert_eq!(status, 200, "{answer}");
    }
    let mails = sink.wait_for_n(USERS_COUNT, |v| v["kind"] == "email");
    let mails_now = sink.all(|v| v["kind"] == "email");
    let mut recipients: Vec<String> = mails_now
        .iter()
        .map(|m| m["to"][0].as_str().unwrap().to_owned())
        .collect();
    recipients.sort();
    recipients.dedup();
    assert_eq!(
        (mails_now.len(), recipients.len()),
        (USERS_COUNT, USERS_COUNT),
        "each message once: {mails:?}"
    );
    // Between them, the two processes delivered each message once. A process counts a
    // delivery before recording it, and this one publishes the outbox's counts after
    // rounds and every 15 s: once it shows all sent, both counters are final.
    wait_for_counts(&w.userd, 0, |_, sent| sent == USERS_COUNT as u64);
    let sent = "userd_outbox_deliveries_total{outcome=\"sent\"}";
    let here = metric(&w.userd.client, sent).unwrap_or(0.0);
    let there = metric(&peer.client, sent).unwrap_or(0.0);
    assert_eq!(here + there, USERS_COUNT as f64, "{here} + {there}");
    assert_eq!(sink.all(|v| v["kind"] == "email").len(), USERS_COUNT);
}

/// The 8-character code after `Your code: ` (e-mail) or `code: ` (SMS).
fn code_in(text: &str) -> String {
    let start = text
        .find("code: ")
        .unwrap_or_else(|| panic!("no code in {text:?}"))
        + "code: ".len();
    text[start..start + 8].to_owned()
}

fn a_new_address_is_proven_with_the_code_sent_to_it(db: TestDatabase) {
    if !sink_available() {
        return;
    }
    let sink = Sink::start(0, 0);
    let w = World::with(userd_for(db, sink.smtp, sink.http));
    user_with_contact(&w, "ada");
    let email_of = |w: &World| w.userd.user("ada").1["user"]["contact"]["email"].clone();

    // Set by an administrator: unverified, and a code goes to the new address.
    let (status, body) = w.userd.call(
        "PUT",
        &format!("{USERS}/ada/email"),
        Some(
            &json!({"email": {"address": "ada@new.example.com",
                               "sendCode": {"urlTemplate": TEMPLATE}}})
            .to_string(),
        ),
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.get("verificationCode").is_none());
    assert_eq!(email_of(&w), json!({"address": "ada@new.example.com"}));
    let mail = sink.wait_for(to("ada@new.example.com"));
    assert_eq!(mail["subject"], "Verify your e-mail address");
    let text = mail["text"].as_str().unwrap();
    let code = code_in(text);
    assert!(
        text.contains(&format!(
            "https://login.example.com/reset?user=ada&code={code}&org={}",
            w.home
        )),
        "{text}"
    );
    let verify = |code: &str| {
        w.userd.post(
            &format!("{USERS}/ada/email/_verify"),
            &json!({"verificationCode": code}),
        )
    };
    let (status, body) = verify(&code.to_lowercase());
    assert_eq!(status, 200, "case does not matter: {body}");
    assert_eq!(
        email_of(&w),
        json!({"address": "ada@new.example.com", "isVerified": true})
    );
    let (status, body) = verify(&code);
    assert_eq!(
        (status, support::reason(&body)),
        (400, "EMAIL_ALREADY_VERIFIED")
    );

    // The phone by SMS, over the webhook.
    let (status, body) = w.userd.call(
        "PUT",
        &format!("{USERS}/ada/phone"),
        Some(&json!({"phone": {"number": "+41790000001"}}).to_string()),
    );
    assert_eq!(status, 200, "{body}");
    let sms = sink.wait_for(|v| v["kind"] == "sms" && v["to"] == "+41790000001");
    let (status, body) = w.userd.post(
        &format!("{USERS}/ada/phone/_verify"),
        &json!({"verificationCode": code_in(sms["text"].as_str().unwrap())}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        w.userd.user("ada").1["user"]["contact"]["phone"]["isVerified"],
        true
    );

    // Self-service: a user without roles changes its own address, but cannot vouch for it.
    let token = w.token("ada");
    let own = |body: Value| w.as_(&token, "PUT", &format!("{USERS}/ada/email"), Some(body));
    let (status, body) = own(json!({"email": {"address": "me@example.com", "isVerified": true}}));
    assert_eq!((status, support::reason(&body)), (403, "PERMISSION_DENIED"));
    let (status, body) = own(json!({"email": {"address": "me@example.com", "returnCode": {}}}));
    assert_eq!(status, 200, "{body}");
    let code = body["verificationCode"].as_str().unwrap().to_owned();
    let (status, body) = w.as_(
        &token,
        "POST",
        &format!("{USERS}/ada/email/_verify"),
        Some(json!({"verificationCode": code})),
    );
    assert_eq!(status, 200, "{body}");
}

fn contact_codes_are_single_use_expire_and_die_after_five_wrong_tries(db: TestDatabase) {
    let w = World::with(Userd::start_with(
        db,
        &[("USERD__NOTIFY__CODE_TTL_SECS", "1")],
    ));
    user_with_contact(&w, "bob");
    let set = |address: &str| {
        let (status, body) = w.userd.call(
            "PUT",
            &format!("{USERS}/bob/email"),
            Some(&json!({"email": {"address": address, "returnCode": {}}}).to_string()),
        );
        assert_eq!(status, 200, "{body}");
        body["verificationCode"].as_str().unwrap().to_owned()
    };
    let verify = |code: &str| {
        let (status, body) = w.userd.post(
            &format!("{USERS}/bob/email/_verify"),
            &json!({"verificationCode": code}),
        );
        (status, support::reason(&body).to_owned())
    };
    let invalid = (400, "INVALID_CODE".to_owned());
    let exhausted = (400, "CODE_EXHAUSTED".to_owned());

    // Without a notifier, sending is refused; returnCode works.
    let (status, body) = w.userd.call(
        "PUT",
        &format!("{USERS}/bob/email"),
        Some(&json!({"email": {"address": "bob@example.com"}}).to_string()),
    );
    assert_eq!(
        (status, support::reason(&body)),
        (400, "NOTIFICATIONS_NOT_CONFIGURED")
    );

    let code = set("bob@one.example.com");
    for _ in 0..5 {
        assert_eq!(verify("WRONG234"), invalid);
    }
    assert_eq!(verify(&code), exhausted, "void after five wrong tries");

    // A new code voids the old one; a resent one too.
    let first = set("bob@two.example.com");
    let (status, body) = w.userd.post(
        &format!("{USERS}/bob/email/_resend"),
        &json!({"returnCode": {}}),
    );
    assert_eq!(status, 200, "{body}");
    let resent = body["verificationCode"].as_str().unwrap().to_owned();
    assert_eq!(verify(&first), invalid);

    // A code dies at its expiry (notify.code_ttl_secs = 1 here): the server computed the
    // expiry before answering, so waiting past it from the answer is never too early.
    let asked = Instant::now();
    let late = set("bob@three.example.com");
    std::thread::sleep(Duration::from_millis(1500).saturating_sub(asked.elapsed()));
    assert_eq!(verify(&late), (400, "CODE_EXPIRED".to_owned()));
    assert_ne!(resent, late);
}

fn create_and_patch_make_codes_for_new_addresses(db: TestDatabase) {
    if !sink_available() {
        return;
    }
    let sink = Sink::start(0, 0);
    let w = World::with(userd_for(db, sink.smtp, sink.http));
    let (status, created) = w.userd.post(
        USERS,
        &json!({"userId": "cy",
                "contact": {"email": {"address": "cy@example.com", "returnCode": {}},
                            "phone": {"number": "+41790000004", "sendCode": {}}}}),
    );
    assert_eq!(status, 201, "{created}");
    let email_code = created["emailCode"].as_str().unwrap().to_owned();
    assert!(
        created.get("phoneCode").is_none(),
        "sent, not returned: {created}"
    );
    let sms = sink.wait_for(|v| v["kind"] == "sms" && v["to"] == "+41790000004");
    let verify = |what: &str, code: &str| {
        w.userd.post(
            &format!("{USERS}/cy/{what}/_verify"),
            &json!({"verificationCode": code}),
        )
    };
    assert_eq!(verify("email", &email_code).0, 200);
    assert_eq!(
        verify("phone", &code_in(sms["text"].as_str().unwrap())).0,
        200
    );

    // A patch to a new address, with a code sent there.
    let (status, patched) = w.userd.patch(
        &format!("{USERS}/cy"),
        &json!({"contact": {"email": {"address": "cy@new.example.com", "sendCode": {}}}}),
    );
    assert_eq!(status, 200, "{patched}");
    let mail = sink.wait_for(to("cy@new.example.com"));
    let (_, user) = w.userd.user("cy");
    assert_eq!(
        user["user"]["contact"]["email"],
        json!({"address": "cy@new.example.com"})
    );
    assert_eq!(
        verify("email", &code_in(mail["text"].as_str().unwrap())).0,
        200
    );

    // Contradictions are refused, and nothing is created.
    let (status, body) = w.userd.post(
        USERS,
        &json!({"userId": "dee",
                "contact": {"email": {"address": "dee@example.com", "isVerified": true,
                                      "returnCode": {}}}}),
    );
    assert_eq!((status, support::reason(&body)), (400, "INVALID_ARGUMENT"));
    assert_eq!(w.userd.user("dee").0, 404);
}
