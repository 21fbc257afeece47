//! The caller's script, stepped once per 20 ms tick.
//!
//! Each tick yields at most one media frame (a phone line never stops sending, so waits send silence) plus any
//! zero-time actions (DTMF, raw frames) that came before it. Pure, so the step semantics are unit-tested
//! without sockets.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use crate::audio::mulaw;

/// One thing the simulated caller does.
#[derive(Debug, Clone, PartialEq)]
pub enum CallerStep {
    /// Send silence frames (0xFF) for this long.
    Silence(u32),
    /// Speak a tone (amplitude 0.5) for `ms`.
    Speak { tone_hz: f64, ms: u32 },
    /// Send this μ-law audio (padded with silence to whole frames).
    Audio(Vec<u8>),
    /// Press a key: a `dtmf` message (takes no stream time).
    Dtmf(char),
    /// Keep sending silence until at least `min_ms` of agent audio has been *played* since the step began.
    WaitForAgentAudio { min_ms: u32, timeout: Duration },
    /// Barge-in: wait until `after_ms` of the current agent utterance has played, then speak over it.
    SpeakWhenAgentHasPlayed {
        after_ms: u32,
        tone_hz: f64,
        ms: u32,
        timeout: Duration,
    },
    /// Send nothing for this long while the stream clock runs on (timestamps jump, as on a lossy line).
    Gap(u32),
    /// Send this text frame as is (for bad-input tests).
    Raw(String),
    /// Send `stop` and close the socket.
    HangUp,
}

/// A zero-time action taken before this tick's frame.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Instantly {
    Dtmf(char),
    Raw(String),
}

/// What this tick sends.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Frame {
    Media(Box<[u8; 160]>),
    /// A gap: nothing this tick.
    Skip,
    HangUp,
    /// The script ran out (the caller then hangs up).
    Finished,
}

#[derive(Debug, Default)]
pub(crate) struct TickPlan {
    pub instantly: Vec<Instantly>,
    pub frame: Option<Frame>,
    pub errors: Vec<String>,
}

/// How much agent audio the caller has heard, as the script sees it.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Heard {
    pub total_ms: u64,
    pub utterance_ms: u64,
}

enum Active {
    Silence {
        ticks: u32,
    },
    Audio {
        bytes: Vec<u8>,
        pos: usize,
    },
    Gap {
        ticks: u32,
    },
    WaitAgent {
        from_ms: u64,
        min_ms: u32,
        deadline: Instant,
        timeout: Duration,
    },
    WaitBarge {
        after_ms: u32,
        tone_hz: f64,
        ms: u32,
        deadline: Instant,
        timeout: Duration,
    },
}

pub(crate) struct Script {
    steps: VecDeque<CallerStep>,
    index: usize,
    active: Option<Active>,
}

fn ticks(ms: u32) -> u32 {
    ms.div_ceil(20)
}

fn silence() -> Frame {
    Frame::Media(Box::new([mulaw::SILENCE; 160]))
}

impl Script {
    pub(crate) fn new(steps: Vec<CallerStep>) -> Self {
        Self {
            steps: steps.into(),
            index: 0,
            active: None,
        }
    }

    /// Plans one tick at `now`, after the playout has played this tick's agent audio.
    pub(crate) fn tick(&mut self, heard: Heard, now: Instant) -> TickPlan {
        let mut plan = TickPlan::default();
        loop {
            let Some(active) = self.active.as_mut() else {
                let Some(step) = self.steps.pop_front() else {
                    plan.frame = Some(Frame::Finished);
                    return plan;
                };
                self.index += 1;
                self.active = match step {
                    CallerStep::Silence(ms) => Some(Active::Silence { ticks: ticks(ms) }),
                    CallerStep::Speak { tone_hz, ms } => Some(Active::Audio {
                        bytes: mulaw::tone(tone_hz, ms, 0.5),
                        pos: 0,
                    }),
                    CallerStep::Audio(bytes) => Some(Active::Audio { bytes, pos: 0 }),
                    CallerStep::Gap(ms) => Some(Active::Gap { ticks: ticks(ms) }),
                    CallerStep::WaitForAgentAudio { min_ms, timeout } => Some(Active::WaitAgent {
                        from_ms: heard.total_ms,
                        min_ms,
                        deadline: now + timeout,
                        timeout,
                    }),
                    CallerStep::SpeakWhenAgentHasPlayed {
                        after_ms,
                        tone_hz,
                        ms,
                        timeout,
                    } => Some(Active::WaitBarge {
                        after_ms,
                        tone_hz,
                        ms,
                        deadline: now + timeout,
                        timeout,
                    }),
                    CallerStep::Dtmf(digit) => {
                        plan.instantly.push(Instantly::Dtmf(digit));
                        None
                    }
                    CallerStep::Raw(text) => {
                        plan.instantly.push(Instantly::Raw(text));
                        None
                    }
                    CallerStep::HangUp => {
                        plan.frame = Some(Frame::HangUp);
                        return plan;
                    }
                };
                continue;
            };
            match active {
                Active::Silence { ticks } | Active::Gap { ticks } if *ticks == 0 => {
                    self.active = None
                }
                Active::Silence { ticks } => {
                    *ticks -= 1;
                    plan.frame = Some(silence());
                    return plan;
                }
                Active::Gap { ticks } => {
                    *ticks -= 1;
                    plan.frame = Some(Frame::Skip);
                    return plan;
                }
                Active::Audio { bytes, pos } => {
                    if *pos >= bytes.len() {
                        self.active = None;
                        continue;
                    }
                    let end = (*pos + 160).min(bytes.len());
                    let mut frame = [mulaw::SILENCE; 160];
                    frame[..end - *pos].copy_from_slice(&bytes[*pos..end]);
                    *pos = end;
                    plan.frame = Some(Frame::Media(Box::new(frame)));
                    return plan;
                }
                Active::WaitAgent {
                    from_ms,
                    min_ms,
                    deadline,
                    timeout,
                } => {
                    if heard.total_ms.saturating_sub(*from_ms) >= *min_ms as u64 {
                        self.active = None;
                        continue;
                    }
                    if now >= *deadline {
                        plan.errors.push(format!(
                            "step {}: WaitForAgentAudio({} ms) timed out after {:?} with {} ms played",
                            self.index,
                            min_ms,
                            timeout,
                            heard.total_ms - *from_ms
                        ));
                        self.active = None;
                        continue;
                    }
                    plan.frame = Some(silence());
                    return plan;
                }
                Active::WaitBarge {
                    after_ms,
                    tone_hz,
                    ms,
                    deadline,
                    timeout,
                } => {
                    let ready = heard.utterance_ms >= *after_ms as u64;
                    if !ready && now < *deadline {
                        plan.frame = Some(silence());
                        return plan;
                    }
                    if !ready {
                        plan.errors.push(format!(
                            "step {}: SpeakWhenAgentHasPlayed({} ms) timed out after {:?}; speaking anyway",
                            self.index, after_ms, timeout
                        ));
                    }
                    self.active = Some(Active::Audio {
                        bytes: mulaw::tone(*tone_hz, *ms, 0.5),
                        pos: 0,
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(script: &mut Script, heard: Heard, n: usize) -> Vec<TickPlan> {
        let now = Instant::now();
        (0..n).map(|_| script.tick(heard, now)).collect()
    }

    fn is_loud(frame: &Option<Frame>) -> bool {
        matches!(frame, Some(Frame::Media(f)) if mulaw::rms(&f[..]) > 1000.0)
    }

    #[tokio::test]
    async fn steps_map_to_frames() {
        let mut s = Script::new(vec![
            CallerStep::Silence(30),
            CallerStep::Dtmf('5'),
            CallerStep::Speak {
                tone_hz: 440.0,
                ms: 40,
            },
            CallerStep::Gap(20),
            CallerStep::Raw("x".into()),
            CallerStep::HangUp,
            CallerStep::Silence(20),
        ]);
        let plans = run(&mut s, Heard::default(), 6);
        assert_eq!(plans[0].frame, Some(silence()));
        assert_eq!(plans[1].frame, Some(silence()));
        assert_eq!(plans[2].instantly, vec![Instantly::Dtmf('5')]);
        assert!(is_loud(&plans[2].frame) && is_loud(&plans[3].frame));
        assert_eq!(plans[4].frame, Some(Frame::Skip));
        assert_eq!(plans[5].instantly, vec![Instantly::Raw("x".into())]);
        assert_eq!(plans[5].frame, Some(Frame::HangUp));
    }

    #[tokio::test]
    async fn waits_follow_heard_audio_and_time_out() {
        let mut s = Script::new(vec![
            CallerStep::WaitForAgentAudio {
                min_ms: 100,
                timeout: Duration::from_secs(5),
            },
            CallerStep::SpeakWhenAgentHasPlayed {
                after_ms: 50,
                tone_hz: 440.0,
                ms: 20,
                timeout: Duration::from_secs(5),
            },
        ]);
        let now = Instant::now();
        assert_eq!(
            s.tick(
                Heard {
                    total_ms: 40,
                    utterance_ms: 0
                },
                now
            )
            .frame,
            Some(silence())
        );
        assert_eq!(
            s.tick(
                Heard {
                    total_ms: 120,
                    utterance_ms: 0
                },
                now
            )
            .frame,
            Some(silence())
        );
        assert!(is_loud(
            &s.tick(
                Heard {
                    total_ms: 200,
                    utterance_ms: 60
                },
                now
            )
            .frame
        ));
        assert_eq!(s.tick(Heard::default(), now).frame, Some(Frame::Finished));

        let mut s = Script::new(vec![CallerStep::WaitForAgentAudio {
            min_ms: 100,
            timeout: Duration::ZERO,
        }]);
        let plan = s.tick(Heard::default(), now);
        assert_eq!(plan.frame, Some(Frame::Finished));
        assert_eq!(plan.errors.len(), 1);
    }
}
