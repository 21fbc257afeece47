//! Telephony providers. Only Twilio today; nothing here knows about the model side.
pub mod phone;
pub mod twilio;
