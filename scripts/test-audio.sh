# shellcheck shell=bash
# Sourced by scripts/test.sh and scripts/test-e2e.sh: a real audio device for the playback, listen-in and
# microphone tests. PulseAudio with a null sink and a 440 Hz test source as the default microphone, which
# ALSA's default device (what cpal opens) reaches through libasound2-plugins; the tests capture the sink's
# monitor. With VERBIO_AUDIO_DEVICE_TESTS=1 those tests fail (not skip) if the device does not work.
# `stop_test_audio` only stops a daemon `start_test_audio` started, so the two can nest (test.sh runs
# test-e2e.sh, then starts the device again for the Rust tests).
PULSE_STARTED=""
start_test_audio() {
  if pactl info >/dev/null 2>&1; then
    echo "PulseAudio already running; adding the test sink to it"
  else
    pulseaudio --daemonize=yes --exit-idle-time=-1 -n \
      --load="module-null-sink sink_name=test_null" --load="module-native-protocol-unix" 2>/dev/null
    PULSE_STARTED=1
    for _ in $(seq 1 50); do pactl info >/dev/null 2>&1 && break; sleep 0.1; done
  fi
  local sinks
  sinks="$(pactl list short sinks)"
  grep -q '^[0-9]*\s*test_null\s' <<<"$sinks" ||
    pactl load-module module-null-sink sink_name=test_null >/dev/null
  # The test microphone: 440 Hz played into a null sink of its own, whose monitor is remapped to a source
  # named test_mic. (module-sine-source is simpler, but it hands out 2 s at a time, unlike a microphone.)
  grep -q '^[0-9]*\s*test_mic_feed\s' <<<"$sinks" || {
    pactl load-module module-null-sink sink_name=test_mic_feed rate=48000 channels=1 \
      sink_properties=device.description=Test-microphone-feed >/dev/null
    pactl load-module module-sine sink=test_mic_feed frequency=440 >/dev/null
  }
  grep -q '^[0-9]*\s*test_mic\s' <<<"$(pactl list short sources)" ||
    pactl load-module module-remap-source master=test_mic_feed.monitor source_name=test_mic \
      source_properties=device.description=Test-microphone >/dev/null
  pactl set-default-sink test_null
  pactl set-default-source test_mic
  export VERBIO_AUDIO_DEVICE_TESTS=1 VERBIO_TEST_SINK=test_null VERBIO_TEST_SOURCE=test_mic
}
stop_test_audio() {
  if [ -n "$PULSE_STARTED" ]; then
    pulseaudio --kill 2>/dev/null || true
    PULSE_STARTED=""
  fi
}
