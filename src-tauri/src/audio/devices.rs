//! Naming cpal devices the way the user picks them: the device's own description, the default first,
//! with its id added where two share a description (ALSA describes a card's PCMs alike). The speakers
//! (`recording::speaker`) and the microphone (`audio::microphone`) both name devices this way, so a
//! remembered name finds the same device again.

/// Which side of the sound card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Input,
    Output,
}

/// Every device of `direction` that offers a format, named, the default first.
pub fn named(
    host: &cpal::Host,
    direction: Direction,
) -> Result<Vec<(String, cpal::Device)>, cpal::Error> {
    use cpal::traits::{DeviceTrait, HostTrait};
    // ALSA lists every PCM its configuration defines, plugins that cannot open on their own too.
    let (mut devices, default): (Vec<cpal::Device>, Option<cpal::Device>) = match direction {
        Direction::Input => (
            host.input_devices()?
                .filter(|d| d.default_input_config().is_ok())
                .collect(),
            host.default_input_device(),
        ),
        Direction::Output => (
            host.output_devices()?
                .filter(|d| d.default_output_config().is_ok())
                .collect(),
            host.default_output_device(),
        ),
    };
    if let Some(default) = default {
        // Named as opening "the default" names it.
        devices.retain(|d| *d != default);
        devices.insert(0, default);
    }
    let described: Vec<String> = devices.iter().map(|d| description(d, direction)).collect();
    Ok(devices
        .into_iter()
        .zip(&described)
        .map(|(device, name)| {
            if described.iter().filter(|n| *n == name).count() > 1 {
                let id = device.id().map(|id| id.id().to_string());
                (format!("{name} ({})", id.as_deref().unwrap_or("?")), device)
            } else {
                (name.clone(), device)
            }
        })
        .collect())
}

/// What the device calls itself (its id where it has no description).
pub fn description(device: &cpal::Device, direction: Direction) -> String {
    use cpal::traits::DeviceTrait;
    device
        .description()
        .map(|d| d.name().to_string())
        .or_else(|_| device.id().map(|id| id.id().to_string()))
        .unwrap_or_else(|_| match direction {
            Direction::Input => "microphone".into(),
            Direction::Output => "output".into(),
        })
}

/// How long a device may take to open.
const OPEN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A cpal stream kept on a thread of its own (streams are not `Send` on every platform), so a device
/// that hangs while opening costs the opener at most [`OPEN_TIMEOUT`]. Dropping it stops the stream
/// and joins the thread.
pub struct StreamThread {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for StreamThread {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Runs `build` on a new thread named `name` and keeps its stream there; returns once the stream runs
/// (with the device's name and rate), or `build`'s error, or `unusable(why)` if the thread could not start
/// or the device did not open in time (the thread then ends by itself once the device answers).
pub fn spawn_stream<E: Send + 'static>(
    name: &str,
    build: impl FnOnce() -> Result<(cpal::Stream, String, u32), E> + Send + 'static,
    unusable: impl Fn(String) -> E,
) -> Result<(StreamThread, String, u32), E> {
    use std::sync::mpsc;
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(String, u32), E>>();
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let thread = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let stream = match build() {
                Ok((stream, name, rate)) => {
                    let _ = ready_tx.send(Ok((name, rate)));
                    stream
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            // Runs until the StreamThread is dropped (the sender goes away).
            let _ = stop_rx.recv();
            drop(stream);
        })
        .map_err(|e| unusable(format!("cannot start the audio thread: {e}")))?;
    match ready_rx.recv_timeout(OPEN_TIMEOUT) {
        Ok(Ok((device, rate))) => Ok((
            StreamThread {
                stop: Some(stop_tx),
                thread: Some(thread),
            },
            device,
            rate,
        )),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(unusable(
            "the audio thread ended while opening the device".into(),
        )),
        Err(mpsc::RecvTimeoutError::Timeout) => Err(unusable(format!(
            "the audio device did not open within {} s",
            OPEN_TIMEOUT.as_secs()
        ))),
    }
}
