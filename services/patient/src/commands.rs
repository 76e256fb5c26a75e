//! The patient service's NATS commands: decode, decide ([`crate::domain`]), store, publish the
//! event, reply with the patient's state.

use bytes::Bytes;
use kit::EventPublisher;
use kit::command::{CommandHandler, RequestContext, decode, to_json};
use kit::events::now;
use serde_json::Value;
use shared_events::subjects::action;
use shared_events::{Create, Delete, GetById, ListQuery, ServiceError, Update};

use crate::domain::{self, PatientDetails};
use crate::store::PatientStore;

/// Every action the patient service answers on `hospital.patient.<action>`.
pub const ACTIONS: &[&str] = &[
    action::CREATE,
    action::GET,
    action::LIST,
    action::UPDATE,
    action::DELETE,
];

pub struct PatientCommands {
    pub store: PatientStore,
    pub publisher: EventPublisher,
}

impl CommandHandler for PatientCommands {
    async fn handle(
        &self,
        action: &str,
        context: RequestContext,
        payload: Bytes,
    ) -> Result<Value, ServiceError> {
        match action {
            action::CREATE => {
                let command: Create = decode(&payload)?;
                let details = PatientDetails::parse(&command.fields, now().date_naive())?;
                let at = now();
                let committed = self
                    .store
                    .create(&context, |mrn| domain::register(details.clone(), mrn, at))
                    .await?;
                self.publisher
                    .publish_then_reply(committed.event.as_ref(), &committed.patient)
                    .await
            }
            action::GET => {
                let command: GetById = decode(&payload)?;
                let patient = self
                    .store
                    .get(command.id)
                    .await?
                    .ok_or_else(|| ServiceError::not_found("patient"))?;
                to_json(&patient)
            }
            action::LIST => {
                let query: ListQuery = decode(&payload)?;
                kit::listing::refuse_unknown_filters(&query, &[])?;
                to_json(&self.store.list(&query).await?)
            }
            action::UPDATE => {
                let command: Update = decode(&payload)?;
                let details = PatientDetails::parse(&command.fields, now().date_naive())?;
                let committed = self
                    .store
                    .change(command.id, "updated", &context, move |current| {
                        domain::update(current, command.expected_version, details, now())
                    })
                    .await?;
                self.publisher
                    .publish_then_reply(committed.event.as_ref(), &committed.patient)
                    .await
            }
            action::DELETE => {
                let command: Delete = decode(&payload)?;
                let committed = self
                    .store
                    .change(command.id, "deleted", &context, move |current| {
                        domain::delete(current, command.expected_version, now()).map(Some)
                    })
                    .await?;
                self.publisher
                    .publish_then_reply(committed.event.as_ref(), &committed.patient)
                    .await
            }
            other => Err(ServiceError::bad_request(format!("unknown action {other}"))),
        }
    }
}

impl PatientCommands {}
