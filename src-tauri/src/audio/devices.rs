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
