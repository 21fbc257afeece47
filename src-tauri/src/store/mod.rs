//! SQLite storage for calls and transcripts. Never called on the audio hot path.
