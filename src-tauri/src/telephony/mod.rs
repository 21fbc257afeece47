//! Telephony providers. Only Twilio today; nothing here knows about the model side.
pub mod twilio;
