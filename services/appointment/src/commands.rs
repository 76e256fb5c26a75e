//! The appointment service's NATS commands: decode, check the people against the directory,
//! decide ([`crate::domain`]), store, publish the event, reply with the appointment's state.

use bytes::Bytes;
use kit::EventPublisher;
use kit::command::{CommandHandler, RequestContext, decode, to_json};
use kit::directory::{CATCH_UP_PATIENCE, Directory};
use kit::events::now;
use serde_json::Value;
use shared_events::subjects::action;
use shared_events::{Create, Delete, GetById, ListQuery, ServiceError, Update};
use uuid::Uuid;

use crate::domain::{self, AppointmentChanges, BookingRequest};
use crate::filters::AppointmentFilter;
use crate::store::AppointmentStore;

/// Every action the appointment service answers on `hospital.appointment.<action>`.
pub const ACTIONS: &[&str] = &[
    action::CREATE,
    action::GET,
    action::LIST,
    action::UPDATE,
    action::DELETE,
];

pub struct AppointmentCommands {
    pub store: AppointmentStore,
    /// The read-model of patients and staff that bookings are validated against.
    pub directory: Directory,
    pub publisher: EventPublisher,
}

impl CommandHandler for AppointmentCommands {
    async fn handle(
        &self,
        action: &str,
        context: RequestContext,
        payload: Bytes,
    ) -> Result<Value, ServiceError> {
        match action {
            action::CREATE => {
                let command: Create = decode(&payload)?;
                let request = BookingRequest::parse(&command.fields, now())?;
                self.check_people(Some(request.patient_id), Some(request.doctor_id))
                    .await?;
                let appointment = domain::book(request, now());
                let committed = self.store.book(appointment, &context).await?;
                self.publisher
                    .publish_then_reply(committed.event.as_ref(), &committed.appointment)
                    .await
            }
            action::GET => {
                let command: GetById = decode(&payload)?;
                let appointment = self
                    .store
                    .get(command.id)
                    .await?
                    .ok_or_else(|| ServiceError::not_found("appointment"))?;
                to_json(&appointment)
            }
            action::LIST => {
                let query: ListQuery = decode(&payload)?;
                let filter = AppointmentFilter::parse(&query)?;
                to_json(&self.store.list(&filter, &query).await?)
            }
            action::UPDATE => {
                let command: Update = decode(&payload)?;
                let changes = AppointmentChanges::parse(&command.fields)?;
                let current = self
                    .store
                    .get(command.id)
                    .await?
                    .ok_or_else(|| ServiceError::not_found("appointment"))?;
                // Only a new doctor is checked: one already on the appointment stays valid.
                if changes.doctor_id != current.doctor_id {
                    self.check_people(None, Some(changes.doctor_id)).await?;
                }
                let committed = self
                    .store
                    .change(command.id, &context, move |current| {
                        domain::revise(current, command.expected_version, &changes, now())
                    })
                    .await?;
                self.publisher
                    .publish_then_reply(committed.event.as_ref(), &committed.appointment)
                    .await
            }
            action::DELETE => {
                let command: Delete = decode(&payload)?;
                let committed = self
                    .store
                    .change(command.id, &context, move |current| {
                        domain::cancel(current, command.expected_version, None, now())
                    })
                    .await?;
                self.publisher
                    .publish_then_reply(committed.event.as_ref(), &committed.appointment)
                    .await
            }
            other => Err(ServiceError::bad_request(format!("unknown action {other}"))),
        }
    }
}

impl AppointmentCommands {
    /// Looks the people up in the directory and names every field that refers to someone who
    /// cannot be booked. It first lets the read-model catch up (bounded) with the stream as it is
    /// now, not only on an unknown id: a client that has just deleted a patient, or made a doctor
    /// a nurse, is then refused rather than booked and cancelled a moment later.
    async fn check_people(
        &self,
        patient_id: Option<Uuid>,
        doctor_id: Option<Uuid>,
    ) -> Result<(), ServiceError> {
        self.directory.catch_up().wait(CATCH_UP_PATIENCE).await;
        let patient = async {
            match patient_id {
                Some(id) => self
                    .directory
                    .patient(id)
                    .await
                    .map(|known| domain::patient_problem(known.as_ref())),
                None => Ok(None),
            }
        };
        let doctor = async {
            match doctor_id {
                Some(id) => self
                    .directory
                    .staff(id)
                    .await
                    .map(|known| domain::doctor_problem(known.as_ref())),
                None => Ok(None),
            }
        };
        let (patient, doctor) = futures::join!(patient, doctor);
        let problems: Vec<_> = [patient?, doctor?].into_iter().flatten().collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ServiceError::validation(problems))
        }
    }
}
