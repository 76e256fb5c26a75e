//! The clients: writer tasks per service, each writing through the gateway over HTTP as fast
//! as it is answered, and a journal of every request: what it was, when it was sent, how long
//! it took, how it ended; and every write acknowledged with a 2xx.
//!
//! By default every write is sent once to the one gateway. [`LoadOptions`] can spread the
//! requests over several gateways (round robin, request by request) and make the writers
//! behave like careful clients: every write carries an `Idempotency-Key`, and one whose outcome
//! is unknown (no answer, a transport error, a 502, 503 or 504) is sent again with its key until
//! it is answered. Every attempt is journalled. [`Load::burst`] books one doctor's one slot for
//! many patients at once, the way a contended slot is fought over.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A request that has no answer after this long has hung: the gateway answers every request
/// within its 5 s NATS request timeout.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
/// How a request that got no answer in [`CLIENT_TIMEOUT`] is journalled.
const TIMED_OUT: &str = "no answer: timed out";
/// Writers per service: while one waits out the answer to a request its service died with (a
/// 504 after the gateway's 5 s request timeout), the other keeps writing.
const LANES: usize = 2;
/// A writer's pause after a request that was not acknowledged, so a writer whose service is down
/// does not spin.
const PAUSE_AFTER_REFUSAL: Duration = Duration::from_millis(50);
/// How long a retrying client keeps sending a write whose outcome it does not know.
const RETRY_FOR: Duration = Duration::from_secs(60);
/// What a booking of a contended slot is journalled as: its 409 is an answer, not a failure.
pub const BURST: &str = "appointment.burst";

/// What an acknowledged write did to its aggregate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Created or changed it: the reply carried this version.
    Written,
    /// Deleted it (patient, staff), cancelled it (appointment) or marked it entered-in-error
    /// (record): a 204 without a body.
    Removed,
}

/// One write a client saw acknowledged with a 2xx.
#[derive(Debug, Clone)]
pub struct Ack {
    /// `patient`, `staff`, `appointment`, `record`: the owning service.
    pub aggregate: &'static str,
    pub id: String,
    /// The version in the reply; for [`Change::Removed`] 0 (a 204 has no body).
    pub version: i64,
    pub change: Change,
}

/// How one request ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// `patient.create`, `record.amend`, ...
    pub what: &'static str,
    pub sent_at: Instant,
    pub latency: Duration,
    /// The HTTP status, or what went wrong below HTTP.
    pub result: Result<u16, String>,
}

impl Outcome {
    pub fn answered_at(&self) -> Instant {
        self.sent_at + self.latency
    }

    pub fn status(&self) -> Option<u16> {
        self.result.as_ref().ok().copied()
    }

    /// Neither a 2xx nor the 409 that all but one booking of a contended slot get.
    pub fn failed(&self) -> bool {
        match self.status() {
            Some(status) => {
                let contended = self.what == BURST && status == 409;
                !(200..300).contains(&status) && !contended
            }
            None => true,
        }
    }

    /// Whether the outcome of the write is unknown (it may or may not have happened), so a
    /// client may only send it again with its key.
    fn indeterminate(result: &Result<u16, String>) -> bool {
        match result {
            Ok(status) => matches!(status, 502..=504),
            Err(_) => true,
        }
    }
}

#[derive(Debug, Default)]
pub struct Journal {
    pub acks: Vec<Ack>,
    pub outcomes: Vec<Outcome>,
    /// Ids a DELETE was sent for, acknowledged or not: one that was not acknowledged may or
    /// may not have happened.
    pub removals_tried: std::collections::HashSet<String>,
    /// While the gateway itself is dead, a client cannot connect: transport errors answered in
    /// this window are excused (a hang never is).
    pub gateway_down: Option<(Instant, Instant)>,
}

impl Journal {
    /// Requests by how they ended: `201: 120, 503: 14, ...`.
    pub fn by_status(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for outcome in &self.outcomes {
            let key = match &outcome.result {
                Ok(status) => status.to_string(),
                Err(error) if error.starts_with(TIMED_OUT) => "timed out".to_owned(),
                Err(_) => "transport error".to_owned(),
            };
            *counts.entry(key).or_default() += 1;
        }
        counts
    }

    /// The requests that were not a 2xx, by what they were and how they ended.
    pub fn refusals_by_request(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for outcome in &self.outcomes {
            if !outcome.failed() {
                continue;
            }
            let key = match &outcome.result {
                Ok(status) => format!("{} {status}", outcome.what),
                Err(error) if error.starts_with(TIMED_OUT) => format!("{} timed out", outcome.what),
                Err(_) => format!("{} transport error", outcome.what),
            };
            *counts.entry(key).or_default() += 1;
        }
        counts
    }

    /// Acknowledged writes per service.
    pub fn acks_by_service(&self) -> BTreeMap<&'static str, usize> {
        let mut counts = BTreeMap::new();
        for ack in &self.acks {
            *counts.entry(ack.aggregate).or_default() += 1;
        }
        counts
    }

    /// The requests that no outage excuses: a hang (no answer within [`CLIENT_TIMEOUT`]), a
    /// transport error (but while the gateway is down), a 4xx (a write refused for a reason a
    /// crash must not cause: an unknown patient, a conflict; but a contended slot's 409) or a
    /// 5xx other than 502, 503 and 504.
    pub fn inexcusable(&self) -> Vec<&Outcome> {
        self.outcomes
            .iter()
            .filter(|o| o.failed())
            .filter(|o| match &o.result {
                Ok(status) => !matches!(status, 502..=504),
                Err(error) if error.starts_with(TIMED_OUT) => true,
                Err(_) => !self
                    .gateway_down
                    .is_some_and(|(from, to)| (from..=to).contains(&o.answered_at())),
            })
            .collect()
    }

    /// The longest wait for an answer that was a failure ([`Outcome::failed`]).
    pub fn longest_refusal(&self) -> Duration {
        self.outcomes
            .iter()
            .filter(|o| o.failed())
            .map(|o| o.latency)
            .max()
            .unwrap_or_default()
    }

    /// One line for `--nocapture`.
    pub fn summary(&self) -> String {
        format!(
            "{} requests, {} acknowledged writes {:?}; answers {:?}; longest non-2xx answer {} ms; \
             non-2xx by request {:?}",
            self.outcomes.len(),
            self.acks.len(),
            self.acks_by_service(),
            self.by_status(),
            self.longest_refusal().as_millis(),
            self.refusals_by_request()
        )
    }
}

/// Patients and doctors made before the load starts, for the bookings and records.
pub struct Fixture {
    /// The administrator's: patients, staff, appointments.
    pub token: String,
    /// A doctor's: medical records, which administrators may not touch.
    pub doctor_token: String,
    pub patients: Vec<String>,
    pub doctors: Vec<String>,
    /// For [`Load::burst`]: a doctor of its own and patients of their own, so that the bursts
    /// contend with nothing but themselves. Empty unless asked for.
    pub burst_doctor: Option<String>,
    pub burst_patients: Vec<String>,
}

impl Fixture {
    pub async fn create(gateway: &str, token: String) -> Fixture {
        Self::create_with(gateway, token, 0).await
    }

    /// As [`Self::create`], with `burst_patients` patients and a doctor for [`Load::burst`].
    pub async fn create_with(gateway: &str, token: String, burst_patients: usize) -> Fixture {
        let http = reqwest::Client::new();
        let created = |path: &'static str, body: Value| {
            let request = http
                .post(format!("{gateway}{path}"))
                .bearer_auth(&token)
                .json(&body)
                .send();
            async move {
                let response = request.await.expect("fixture request");
                assert_eq!(response.status(), 201, "fixture {path} {body}");
                let entity: Value = response.json().await.unwrap();
                entity["id"].as_str().unwrap().to_owned()
            }
        };
        let mut patients = Vec::new();
        for n in 0..4 {
            patients.push(created("/api/patients", patient(n, "Fixture")).await);
        }
        let mut doctors = Vec::new();
        for n in 0..3 {
            doctors.push(created("/api/staff", doctor(n, "Fixture")).await);
        }
        let mut contenders = Vec::new();
        for n in 0..burst_patients {
            contenders.push(created("/api/patients", patient(n, "Contender")).await);
        }
        let burst_doctor = if burst_patients > 0 {
            Some(created("/api/staff", doctor(0, "Contended")).await)
        } else {
            None
        };
        let clinician = json!({"name": "Dr Fixture Clinician", "role": "doctor",
                               "username": "fixture.clinician", "password": "a long enough password"});
        created("/api/staff", clinician).await;
        let login = http
            .post(format!("{gateway}/auth/login"))
            .json(&json!({"username": "fixture.clinician", "password": "a long enough password"}))
            .send()
            .await
            .expect("clinician login");
        assert_eq!(login.status(), 200, "clinician login");
        let login: Value = login.json().await.unwrap();
        let doctor_token = login["access_token"].as_str().unwrap().to_owned();
        Fixture {
            token,
            doctor_token,
            patients,
            doctors,
            burst_doctor,
            burst_patients: contenders,
        }
    }

    /// The token that may read and write `aggregate`.
    pub fn token_for(&self, aggregate: &str) -> &str {
        if aggregate == "record" {
            &self.doctor_token
        } else {
            &self.token
        }
    }
}

/// Where the writers send their requests and how they treat an unknown outcome.
pub struct LoadOptions {
    /// Gateway URLs, used in turn, request by request (a retry goes to the next one).
    pub gateways: Vec<String>,
    /// Every write carries an `Idempotency-Key` and is sent again with it while its outcome is
    /// unknown (for up to [`RETRY_FOR`]).
    pub retry: bool,
}

/// The final answers to one [`Load::burst`].
#[derive(Debug)]
pub struct Burst {
    pub doctor: String,
    /// The contended slot's start (RFC 3339).
    pub start: String,
    /// How each booking finally ended, `201`, `409`, or what went wrong.
    pub answers: BTreeMap<String, usize>,
    /// The appointments the 201s created (one id per booking that got a 201).
    pub booked: Vec<String>,
    /// Attempts sent again after an unknown outcome.
    pub retried: usize,
    pub took: Duration,
}

impl Burst {
    /// One 201, every other booking a 409.
    pub fn exactly_one_won(&self, bookings: usize) -> bool {
        self.answers.get("201") == Some(&1)
            && self.answers.get("409") == Some(&(bookings - 1))
            && self.answers.len() == 2
            && self.booked.len() == 1
    }
}

/// The writers, running until [`Load::stop`].
pub struct Load {
    /// For single requests on the test's own schedule ([`Load::probe`]).
    prober: Writer,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    journal: Arc<Mutex<Journal>>,
}

impl Load {
    /// [`LANES`] writers per service; each creates, changes and now and then removes its
    /// aggregates. Each write is sent once, to `gateway`.
    pub fn start(gateway: &str, fixture: Arc<Fixture>) -> Load {
        let options = LoadOptions {
            gateways: vec![gateway.to_owned()],
            retry: false,
        };
        Self::start_with(options, fixture)
    }

    /// As [`Self::start`], as `options` say.
    pub fn start_with(options: LoadOptions, fixture: Arc<Fixture>) -> Load {
        assert!(!options.gateways.is_empty(), "a gateway to write through");
        let stop = CancellationToken::new();
        let journal = Arc::new(Mutex::new(Journal::default()));
        let http = reqwest::Client::builder()
            .timeout(CLIENT_TIMEOUT)
            .build()
            .expect("an HTTP client");
        let writer = Writer {
            http,
            gateways: Arc::new(options.gateways),
            next_gateway: Arc::new(AtomicUsize::new(0)),
            retry: options.retry,
            fixture,
            journal: journal.clone(),
            stop: stop.clone(),
            slots: Arc::new(AtomicU64::new(0)),
            probes: Arc::new(AtomicU64::new(0)),
            bursts: Arc::new(AtomicU64::new(0)),
        };
        let prober = writer.clone();
        let mut tasks = Vec::new();
        for lane in 0..LANES {
            tasks.push(tokio::spawn(writer.clone().patients(lane)));
            tasks.push(tokio::spawn(writer.clone().staff(lane)));
            tasks.push(tokio::spawn(writer.clone().appointments(lane)));
            tasks.push(tokio::spawn(writer.clone().records(lane)));
        }
        Load {
            prober,
            stop,
            tasks,
            journal,
        }
    }

    /// One create of `service`'s aggregate outside the writers' loops, journalled like theirs
    /// (and acknowledged when it is a 2xx): its status (`None` below HTTP) and latency.
    pub async fn probe(&self, service: &str) -> (Option<u16>, Duration) {
        let n = self.prober.probes.fetch_add(1, Ordering::Relaxed) as usize;
        let fixture = &self.prober.fixture;
        let (aggregate, what, path, body) = match service {
            "patient" => (
                "patient",
                "patient.probe",
                "/api/patients",
                patient(n, "Probe"),
            ),
            "staff" => ("staff", "staff.probe", "/api/staff", doctor(n, "Probe")),
            "appointment" => {
                let slot = self.prober.slots.fetch_add(1, Ordering::Relaxed);
                let body = booking(fixture, slot, n);
                (
                    "appointment",
                    "appointment.probe",
                    "/api/appointments",
                    body,
                )
            }
            "record" => ("record", "record.probe", "/api/records", note(fixture, n)),
            other => panic!("no service {other}"),
        };
        let reply = self
            .prober
            .send(what, Method::POST, path, Some(&body))
            .await;
        if let Some(reply) = &reply {
            self.prober.ack(aggregate, reply);
        }
        let journal = self.journal.lock().unwrap();
        let last = journal
            .outcomes
            .iter()
            .rev()
            .find(|o| o.what == what)
            .expect("the probe's outcome");
        (last.status(), last.latency)
    }

    /// Books the next contended slot (an hour of its own, far from the writers' bookings) with
    /// the fixture's burst doctor for every burst patient at once, each booking retried with
    /// its key while its outcome is unknown; returns once every booking has its final answer.
    pub async fn burst(&self) -> Burst {
        let fixture = &self.prober.fixture;
        let doctor = fixture
            .burst_doctor
            .clone()
            .expect("a fixture made with burst patients");
        let n = self.prober.bursts.fetch_add(1, Ordering::Relaxed);
        let first = chrono::DateTime::parse_from_rfc3339("2036-01-07T09:00:00Z").unwrap();
        let start = (first + chrono::Duration::hours(n as i64)).to_rfc3339();
        let started = Instant::now();
        let bookings = fixture.burst_patients.iter().map(|patient| {
            let body = json!({"patient_id": patient, "doctor_id": doctor, "start": start,
                              "duration_minutes": 30, "reason": "Contended slot"});
            async move {
                self.prober
                    .send_until_known(BURST, Method::POST, "/api/appointments", Some(&body))
                    .await
            }
        });
        let answers = futures::future::join_all(bookings).await;
        let mut burst = Burst {
            doctor: doctor.clone(),
            start: start.clone(),
            answers: BTreeMap::new(),
            booked: Vec::new(),
            retried: 0,
            took: started.elapsed(),
        };
        for answer in answers {
            burst.retried += answer.attempts - 1;
            let key = match &answer.result {
                Ok(status) => status.to_string(),
                Err(error) => error.clone(),
            };
            *burst.answers.entry(key).or_default() += 1;
            if let Some(reply) = &answer.reply {
                burst.booked.push(self.prober.ack("appointment", reply));
            }
        }
        burst
    }

    /// Acknowledged writes so far of one service.
    pub fn acks_of(&self, service: &str) -> usize {
        let journal = self.journal.lock().unwrap();
        journal
            .acks
            .iter()
            .filter(|a| a.aggregate == service)
            .count()
    }

    /// Lets the load run until `service` has `count` more acknowledged writes (at most
    /// `patience`).
    pub async fn until_more_acks(&self, service: &str, count: usize, patience: Duration) {
        let target = self.acks_of(service) + count;
        let deadline = Instant::now() + patience;
        while self.acks_of(service) < target {
            assert!(
                Instant::now() < deadline,
                "{service} acknowledged fewer than {count} writes in {patience:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the writers (each finishes the request it is in) and returns the journal.
    pub async fn stop(self) -> Journal {
        self.stop.cancel();
        for task in self.tasks {
            task.await.expect("a writer panicked");
        }
        std::mem::take(&mut *self.journal.lock().unwrap())
    }
}

/// A write's final answer after [`Writer::send_until_known`].
struct Answer {
    result: Result<u16, String>,
    /// The body of a 2xx (`Null` for a 204).
    reply: Option<Value>,
    attempts: usize,
}

#[derive(Clone)]
struct Writer {
    http: reqwest::Client,
    gateways: Arc<Vec<String>>,
    /// Which gateway the next request goes to.
    next_gateway: Arc<AtomicUsize>,
    /// See [`LoadOptions::retry`].
    retry: bool,
    fixture: Arc<Fixture>,
    journal: Arc<Mutex<Journal>>,
    stop: CancellationToken,
    /// Each booking takes the next half-hour slot, so no two ever overlap.
    slots: Arc<AtomicU64>,
    /// Numbers the probes' names.
    probes: Arc<AtomicU64>,
    /// Numbers the contended slots.
    bursts: Arc<AtomicU64>,
}

impl Writer {
    /// Sends one write; the reply body on a 2xx (`Null` for a 204), else `None`. A retrying
    /// writer sends it again while its outcome is unknown.
    async fn send(
        &self,
        what: &'static str,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Option<Value> {
        if self.retry {
            return self.send_until_known(what, method, path, body).await.reply;
        }
        self.attempt(what, method, path, body, None).await.1
    }

    /// Sends the write with an `Idempotency-Key` of its own, and again with the same key while
    /// its outcome is unknown, for up to [`RETRY_FOR`]: the service applies it at most once.
    async fn send_until_known(
        &self,
        what: &'static str,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Answer {
        let key = uuid::Uuid::new_v4().to_string();
        let started = Instant::now();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let (result, reply) = self
                .attempt(what, method.clone(), path, body, Some(&key))
                .await;
            if !Outcome::indeterminate(&result) || started.elapsed() > RETRY_FOR {
                return Answer {
                    result,
                    reply,
                    attempts,
                };
            }
        }
    }

    /// Sends one request to the next gateway and journals how it ended; the status (or what
    /// went wrong below HTTP) and the reply body on a 2xx (`Null` for a 204).
    async fn attempt(
        &self,
        what: &'static str,
        method: Method,
        path: &str,
        body: Option<&Value>,
        key: Option<&str>,
    ) -> (Result<u16, String>, Option<Value>) {
        let gateway =
            &self.gateways[self.next_gateway.fetch_add(1, Ordering::Relaxed) % self.gateways.len()];
        let mut request = self
            .http
            .request(method.clone(), format!("{gateway}{path}"))
            .bearer_auth(
                self.fixture
                    .token_for(what.split('.').next().unwrap_or_default()),
            );
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        if method == Method::DELETE {
            let id = path.rsplit('/').next().unwrap_or_default().to_owned();
            self.journal.lock().unwrap().removals_tried.insert(id);
        }
        let sent_at = Instant::now();
        let response = request.send().await;
        let latency = sent_at.elapsed();
        let (result, reply) = match response {
            Ok(response) => {
                let status = response.status();
                let reply = if status == StatusCode::NO_CONTENT {
                    Some(Value::Null)
                } else if status.is_success() {
                    response.json::<Value>().await.ok()
                } else {
                    None
                };
                (Ok(status.as_u16()), reply)
            }
            Err(error) if error.is_timeout() => (Err(TIMED_OUT.to_owned()), None),
            Err(error) => (Err(error.to_string()), None),
        };
        self.journal.lock().unwrap().outcomes.push(Outcome {
            what,
            sent_at,
            latency,
            result: result.clone(),
        });
        if reply.is_none() {
            tokio::time::sleep(PAUSE_AFTER_REFUSAL).await;
        }
        (result, reply)
    }

    /// Records an acknowledged write from its reply.
    fn ack(&self, aggregate: &'static str, reply: &Value) -> String {
        let id = reply["id"].as_str().expect("an id in the reply").to_owned();
        let version = reply["version"].as_i64().expect("a version in the reply");
        self.journal.lock().unwrap().acks.push(Ack {
            aggregate,
            id: id.clone(),
            version,
            change: Change::Written,
        });
        id
    }

    fn ack_removed(&self, aggregate: &'static str, id: &str) {
        self.journal.lock().unwrap().acks.push(Ack {
            aggregate,
            id: id.to_owned(),
            version: 0,
            change: Change::Removed,
        });
    }

    fn stopped(&self) -> bool {
        self.stop.is_cancelled()
    }

    async fn patients(self, lane: usize) {
        for n in (lane..).step_by(LANES) {
            if self.stopped() {
                return;
            }
            let body = patient(n, "Load");
            let Some(created) = self
                .send("patient.create", Method::POST, "/api/patients", Some(&body))
                .await
            else {
                continue;
            };
            let id = self.ack("patient", &created);
            let path = format!("/api/patients/{id}");
            let mut changed = body.clone();
            changed["phone"] = json!(format!("+1 555 {:04}", n % 10_000));
            if let Some(updated) = self
                .send("patient.update", Method::PUT, &path, Some(&changed))
                .await
            {
                self.ack("patient", &updated);
            }
            if n % 3 == 0
                && self
                    .send("patient.delete", Method::DELETE, &path, None)
                    .await
                    .is_some()
            {
                self.ack_removed("patient", &id);
            }
        }
    }

    async fn staff(self, lane: usize) {
        for n in (lane..).step_by(LANES) {
            if self.stopped() {
                return;
            }
            let body = doctor(n, "Load");
            let Some(created) = self
                .send("staff.create", Method::POST, "/api/staff", Some(&body))
                .await
            else {
                continue;
            };
            let id = self.ack("staff", &created);
            let path = format!("/api/staff/{id}");
            let mut changed = body.clone();
            changed["specialization"] = json!("Cardiology");
            if let Some(updated) = self
                .send("staff.update", Method::PUT, &path, Some(&changed))
                .await
            {
                self.ack("staff", &updated);
            }
            if n % 4 == 0
                && self
                    .send("staff.delete", Method::DELETE, &path, None)
                    .await
                    .is_some()
            {
                self.ack_removed("staff", &id);
            }
        }
    }

    async fn appointments(self, lane: usize) {
        let fixture = self.fixture.clone();
        for n in (lane..).step_by(LANES) {
            if self.stopped() {
                return;
            }
            let slot = self.slots.fetch_add(1, Ordering::Relaxed);
            let body = booking(&fixture, slot, n);
            let Some(created) = self
                .send(
                    "appointment.book",
                    Method::POST,
                    "/api/appointments",
                    Some(&body),
                )
                .await
            else {
                continue;
            };
            let id = self.ack("appointment", &created);
            let path = format!("/api/appointments/{id}");
            let changed = json!({"doctor_id": body["doctor_id"], "start": body["start"],
                                 "duration_minutes": 30, "reason": "Check-up",
                                 "notes": format!("Visit {n}")});
            if let Some(updated) = self
                .send("appointment.update", Method::PUT, &path, Some(&changed))
                .await
            {
                self.ack("appointment", &updated);
            }
            if n % 3 == 0
                && self
                    .send("appointment.cancel", Method::DELETE, &path, None)
                    .await
                    .is_some()
            {
                self.ack_removed("appointment", &id);
            }
        }
    }

    async fn records(self, lane: usize) {
        let fixture = self.fixture.clone();
        for n in (lane..).step_by(LANES) {
            if self.stopped() {
                return;
            }
            let body = note(&fixture, n);
            let Some(created) = self
                .send("record.create", Method::POST, "/api/records", Some(&body))
                .await
            else {
                continue;
            };
            let id = self.ack("record", &created);
            let path = format!("/api/records/{id}");
            let mut amended = body.clone();
            amended["body"] = json!("Comfortable overnight; eating well.");
            if let Some(updated) = self
                .send("record.amend", Method::PUT, &path, Some(&amended))
                .await
            {
                self.ack("record", &updated);
            }
            if n % 4 == 0
                && self
                    .send("record.remove", Method::DELETE, &path, None)
                    .await
                    .is_some()
            {
                self.ack_removed("record", &id);
            }
        }
    }
}

/// A name word of letters only, distinct for each `n`: 0 → "Xa", 27 → "Xbb", ...
fn word(n: usize) -> String {
    let mut n = n;
    let mut letters = Vec::new();
    loop {
        letters.push(b'a' + (n % 26) as u8);
        n /= 26;
        if n == 0 {
            break;
        }
    }
    letters.reverse();
    let mut word = String::from_utf8(letters).unwrap();
    word.insert(0, 'X');
    word
}

fn patient(n: usize, family: &str) -> Value {
    json!({"name": format!("{} {family}", word(n)), "birth_date": "1985-04-12", "sex": "female",
           "phone": "+1 555 0100"})
}

fn doctor(n: usize, family: &str) -> Value {
    json!({"name": format!("Dr {} {family}", word(n)), "role": "doctor"})
}

/// A half-hour booking in slot `slot` (slots never overlap) for a fixture patient and doctor.
fn booking(fixture: &Fixture, slot: u64, n: usize) -> Value {
    let first_slot = chrono::DateTime::parse_from_rfc3339("2031-01-06T00:00:00Z").unwrap();
    let start = first_slot + chrono::Duration::minutes(30 * slot as i64);
    json!({"patient_id": fixture.patients[n % fixture.patients.len()],
           "doctor_id": fixture.doctors[n % fixture.doctors.len()],
           "start": start.to_rfc3339(), "duration_minutes": 30, "reason": "Check-up"})
}

/// A clinical note about a fixture patient.
fn note(fixture: &Fixture, n: usize) -> Value {
    json!({"patient_id": fixture.patients[n % fixture.patients.len()], "kind": "note",
           "title": format!("Ward round {n}"), "body": "Comfortable overnight."})
}
