//! The channel that carries the app's commands ([`CallControl`]) to a live call's task: a plain
//! tokio `mpsc` channel, named once here so the registry (the sending end) and the bridge (the
//! receiving end) agree on it.
//!
//! An idle channel costs the call nothing without help: the call's loop polls each of its sources
//! only when that source's own waker fired (`calls::bridge::sources`), so this receiver is polled
//! when a command comes or a sender goes, not on each of the ~60 audio wake-ups a second. (Before
//! those wakers, a doorbell in front of the queue kept the loop from re-registering its waker here
//! on every wake-up: ~4 % of the bridge's user CPU at 300 calls, BENCHMARKS.md, issue 16.)
//!
//! ```
//! use verbio::calls::control_channel;
//! use verbio::calls::registry::CallControl;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let (tx, mut rx) = control_channel::channel(8);
//! assert!(tx.try_send(Box::new(CallControl::HangUp)).is_ok());
//! assert!(matches!(rx.recv().await.as_deref(), Some(CallControl::HangUp)));
//! drop(tx);
//! assert!(rx.recv().await.is_none());
//! # });
//! ```

use tokio::sync::mpsc;

use super::registry::CallControl;

/// The app's end: cloning is cheap, and the receiver learns when the last clone is gone.
///
/// Commands travel boxed: tokio's channel allocates its slots 32 at a time, so every live call
/// holds 32 × the message's size (~1.5 KiB for a bare `CallControl`, 256 bytes boxed).
pub type ControlSender = mpsc::Sender<Box<CallControl>>;

/// The call's end: `poll_recv` for its loop, `try_recv` for the commands left when it ends.
pub type ControlReceiver = mpsc::Receiver<Box<CallControl>>;

/// A channel for at most `capacity` queued commands (at least one).
pub fn channel(capacity: usize) -> (ControlSender, ControlReceiver) {
    mpsc::channel(capacity.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::sync::mpsc::error::TrySendError;

    #[tokio::test]
    async fn a_waiting_receiver_is_woken_by_a_command_from_another_task() {
        let (tx, mut rx) = channel(4);
        let waiting = tokio::spawn(async move { rx.recv().await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "nothing was sent yet");
        tx.try_send(Box::new(CallControl::HangUp))
            .expect("room in the queue");
        let got = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("woken")
            .expect("the task ran");
        assert!(matches!(got.as_deref(), Some(CallControl::HangUp)));
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
                while tx.try_send(Box::new(command())).is_err() {
                    tokio::task::yield_now().await;
                }
            }
        });
        let mut got = 0u32;
        while let Some(command) = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("no command is left waiting")
        {
            match *command {
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
        tx.try_send(Box::new(CallControl::HangUp)).expect("room");
        assert!(matches!(
            tx.try_send(Box::new(CallControl::TransferFailed)),
            Err(TrySendError::Full(c)) if matches!(*c, CallControl::TransferFailed)
        ));
        assert!(matches!(rx.try_recv().as_deref(), Ok(CallControl::HangUp)));
    }
}
