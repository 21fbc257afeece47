//! Waiting for a store answer on a thread that is not async (the recording writer, start-up).

use std::sync::Arc;

/// Waits for a store answer on this (non-async) thread. The store's futures are plain oneshot
/// receivers, so parking the thread until woken is all they need (no runtime, which may be gone).
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let std::task::Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park();
    }
}
