//! `nats.conf`'s users and permissions, proven with real connections to a real nats-server.
//!
//! A denied publish or subscribe is not an error the call returns: nats-server answers it with
//! `-ERR 'Permissions Violation for ...'`, which async-nats reports as a `ServerError` event, and
//! drops the message. So each check waits for that event (nats-server handles a connection's
//! operations in order, so it comes before the reply to the flush that follows) and then looks
//! at the effect: the stream did not grow, no one answers the subject, the stream still exists.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, kv, stream};
use async_nats::{ConnectErrorKind, Event, ServerError};
use futures::StreamExt;
use kit::nats_server::TestNatsServer;
use shared_events::subjects::{
    ALL_AUDIT, AUDIT_STREAM, EVENT_STREAM, REVOKED_TOKENS_BUCKET, command, service,
};
use tokio::sync::mpsc;

/// Long enough for any server answer on a loaded machine; only waited out when a test fails.
const PATIENCE: Duration = Duration::from_secs(10);

/// A client connected as one user, with the errors the server sent it.
struct Watched {
    client: async_nats::Client,
    errors: mpsc::UnboundedReceiver<String>,
}

impl Watched {
    async fn connect(server: &TestNatsServer, user: &str) -> Self {
        let credentials = server.credentials(user);
        let (sender, errors) = mpsc::unbounded_channel();
        let client = async_nats::ConnectOptions::new()
            .user_and_password(credentials.user.clone(), credentials.password().to_owned())
            .custom_inbox_prefix(credentials.inbox_prefix())
            .event_callback(move |event| {
                let sender = sender.clone();
                async move {
                    if let Event::ServerError(ServerError::Other(error)) = event {
                        let _ = sender.send(error);
                    }
                }
            })
            .connect(server.url())
            .await
            .unwrap_or_else(|e| panic!("{user} connects: {e}"));
        Watched { client, errors }
    }

    fn js(&self) -> jetstream::Context {
        let mut js = jetstream::new(self.client.clone());
        // A denied JetStream request is never answered: fail it quickly.
        js.set_timeout(Duration::from_secs(2));
        js
    }

    /// Waits for the server's permissions violation naming `subject`.
    async fn refused(&mut self, operation: &str, subject: &str) {
        self.client.flush().await.unwrap();
        let wanted = format!("Permissions Violation for {operation} to \"{subject}\"");
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            match tokio::time::timeout_at(deadline, self.errors.recv()).await {
                Ok(Some(error)) if error.contains(&wanted) => return,
                Ok(Some(_other)) => continue,
                Ok(None) | Err(_) => {
                    panic!("no permissions violation for {operation} to {subject}")
                }
            }
        }
    }

    /// No violation was reported for what was sent before (and its subscriptions are in place).
    async fn nothing_refused(&mut self) {
        // The server answers the round trip after any -ERR for what was sent before it; the
        // event callback runs right after the client reads that.
        kit::nats_server::round_trip(&self.client).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        if let Ok(error) = self.errors.try_recv() {
            panic!("unexpected server error: {error}");
        }
    }
}

async fn last_sequence(js: &jetstream::Context, stream: &str) -> u64 {
    let mut stream = js.get_stream(stream).await.unwrap();
    stream.info().await.unwrap().state.last_sequence
}

fn event_subject(aggregate: &str, verb: &str) -> String {
    format!(
        "hospital.events.{aggregate}.{}.{verb}",
        uuid::Uuid::now_v7()
    )
}

async fn provisioned(server: &TestNatsServer) -> Watched {
    let patient = Watched::connect(server, "patient").await;
    kit::event_stream::ensure(&patient.js(), 1).await.unwrap();
    patient
}

#[tokio::test]
async fn a_service_publishes_its_own_events_and_no_one_elses() {
    let server = TestNatsServer::start().await;
    let mut patient = provisioned(&server).await;
    let operator = Watched::connect(&server, "operator").await;

    let ack = patient
        .js()
        .publish(event_subject("patient", "created"), "{}".into())
        .await
        .unwrap()
        .await
        .expect("its own event is stored");
    assert_eq!(ack.sequence, 1);

    let staff_event = event_subject("staff", "created");
    let refused = patient
        .js()
        .publish(staff_event.clone(), "{}".into())
        .await
        .unwrap()
        .await;
    assert!(
        refused.is_err(),
        "a staff event from the patient service was acknowledged"
    );
    patient.refused("Publish", &staff_event).await;
    assert_eq!(last_sequence(&operator.js(), EVENT_STREAM).await, 1);
    patient.nothing_refused().await;
}

#[tokio::test]
async fn a_service_answers_its_own_commands_and_no_one_elses() {
    let server = TestNatsServer::start().await;
    let mut patient = Watched::connect(&server, "patient").await;
    let gateway = Watched::connect(&server, "gateway").await;

    let staff_get = command(service::STAFF, "get");
    let mut stolen = patient
        .client
        .queue_subscribe(staff_get.clone(), "staff".into())
        .await
        .unwrap();
    patient.refused("Subscription", &staff_get).await;
    // The refused subscription never reached the server: nothing answers the staff command.
    let error = gateway
        .client
        .request(staff_get, "{}".into())
        .await
        .expect_err("no one may answer a staff command but the staff service");
    assert_eq!(
        error.kind(),
        async_nats::client::RequestErrorKind::NoResponders
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(100), stolen.next())
            .await
            .map_or(true, |m| m.is_none()),
        "the patient service saw a staff command"
    );

    // Its own commands: received and answered.
    let patient_get = command(service::PATIENT, "get");
    let mut own = patient
        .client
        .queue_subscribe(patient_get.clone(), "patient".into())
        .await
        .unwrap();
    patient.nothing_refused().await;
    let answering = tokio::spawn({
        let client = patient.client.clone();
        async move {
            let request = own.next().await.unwrap();
            client
                .publish(request.reply.unwrap(), "answer".into())
                .await
                .unwrap();
            client.flush().await.unwrap();
        }
    });
    let reply = gateway
        .client
        .request(patient_get, "{}".into())
        .await
        .expect("the patient service answers its own command");
    assert_eq!(reply.payload, "answer");
    answering.await.unwrap();
    patient.nothing_refused().await;
}

#[tokio::test]
async fn a_service_cannot_read_another_components_replies() {
    let server = TestNatsServer::start().await;
    let mut patient = Watched::connect(&server, "patient").await;
    let _ = patient.client.subscribe("_INBOX_gateway.>").await.unwrap();
    patient.refused("Subscription", "_INBOX_gateway.>").await;
    let _ = patient.client.subscribe("_INBOX.>").await.unwrap();
    patient.refused("Subscription", "_INBOX.>").await;
}

#[tokio::test]
async fn anonymous_clients_and_wrong_passwords_are_refused() {
    let server = TestNatsServer::start().await;
    let anonymous = async_nats::ConnectOptions::new()
        .connect(server.url())
        .await
        .expect_err("an anonymous client connected");
    assert_eq!(anonymous.kind(), ConnectErrorKind::AuthorizationViolation);

    let wrong = async_nats::ConnectOptions::new()
        .user_and_password("gateway".into(), "not-the-password".into())
        .connect(server.url())
        .await
        .expect_err("a wrong password connected");
    assert_eq!(wrong.kind(), ConnectErrorKind::AuthorizationViolation);

    // Another user's password is a wrong password too.
    let swapped = async_nats::ConnectOptions::new()
        .user_and_password(
            "gateway".into(),
            server.credentials("patient").password().to_owned(),
        )
        .connect(server.url())
        .await
        .expect_err("the gateway connected with the patient service's password");
    assert_eq!(swapped.kind(), ConnectErrorKind::AuthorizationViolation);
}

fn audit_config() -> stream::Config {
    stream::Config {
        name: AUDIT_STREAM.to_owned(),
        subjects: vec![ALL_AUDIT.to_owned()],
        storage: stream::StorageType::File,
        allow_direct: true,
        ..Default::default()
    }
}

#[tokio::test]
async fn the_gateway_cannot_publish_events() {
    let server = TestNatsServer::start().await;
    let _patient = provisioned(&server).await;
    let mut gateway = Watched::connect(&server, "gateway").await;
    let operator = Watched::connect(&server, "operator").await;

    for aggregate in ["patient", "staff", "appointment", "record"] {
        let subject = event_subject(aggregate, "deleted");
        let refused = gateway
            .js()
            .publish(subject.clone(), "{}".into())
            .await
            .unwrap()
            .await;
        assert!(refused.is_err(), "the gateway published {subject}");
        gateway.refused("Publish", &subject).await;
    }
    // Nor create the stream (with other subjects, say) nor a read-model's consumer.
    let create = "$JS.API.STREAM.CREATE.HOSPITAL_EVENTS";
    gateway.client.publish(create, "{}".into()).await.unwrap();
    gateway.refused("Publish", create).await;
    let delete = "$JS.API.CONSUMER.DELETE.HOSPITAL_EVENTS.appointment-read-model";
    gateway.client.publish(delete, "".into()).await.unwrap();
    gateway.refused("Publish", delete).await;
    assert_eq!(last_sequence(&operator.js(), EVENT_STREAM).await, 0);
}

#[tokio::test]
async fn the_gateway_appends_to_the_audit_trail_but_cannot_erase_it() {
    let server = TestNatsServer::start().await;
    let mut gateway = Watched::connect(&server, "gateway").await;
    let js = gateway.js();
    let audit = js.get_or_create_stream(audit_config()).await.unwrap();
    for n in 0..3 {
        js.publish(format!("hospital.audit.login.{n}"), "{}".into())
            .await
            .unwrap()
            .await
            .expect("an audit entry is stored");
    }
    // Reading it back with an ephemeral pull consumer, acknowledging.
    let reader = audit
        .create_consumer(consumer::pull::Config {
            filter_subject: ALL_AUDIT.to_owned(),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut messages = reader.fetch().max_messages(3).messages().await.unwrap();
    let mut read = 0;
    while let Some(message) = messages.next().await {
        message.unwrap().ack().await.unwrap();
        read += 1;
    }
    assert_eq!(read, 3);
    audit
        .delete_consumer(&reader.cached_info().name)
        .await
        .unwrap();
    // And one entry by its sequence, directly or through the stream leader.
    assert_eq!(audit.direct_get(2).await.unwrap().sequence, 2);
    assert_eq!(audit.get_raw_message(3).await.unwrap().sequence, 3);
    gateway.nothing_refused().await;

    assert!(js.delete_stream(AUDIT_STREAM).await.is_err());
    gateway
        .refused("Publish", "$JS.API.STREAM.DELETE.HOSPITAL_AUDIT")
        .await;
    assert!(audit.purge().await.is_err());
    gateway
        .refused("Publish", "$JS.API.STREAM.PURGE.HOSPITAL_AUDIT")
        .await;
    assert!(audit.delete_message(1).await.is_err());
    gateway
        .refused("Publish", "$JS.API.STREAM.MSG.DELETE.HOSPITAL_AUDIT")
        .await;
    let shrunk = stream::Config {
        max_messages: 1,
        ..audit_config()
    };
    assert!(js.update_stream(shrunk).await.is_err());
    gateway
        .refused("Publish", "$JS.API.STREAM.UPDATE.HOSPITAL_AUDIT")
        .await;

    let operator = Watched::connect(&server, "operator").await;
    let info = operator
        .js()
        .get_stream(AUDIT_STREAM)
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .clone();
    assert_eq!((info.state.messages, info.state.first_sequence), (3, 1));
}

#[tokio::test]
async fn the_gateway_keeps_its_revoked_tokens_and_follows_the_events() {
    let server = TestNatsServer::start().await;
    let patient = provisioned(&server).await;
    let mut gateway = Watched::connect(&server, "gateway").await;
    let js = gateway.js();

    let bucket = js
        .create_key_value(kv::Config {
            bucket: REVOKED_TOKENS_BUCKET.to_owned(),
            history: 1,
            max_age: Duration::from_secs(3600),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut watch = bucket.watch_all().await.unwrap();
    bucket.put("token-1", "revoked".into()).await.unwrap();
    let entry = tokio::time::timeout(PATIENCE, watch.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(entry.key, "token-1");
    assert_eq!(bucket.get("token-1").await.unwrap().unwrap(), "revoked");

    // The staff changes, with an ordered consumer, as the live feed does.
    patient
        .js()
        .publish(event_subject("patient", "created"), "{}".into())
        .await
        .unwrap()
        .await
        .unwrap();
    let stream = js.get_stream(EVENT_STREAM).await.unwrap();
    let feed = stream
        .create_consumer(consumer::pull::OrderedConfig {
            name: Some("gateway-feed-test".into()),
            filter_subjects: vec!["hospital.events.patient.>".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    let mut messages = feed.messages().await.unwrap();
    let first = tokio::time::timeout(PATIENCE, messages.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(first.subject.starts_with("hospital.events.patient."));
    js.delete_consumer_from_stream("gateway-feed-test", EVENT_STREAM)
        .await
        .unwrap();
    gateway.nothing_refused().await;
}

#[tokio::test]
async fn the_operator_reads_everything_and_changes_nothing() {
    let server = TestNatsServer::start().await;
    let patient = provisioned(&server).await;
    patient
        .js()
        .publish(event_subject("patient", "created"), "{}".into())
        .await
        .unwrap()
        .await
        .unwrap();
    let mut operator = Watched::connect(&server, "operator").await;
    let js = operator.js();

    let mut stream = js.get_stream(EVENT_STREAM).await.unwrap();
    assert_eq!(stream.info().await.unwrap().state.messages, 1);
    let tail = stream
        .create_consumer(consumer::pull::OrderedConfig::default())
        .await
        .unwrap();
    let mut messages = tail.messages().await.unwrap();
    assert!(
        tokio::time::timeout(PATIENCE, messages.next())
            .await
            .is_ok()
    );
    let names: Vec<_> = stream.consumer_names().collect().await;
    assert_eq!(names.len(), 1);
    operator.nothing_refused().await;

    let subject = event_subject("patient", "deleted");
    assert!(
        js.publish(subject.clone(), "{}".into())
            .await
            .unwrap()
            .await
            .is_err()
    );
    operator.refused("Publish", &subject).await;
    let create = command(service::PATIENT, "create");
    operator
        .client
        .publish(create.clone(), "{}".into())
        .await
        .unwrap();
    operator.refused("Publish", &create).await;
    assert!(js.delete_stream(EVENT_STREAM).await.is_err());
    operator
        .refused("Publish", "$JS.API.STREAM.DELETE.HOSPITAL_EVENTS")
        .await;
    assert_eq!(stream.info().await.unwrap().state.messages, 1);
}

#[tokio::test]
async fn a_read_models_durable_consumer_is_its_services_alone() {
    let server = TestNatsServer::start().await;
    let appointment = Watched::connect(&server, "appointment").await;
    kit::event_stream::ensure(&appointment.js(), 1)
        .await
        .unwrap();
    let durable = "appointment-read-model";
    let own = appointment
        .js()
        .get_stream(EVENT_STREAM)
        .await
        .unwrap()
        .create_consumer(consumer::pull::Config {
            durable_name: Some(durable.into()),
            filter_subject: shared_events::subjects::ALL_EVENTS.into(),
            ..Default::default()
        })
        .await
        .expect("the appointment service makes its own consumer");
    assert_eq!(own.cached_info().name, durable);

    // Everyone else may look at it, and no one else may pull from it, replace or delete it.
    for user in ["operator", "gateway", "record"] {
        let mut other = Watched::connect(&server, user).await;
        let js = other.js();
        let stream = js.get_stream_no_info(EVENT_STREAM).await.unwrap();
        let info = stream.consumer_info(durable).await.unwrap();
        assert_eq!(info.name, durable, "{user} reads its info");
        let next = format!("$JS.API.CONSUMER.MSG.NEXT.{EVENT_STREAM}.{durable}");
        other
            .client
            .publish_with_reply(next.clone(), other.client.new_inbox(), "1".into())
            .await
            .unwrap();
        other.refused("Publish", &next).await;
        assert!(stream.delete_consumer(durable).await.is_err(), "{user}");
        other
            .refused(
                "Publish",
                &format!("$JS.API.CONSUMER.DELETE.{EVENT_STREAM}.{durable}"),
            )
            .await;
    }
    let mut operator = Watched::connect(&server, "operator").await;
    let info = operator
        .js()
        .get_stream_no_info(EVENT_STREAM)
        .await
        .unwrap()
        .consumer_info(durable)
        .await
        .unwrap()
        .clone();
    assert_eq!(info.name, durable, "still there");
    operator.nothing_refused().await;
}
