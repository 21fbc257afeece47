# shellcheck shell=bash
# Sourced by scripts/test.sh and scripts/test-e2e.sh: a real audio device for the playback and listen-in
# tests. PulseAudio with a null sink, which ALSA's default device (what cpal opens) reaches through
# libasound2-plugins; the tests capture its monitor. With VERBIO_AUDIO_DEVICE_TESTS=1 those tests fail (not
# skip) if the device does not work. `stop_test_audio` only stops a daemon `start_test_audio` started, so
# the two can nest (test.sh runs test-e2e.sh, then starts the device again for the Rust tests).
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
  pactl set-default-sink test_null
  export VERBIO_AUDIO_DEVICE_TESTS=1 VERBIO_TEST_SINK=test_null
}
stop_test_audio() {
  if [ -n "$PULSE_STARTED" ]; then
    pulseaudio --kill 2>/dev/null || true
    PULSE_STARTED=""
  fi
}
