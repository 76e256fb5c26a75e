//! The record service's NATS commands: decode, check the caller and the references against the
//! read-model, decide ([`crate::domain`]), store, publish the event, reply with the record.

use bytes::Bytes;
use kit::EventPublisher;
use kit::command::{CommandHandler, RequestContext, decode, to_json};
use kit::directory::CATCH_UP_PATIENCE;
use kit::directory::Directory;
use kit::events::now;
use serde_json::Value;
use shared_events::subjects::action;
use shared_events::{Create, Delete, FieldError, GetById, ListQuery, ServiceError, Update};
use uuid::Uuid;

use crate::details::{RecordRequest, Writing};
use crate::domain::{self, Change};
use crate::read_model::KnownAppointments;
use crate::store::RecordStore;
use crate::timeline::RecordFilter;

/// Every action the record service answers on `hospital.record.<action>`.
pub const ACTIONS: &[&str] = &[
    action::CREATE,
    action::GET,
    action::LIST,
    action::UPDATE,
    action::DELETE,
    action::HISTORY,
];

pub struct RecordCommands {
    pub store: RecordStore,
    pub publisher: EventPublisher,
    /// Patients and staff, from the read-model.
    pub directory: Directory,
    pub appointments: KnownAppointments,
}

impl CommandHandler for RecordCommands {
    async fn handle(
        &self,
        action: &str,
        context: RequestContext,
        payload: Bytes,
    ) -> Result<Value, ServiceError> {
        match action {
            action::CREATE => {
                let command: Create = decode(&payload)?;
                let author_id = self.author(&context).await?;
                let request = RecordRequest::parse(&command.fields, Writing::NewRecord, now())?;
                let patient_id = request.patient_id.ok_or_else(ServiceError::internal)?;
                self.check_references(patient_id, request.details.appointment_id)
                    .await?;
                let record = domain::write(patient_id, request.details, author_id, now());
                let committed = self.store.create(record, &context).await?;
                self.publisher
                    .publish_then_reply(committed.event.as_ref(), &committed.record)
                    .await
            }
            action::GET => {
                let command: GetById = decode(&payload)?;
                let record = self
                    .store
                    .get(command.id)
                    .await?
                    .ok_or_else(|| ServiceError::not_found("record"))?;
                to_json(&record)
            }
            action::LIST => {
                let query: ListQuery = decode(&payload)?;
                let filter = RecordFilter::from_query(&query)?;
                to_json(&self.store.list(&filter, &query).await?)
            }
            action::HISTORY => {
                let command: GetById = decode(&payload)?;
                let versions = self.store.history(command.id).await?;
                if versions.is_empty() {
                    return Err(ServiceError::not_found("record"));
                }
                to_json(&versions)
            }
            action::UPDATE => {
                let command: Update = decode(&payload)?;
                self.author(&context).await?;
                let request = RecordRequest::parse(&command.fields, Writing::Amendment, now())?;
                let current = self
                    .store
                    .get(command.id)
                    .await?
                    .ok_or_else(|| ServiceError::not_found("record"))?;
                // The patient of a record never changes, so the appointment can be checked
                // before the write transaction, without holding the lock while waiting.
                let appointment_id = request.details.appointment_id;
                if appointment_id != current.appointment_id
                    && let Some(problem) = self
                        .appointment_problem(current.patient_id, appointment_id)
                        .await?
                {
                    return Err(ServiceError::validation(vec![problem]));
                }
                let committed = self
                    .store
                    .change(command.id, Change::Amended, &context, move |current| {
                        domain::amend(current, command.expected_version, request, now())
                    })
                    .await?;
                self.publisher
                    .publish_then_reply(committed.event.as_ref(), &committed.record)
                    .await
            }
            action::DELETE => {
                let command: Delete = decode(&payload)?;
                self.author(&context).await?;
                let committed = self
                    .store
                    .change(
                        command.id,
                        Change::EnteredInError,
                        &context,
                        move |current| {
                            domain::enter_in_error(current, command.expected_version, now())
                                .map(Some)
                        },
                    )
                    .await?;
                self.publisher
                    .publish_then_reply(committed.event.as_ref(), &committed.record)
                    .await
            }
            other => Err(ServiceError::bad_request(format!("unknown action {other}"))),
        }
    }
}

impl RecordCommands {
    /// The caller, who must be a known, current staff member to write a record.
    async fn author(&self, context: &RequestContext) -> Result<Uuid, ServiceError> {
        let id = domain::author_id(&context.actor)?;
        let known = self.directory.staff(id).await?;
        domain::check_author(known.as_ref())?;
        Ok(id)
    }

    /// The patient and appointment of a new record, checked together so that a client learns
    /// about both in one answer. The read-model first catches up (bounded) with the stream as it
    /// is now, not only on an unknown id: a patient deleted a moment ago gets no new record.
    async fn check_references(
        &self,
        patient_id: Uuid,
        appointment_id: Option<Uuid>,
    ) -> Result<(), ServiceError> {
        self.directory.catch_up().wait(CATCH_UP_PATIENCE).await;
        let patient = self.directory.patient(patient_id).await?;
        let problems: Vec<FieldError> = domain::patient_problem(patient.as_ref())
            .into_iter()
            .chain(self.appointment_problem(patient_id, appointment_id).await?)
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ServiceError::validation(problems))
        }
    }

    async fn appointment_problem(
        &self,
        patient_id: Uuid,
        appointment_id: Option<Uuid>,
    ) -> Result<Option<FieldError>, ServiceError> {
        let Some(id) = appointment_id else {
            return Ok(None);
        };
        let appointment = self.appointments.get(id).await?;
        Ok(domain::appointment_problem(
            appointment.as_ref(),
            patient_id,
        ))
    }
}
