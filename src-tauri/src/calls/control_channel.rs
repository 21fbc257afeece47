//! The channel that carries the app's commands ([`CallControl`]) to a live call's task, built so an
//! idle channel costs the call nothing.
//!
//! The call's loop waits on its two sockets, its timers and this channel together, and wakes about
//! 60 times a second for audio. A tokio `mpsc` receiver polled on each of those wake-ups pops its
//! (empty) queue and re-registers the task's waker every time: ~4 % of the bridge's user CPU at 300
//! calls (`perf`, BENCHMARKS.md, issue 16), for a channel that carries a few commands per call. Here
//! the sender rings a doorbell after each command; the receiver looks at the queue only when the bell
//! has rung, and stores the task's waker once (a task keeps its waker), not on every poll.
//!
//! ```
//! use verbio::calls::control_channel;
//! use verbio::calls::registry::CallControl;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let (tx, mut rx) = control_channel::channel(8);
//! assert!(tx.try_send(CallControl::HangUp).is_ok());
//! assert!(matches!(rx.recv().await, Some(CallControl::HangUp)));
//! drop(tx);
//! assert!(rx.recv().await.is_none());
//! # });
//! ```

use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use tokio::sync::mpsc::{self, error::TryRecvError, error::TrySendError};

use super::registry::CallControl;

/// What both ends share: whether something happened since the receiver last looked, and whom to wake.
#[derive(Default)]
struct Doorbell {
    rung: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Doorbell {
    fn ring(&self) {
        self.rung.store(true, Ordering::Release);
        let waker = self.waker.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// A channel for at most `capacity` queued commands.
pub fn channel(capacity: usize) -> (ControlSender, ControlReceiver) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let bell = Arc::new(Doorbell::default());
    (
        ControlSender {
            tx: Some(tx),
            bell: bell.clone(),
        },
        ControlReceiver {
            rx,
            bell,
            registered: None,
        },
    )
}

/// The app's end. Cloning is cheap; dropping any clone rings, so the receiver notices when the last
/// one is gone.
#[derive(Clone)]
pub struct ControlSender {
    /// `None` only inside `drop`, which lets the sender go before it rings.
    tx: Option<mpsc::Sender<CallControl>>,
    bell: Arc<Doorbell>,
}

impl ControlSender {
    /// Queues `command` without waiting; refused when the queue is full or the call has ended.
    pub fn try_send(&self, command: CallControl) -> Result<(), TrySendError<CallControl>> {
        let Some(tx) = &self.tx else {
            return Err(TrySendError::Closed(command));
        };
        tx.try_send(command)?;
        self.bell.ring();
        Ok(())
    }
}

impl Drop for ControlSender {
    fn drop(&mut self) {
        // First let go of the sender: if it was the last, the receiver must find the queue closed.
        drop(self.tx.take());
        self.bell.ring();
    }
}

/// The call's end.
pub struct ControlReceiver {
    rx: mpsc::Receiver<CallControl>,
    bell: Arc<Doorbell>,
    /// The waker last stored in the bell (compared, not re-stored, on each poll).
    registered: Option<Waker>,
}

impl ControlReceiver {
    /// The next command; `None` once every sender is gone and the queue is empty. Cancel-safe.
    pub async fn recv(&mut self) -> Option<CallControl> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// A command already queued, without waiting.
    pub fn try_recv(&mut self) -> Result<CallControl, TryRecvError> {
        self.rx.try_recv()
    }

    /// Poll form of [`ControlReceiver::recv`].
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<CallControl>> {
        if !self
            .registered
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            let waker = cx.waker().clone();
            *self.bell.waker.lock().unwrap_or_else(|p| p.into_inner()) = Some(waker.clone());
            self.registered = Some(waker);
            // A ring before the waker was stored woke no one: look at the queue now.
            self.bell.rung.store(true, Ordering::Release);
        }
        // A plain load first: the bell is almost never rung, and a swap would write its cache line on
        // every wake-up. Acquire pairs with the sender's release: what it queued before ringing is
        // visible below.
        if !self.bell.rung.load(Ordering::Relaxed) || !self.bell.rung.swap(false, Ordering::AcqRel)
        {
            return Poll::Pending;
        }
        match self.rx.try_recv() {
            Ok(command) => {
                // More may be queued: look again on the next poll.
                self.bell.rung.store(true, Ordering::Release);
                Poll::Ready(Some(command))
            }
            Err(TryRecvError::Empty) => Poll::Pending,
            Err(TryRecvError::Disconnected) => Poll::Ready(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_waiting_receiver_is_woken_by_a_command_from_another_task() {
        let (tx, mut rx) = channel(4);
        let waiting = tokio::spawn(async move { rx.recv().await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "nothing was sent yet");
        tx.try_send(CallControl::HangUp).expect("room in the queue");
        let got = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("woken")
            .expect("the task ran");
        assert!(matches!(got, Some(CallControl::HangUp)));
    }

    #[tokio::test]
    async fn commands_come_in_order_and_none_is_lost_between_polls() {
        let (tx, mut rx) = channel(64);
        let sender = tokio::spawn(async move {
            for i in 0..500u32 {
                let command = || match i % 2 {
                    0 => CallControl::TransferFailed,
                    _ => CallControl::Transferred(i.to_string()),
                };
                while tx.try_send(command()).is_err() {
                    tokio::task::yield_now().await;
                }
            }
        });
        let mut got = 0u32;
        while let Some(command) = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("no command is left waiting")
        {
            match command {
                CallControl::TransferFailed => assert_eq!(got % 2, 0),
                CallControl::Transferred(n) => assert_eq!(n, got.to_string()),
                _ => panic!("unexpected command"),
            }
            got += 1;
        }
        assert_eq!(got, 500, "every command, then the end");
        sender.await.expect("the sender ran");
    }

    #[tokio::test]
    async fn the_receiver_learns_when_the_last_sender_is_gone() {
        let (tx, mut rx) = channel(1);
        let other = tx.clone();
        drop(tx);
        let waiting = tokio::spawn(async move { rx.recv().await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "one sender is left");
        drop(other);
        let got = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("woken")
            .expect("the task ran");
        assert!(got.is_none());
    }

    #[test]
    fn a_full_queue_refuses_and_keeps_what_it_holds() {
        let (tx, mut rx) = channel(1);
        tx.try_send(CallControl::HangUp).expect("room");
        assert!(matches!(
            tx.try_send(CallControl::TransferFailed),
            Err(TrySendError::Full(CallControl::TransferFailed))
        ));
        assert!(matches!(rx.try_recv(), Ok(CallControl::HangUp)));
    }
}
