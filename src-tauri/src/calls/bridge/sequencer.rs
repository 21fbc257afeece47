//! At most one response in flight, as the Realtime service demands.
//!
//! The service refuses `response.create` while a response is active
//! (`conversation_already_has_active_response`), and `response.cancel` only *asks*: the response ends
//! with its own `response.done`. So every response the bridge wants (a tool's follow-up, the greeting,
//! a voicemail) goes through here: it is sent at once when nothing runs, otherwise it waits for the
//! running response's `response.done`. Responses the server starts by itself (server VAD) count as
//! running too. Pure state: the bridge sends what the methods return.

use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

/// How long the server may take to start its own response after the caller's turn ends.
pub const SERVER_RESPONSE_WAIT: Duration = Duration::from_secs(3);

/// Why a response is wanted; decides what survives a barge-in and which request wins a tie.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Purpose {
    /// A few words while a tool runs or waits for approval, so the caller is not left in silence:
    /// the first thing to give way (a barge-in drops it, any other request replaces it).
    Filler,
    /// Let the model go on after a tool output or a key press.
    FollowUp,
    /// The speak-first greeting.
    Greeting,
    /// A line the operator asked the agent to say now ("say this now" whisper): survives a barge-in,
    /// as the operator asked for it on purpose.
    OperatorLine,
    /// The call's last words (a voicemail message, the goodbye at the call's maximum length): never
    /// dropped, wins over anything else.
    LastWords,
}

/// A wanted response: its parameters (`None`: the session's defaults) and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub purpose: Purpose,
    pub params: Option<Value>,
}

/// What to send to the model.
#[derive(Debug, Clone, PartialEq)]
pub enum Outgoing {
    Create(Request),
    Cancel,
}

#[derive(Debug, Clone, PartialEq)]
enum State {
    Idle,
    /// The caller's turn ended and the server (VAD with `create_response`) is about to answer it:
    /// nothing may be swapped or created in between, or that answer is lost or refused.
    Expected {
        until: Instant,
        /// Cancel that answer as soon as it exists (a voicemail or a take-over came first).
        cancel_when_created: bool,
    },
    /// Our `response.create` is on its way; `response.created` has not come yet.
    Requested {
        event_id: String,
        request: Request,
        /// A cancel was asked for before the response existed: cancel it once it does.
        cancel_when_created: bool,
    },
    /// A response runs (ours or the server's).
    Active {
        response_id: Option<String>,
        purpose: Option<Purpose>,
    },
    /// `response.cancel` was sent; waiting for that response's `response.done`.
    Cancelling {
        response_id: Option<String>,
    },
}

/// The response sequencer of one model session.
#[derive(Debug)]
pub struct Sequencer {
    state: State,
    queued: Option<Request>,
}

impl Default for Sequencer {
    fn default() -> Self {
        Self::new()
    }
}

impl Sequencer {
    pub fn new() -> Self {
        Sequencer {
            state: State::Idle,
            queued: None,
        }
    }

    /// True while a response runs, is being created or is being cancelled.
    pub fn busy(&self) -> bool {
        self.state != State::Idle
    }

    /// True when nothing runs and nothing waits.
    pub fn idle(&self) -> bool {
        !self.busy() && self.queued.is_none()
    }

    /// The id of the running response, if known.
    pub fn active_response(&self) -> Option<&str> {
        match &self.state {
            State::Active { response_id, .. } | State::Cancelling { response_id } => {
                response_id.as_deref()
            }
            _ => None,
        }
    }

    /// Why the running response was asked for (`None`: the server started it, or nothing runs).
    pub fn active_purpose(&self) -> Option<Purpose> {
        match &self.state {
            State::Active { purpose, .. } => *purpose,
            State::Requested { request, .. } => Some(request.purpose),
            _ => None,
        }
    }

    /// The caller's turn ended; the server will start its answer itself (unless one already runs).
    pub fn on_turn_ended(&mut self, now: Instant) {
        if self.state == State::Idle {
            self.state = State::Expected {
                until: now + SERVER_RESPONSE_WAIT,
                cancel_when_created: false,
            };
        }
    }

    /// Gives up waiting for a server response that never came; returns a waiting request to send.
    pub fn tick(&mut self, now: Instant) -> Option<Request> {
        match self.state {
            State::Expected { until, .. } if until <= now => {
                self.state = State::Idle;
                self.queued.take()
            }
            _ => None,
        }
    }

    /// When [`Sequencer::tick`] has something to do.
    pub fn deadline(&self) -> Option<Instant> {
        match self.state {
            State::Expected { until, .. } => Some(until),
            _ => None,
        }
    }

    /// Asks for a response. Returns it to send now, or `None` when it must wait (it is kept; of two
    /// waiting requests the one with the stronger purpose stays).
    pub fn request(&mut self, request: Request) -> Option<Request> {
        if self.state == State::Idle && self.queued.is_none() {
            return Some(request);
        }
        self.defer(request);
        None
    }

    /// Keeps a request to send later (of two waiting requests the one with the stronger purpose stays;
    /// a session that is not ready yet sends it from [`Sequencer::resume`]).
    pub fn defer(&mut self, request: Request) {
        if self
            .queued
            .as_ref()
            .is_none_or(|q| q.purpose <= request.purpose)
        {
            self.queued = Some(request);
        }
    }

    /// The bridge sent `request` as client event `event_id`.
    pub fn sent(&mut self, event_id: String, request: Request) {
        self.state = State::Requested {
            event_id,
            request,
            cancel_when_created: false,
        };
    }

    /// `response.created`: ours if we asked, else the server's own (server VAD).
    pub fn on_created(&mut self, response_id: Option<String>) -> Option<Outgoing> {
        let (purpose, cancel) = match std::mem::replace(&mut self.state, State::Idle) {
            State::Requested {
                request,
                cancel_when_created,
                ..
            } => (Some(request.purpose), cancel_when_created),
            State::Expected {
                cancel_when_created,
                ..
            } => (None, cancel_when_created),
            _ => (None, false),
        };
        if cancel {
            self.state = State::Cancelling { response_id };
            return Some(Outgoing::Cancel);
        }
        self.state = State::Active {
            response_id,
            purpose,
        };
        None
    }

    /// `response.done`: the response ended (whatever its status); the next waiting request goes out.
    pub fn on_done(&mut self, response_id: Option<&str>) -> Option<Request> {
        let ours = match &self.state {
            State::Active {
                response_id: Some(id),
                ..
            }
            | State::Cancelling {
                response_id: Some(id),
            } => response_id.is_none_or(|r| r == id),
            // A done while our create is in flight belongs to an earlier response: keep waiting.
            State::Requested { .. } => false,
            _ => true,
        };
        if !ours {
            return None;
        }
        self.state = State::Idle;
        self.queued.take()
    }

    /// An `error` answered client event `event_id`. If it refused our `response.create`, returns what
    /// to do: a refusal because a response is already active (the server started one we have not heard
    /// of yet) waits for that response's end and tries again; any other refusal is given up.
    pub fn on_error(&mut self, event_id: Option<&str>, code: Option<&str>) -> Option<Request> {
        let State::Requested {
            event_id: ours,
            request,
            ..
        } = &self.state
        else {
            return None;
        };
        let busy = code == Some("conversation_already_has_active_response");
        let matches = match event_id {
            Some(id) => id == ours,
            // An error that names no event can still only be this refusal.
            None => busy,
        };
        if !matches {
            return None;
        }
        let request = request.clone();
        if busy {
            // Keep the request; the running response's `response.done` lets it go.
            self.state = State::Active {
                response_id: None,
                purpose: None,
            };
            self.defer(request);
            None
        } else {
            self.state = State::Idle;
            self.queued.take()
        }
    }

    /// Stops the running response (voicemail, take-over). Returns the cancel to send, if any.
    pub fn cancel(&mut self) -> Option<Outgoing> {
        match &mut self.state {
            State::Active { response_id, .. } => {
                self.state = State::Cancelling {
                    response_id: response_id.take(),
                };
                Some(Outgoing::Cancel)
            }
            State::Requested {
                cancel_when_created,
                ..
            }
            | State::Expected {
                cancel_when_created,
                ..
            } => {
                *cancel_when_created = true;
                None
            }
            _ => None,
        }
    }

    /// The caller barged in: the server cancels the running response itself (`interrupt_response`)
    /// and answers the new turn, so waiting follow-ups and greetings are dropped. Lines the operator
    /// asked for and last words stay.
    pub fn on_barge_in(&mut self) {
        if self
            .queued
            .as_ref()
            .is_some_and(|q| q.purpose < Purpose::OperatorLine)
        {
            self.queued = None;
        }
    }

    /// The operator took the call over: nothing the agent meant to say next may play. Last words
    /// (which end the call) stay.
    pub fn drop_queued(&mut self) {
        if self
            .queued
            .as_ref()
            .is_some_and(|q| q.purpose != Purpose::LastWords)
        {
            self.queued = None;
        }
    }

    /// The model session was replaced: nothing runs on the new one. A waiting request is kept and
    /// returned by [`Sequencer::resume`] once the new session is ready.
    pub fn reset(&mut self) {
        if let State::Requested { request, .. } = std::mem::replace(&mut self.state, State::Idle) {
            self.defer(request);
        }
    }

    /// After [`Sequencer::reset`], once the new session is configured: the request to send now.
    pub fn resume(&mut self) -> Option<Request> {
        if self.state == State::Idle {
            self.queued.take()
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(purpose: Purpose) -> Request {
        Request {
            purpose,
            params: None,
        }
    }

    #[test]
    fn a_tool_follow_up_waits_for_the_running_response_to_finish() {
        let mut s = Sequencer::new();
        // The server's VAD started a response; it calls a tool.
        assert_eq!(s.on_created(Some("r1".into())), None);
        // Arguments-done arrives before response.done: the follow-up must wait.
        assert_eq!(s.request(req(Purpose::FollowUp)), None);
        assert!(s.busy());
        // response.done lets it go.
        assert_eq!(s.on_done(Some("r1")), Some(req(Purpose::FollowUp)));
        s.sent("e1".into(), req(Purpose::FollowUp));
        assert!(s.busy());
        assert_eq!(s.on_created(Some("r2".into())), None);
        assert_eq!(s.on_done(Some("r2")), None);
        assert!(s.idle());
    }

    #[test]
    fn cancel_is_asynchronous_and_the_next_response_waits_for_its_done() {
        let mut s = Sequencer::new();
        s.on_created(Some("r1".into()));
        assert_eq!(s.cancel(), Some(Outgoing::Cancel));
        // The voicemail is asked for right after the cancel: it must not go out yet.
        assert_eq!(s.request(req(Purpose::LastWords)), None);
        // A late delta's done for another id does not release it... only r1's done does.
        assert_eq!(s.on_done(Some("r0")), None);
        assert_eq!(s.on_done(Some("r1")), Some(req(Purpose::LastWords)));
    }

    #[test]
    fn a_refusal_for_an_active_response_is_retried_after_that_response() {
        let mut s = Sequencer::new();
        let r = s.request(req(Purpose::Greeting)).unwrap();
        s.sent("e7".into(), r);
        // The server had just started its own response.
        assert_eq!(
            s.on_error(Some("e7"), Some("conversation_already_has_active_response")),
            None
        );
        assert!(s.busy());
        assert_eq!(s.on_done(Some("r_server")), Some(req(Purpose::Greeting)));
    }

    #[test]
    fn other_refusals_are_given_up_and_unrelated_errors_ignored() {
        let mut s = Sequencer::new();
        s.sent("e1".into(), req(Purpose::FollowUp));
        assert_eq!(s.on_error(Some("e9"), Some("invalid_value")), None);
        assert!(s.busy());
        assert_eq!(s.on_error(Some("e1"), Some("invalid_value")), None);
        assert!(s.idle());
    }

    #[test]
    fn cancel_before_created_cancels_once_it_exists() {
        let mut s = Sequencer::new();
        s.sent("e1".into(), req(Purpose::FollowUp));
        assert_eq!(s.cancel(), None);
        assert_eq!(s.on_created(Some("r1".into())), Some(Outgoing::Cancel));
        assert_eq!(s.on_done(Some("r1")), None);
        assert!(s.idle());
    }

    #[test]
    fn barge_in_drops_follow_ups_but_not_a_voicemail() {
        let mut s = Sequencer::new();
        s.on_created(Some("r1".into()));
        s.request(req(Purpose::FollowUp));
        s.on_barge_in();
        assert_eq!(s.on_done(Some("r1")), None);
        s.on_created(Some("r2".into()));
        s.request(req(Purpose::LastWords));
        s.request(req(Purpose::FollowUp));
        s.on_barge_in();
        assert_eq!(s.on_done(Some("r2")), Some(req(Purpose::LastWords)));
    }

    #[test]
    fn the_server_answer_to_a_finished_turn_is_waited_for() {
        let t0 = Instant::now();
        let mut s = Sequencer::new();
        s.on_turn_ended(t0);
        // Between speech_stopped and response.created: busy, so no swap and no create.
        assert!(s.busy());
        assert_eq!(s.request(req(Purpose::FollowUp)), None);
        assert_eq!(s.on_created(Some("r1".into())), None);
        assert_eq!(s.on_done(Some("r1")), Some(req(Purpose::FollowUp)));
        // A server answer that never comes stops blocking after the wait.
        s.on_turn_ended(t0);
        s.request(req(Purpose::Greeting));
        assert_eq!(s.tick(t0 + Duration::from_millis(100)), None);
        assert_eq!(
            s.tick(t0 + SERVER_RESPONSE_WAIT),
            Some(req(Purpose::Greeting))
        );
        assert!(!s.busy());
    }

    #[test]
    fn a_voicemail_right_after_a_turn_cancels_the_answer_the_server_is_about_to_start() {
        let t0 = Instant::now();
        let mut s = Sequencer::new();
        // The machine's greeting just ended: the server will answer it.
        s.on_turn_ended(t0);
        assert_eq!(s.cancel(), None, "nothing to cancel yet");
        assert_eq!(s.request(req(Purpose::LastWords)), None);
        // Its answer starts: cancelled at once, and the voicemail follows its done.
        assert_eq!(s.on_created(Some("r1".into())), Some(Outgoing::Cancel));
        assert_eq!(s.on_done(Some("r1")), Some(req(Purpose::LastWords)));
    }

    #[test]
    fn a_request_in_flight_survives_a_session_change() {
        let mut s = Sequencer::new();
        s.sent("e1".into(), req(Purpose::Greeting));
        s.reset();
        assert!(!s.busy());
        assert_eq!(s.resume(), Some(req(Purpose::Greeting)));
        assert_eq!(s.resume(), None);
    }
}
