//! The axum router: Twilio's webhook and media socket, and the local `/api`.
