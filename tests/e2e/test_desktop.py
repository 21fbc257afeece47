"""End to end in the real Verbio window (WebKitGTK under Xvfb), driven through tauri-driver's WebDriver.

Run by scripts/test-e2e.sh, which provides: a display, a D-Bus session with an unlocked gnome-keyring,
the fake providers (fake_providers.py), tauri-driver on VERBIO_E2E_DRIVER_URL, and the environment the app
inherits (its own keychain service, data dir, config file and provider base URLs).

Steps: first run lands on Setup → with no keys at all, "Try a simulated call" shows a live call whose
transcript appears, is listened in to (≤ 150 ms behind) with moving level meters, and then ends → a wrong
OpenAI key gives a clear error → the right keys are stored in the OS keychain (checked with secret-tool)
and only shown masked → both keys test green → public URL saved and applied (the core restarts with it) →
a session is configured and saved, and survives another restart → a second simulated call is hung up from
the window → Setup shows the webhook addresses and takes the "I'll do it myself" choice → the outbound
panel formats and validates the number, lists the account's numbers and places a call (stand-in Twilio)
whose signed callbacks drive its live status → the recordings panel lists both recordings, transcript
search finds the complete one, which plays on a chosen output device (the null sink test-e2e.sh starts;
the position advances and the line being heard is highlighted) and is deleted after confirmation → on a
third simulated call the operator whispers to the agent (shown as private), takes the call over with the
test microphone (banner, moving input meter, listen-in on) and hands it back with Ctrl+Shift+T, after which
the agent speaks again → a function tool that needs approval is added in the Session panel; on simulated calls
the agent calls it, the window prompts (focused, with a countdown), Approve lets it run and Decline refuses it,
each shown as a tool line in the transcript; the library shows the stored line and search finds it. The status pill names what is missing on the first run (clicking it opens Setup) and
says "Ready for calls" once the keys and the public URL are in.
Screenshots of each panel go to VERBIO_E2E_SHOTS.
"""

import base64
import hashlib
import hmac
import json
import os
import socket
import subprocess
import urllib.parse
import urllib.request
import sys
import time
from types import SimpleNamespace

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.common.options import ArgOptions
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

# The UI re-renders lists while a wait reads them: an element found a moment ago may be gone, so retry.
RETRY_ON = (StaleElementReferenceException,)

APP = os.environ["VERBIO_E2E_APP"]
DRIVER_URL = os.environ.get("VERBIO_E2E_DRIVER_URL", "http://127.0.0.1:4444")
SHOTS = os.environ["VERBIO_E2E_SHOTS"]
SERVICE = os.environ["VERBIO_KEYCHAIN_SERVICE"]
OPENAI_KEY = os.environ["E2E_OPENAI_KEY"]
ACCOUNT_SID = os.environ["E2E_ACCOUNT_SID"]
AUTH_TOKEN = os.environ["E2E_AUTH_TOKEN"]
PUBLIC_URL = "https://e2e.example.test"
APP_PORT = os.environ["VERBIO_PORT"]

started = time.monotonic()


def step(text: str) -> None:
    print(f"[e2e +{time.monotonic() - started:5.1f}s] {text}", flush=True)


def keychain_value(account: str) -> str:
    out = subprocess.run(
        ["secret-tool", "lookup", "service", SERVICE, "username", account],
        capture_output=True, text=True, timeout=10,
    )
    return out.stdout.strip()


def twilio_callback(path: str, params: dict) -> int:
    """Posts a callback the way Twilio does: a form signed (X-Twilio-Signature) for the public URL."""
    url = f"{PUBLIC_URL}{path}"
    signed = url + "".join(k + params[k] for k in sorted(params))
    signature = base64.b64encode(hmac.new(AUTH_TOKEN.encode(), signed.encode(), hashlib.sha1).digest()).decode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{APP_PORT}{path}", data=urllib.parse.urlencode(params).encode(),
        headers={"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


def core_listening() -> bool:
    """Whether the app's core still accepts connections on its port."""
    try:
        with socket.create_connection(("127.0.0.1", int(APP_PORT)), timeout=0.5):
            return True
    except OSError:
        return False


def main() -> int:
    options = ArgOptions()
    options.set_capability("browserName", "wry")
    options.set_capability("tauri:options", {"application": APP})
    t0 = time.monotonic()
    driver = webdriver.Remote(command_executor=DRIVER_URL, options=options)
    quit_done = False
    wait = WebDriverWait(driver, 20, ignored_exceptions=RETRY_ON)
    try:
        try:
            driver.set_window_rect(width=1024, height=768)
        except Exception as e:  # noqa: BLE001 - the size is a nicety for the screenshots
            step(f"could not resize the window ({e}); screenshots use the default size")

        def shot(name: str) -> None:
            path = os.path.join(SHOTS, f"{name}.png")
            # WebKit paints a frame or two after the DOM changes the test waited for.
            time.sleep(0.3)
            driver.save_screenshot(path)
            step(f"screenshot {path}")

        def by_id(element_id: str):
            return wait.until(EC.presence_of_element_located((By.ID, element_id)))

        def click(element_id: str) -> None:
            wait.until(EC.element_to_be_clickable((By.ID, element_id))).click()

        def text_in(element_id: str, text: str, timeout: float = 20) -> str:
            WebDriverWait(driver, timeout).until(EC.text_to_be_present_in_element((By.ID, element_id), text))
            return driver.find_element(By.ID, element_id).text

        def choose(element_id: str, value: str) -> None:
            element = by_id(element_id)
            driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
            Select(element).select_by_value(value)

        def tab(name: str) -> None:
            click(f"tab-{name}")
            WebDriverWait(driver, 10, ignored_exceptions=RETRY_ON).until(
                lambda d: d.find_element(By.ID, f"tab-{name}").get_attribute("aria-selected") == "true")

        # 1. First run (no OpenAI key anywhere): the window opens on Setup.
        WebDriverWait(driver, 30, ignored_exceptions=RETRY_ON).until(
            lambda d: d.find_element(By.ID, "tab-setup").get_attribute("aria-selected") == "true")
        step(f"window interactive, on Setup ({time.monotonic() - t0:.2f}s after the session request)")
        # The status pill says what is missing and where (never "Ready for calls", never an environment variable).
        pill = "Not ready: add an OpenAI key in Setup"
        try:
            WebDriverWait(driver, 10, ignored_exceptions=RETRY_ON).until(
                lambda d: d.find_element(By.ID, "status-pill").text.strip() == pill)
        except TimeoutException:
            raise AssertionError(f"the first-run status names the missing key: {by_id('status-pill').text!r}")
        assert "VERBIO_PUBLIC_URL" not in driver.page_source, "the window asks a desktop user for an environment variable"
        tab("calls")
        driver.find_element(By.CSS_SELECTOR, "#status-pill button").click()
        WebDriverWait(driver, 10, ignored_exceptions=RETRY_ON).until(
            lambda d: d.find_element(By.ID, "tab-setup").get_attribute("aria-selected") == "true")
        step(f"status pill: {pill!r}; clicking it opens Setup")
        shot("setup")

        # 1b. Without any keys, "Try a simulated call" runs the built-in simulators through the real core:
        #     live, transcript appears, listen-in plays it, the level meters move, then it ends.
        tab("setup")
        click("try-demo")
        WebDriverWait(driver, 10, ignored_exceptions=RETRY_ON).until(
            lambda d: d.find_element(By.ID, "tab-calls").get_attribute("aria-selected") == "true")
        try:
            WebDriverWait(driver, 30, ignored_exceptions=RETRY_ON).until(
                lambda d: "This is a simulated call" in d.find_element(By.CSS_SELECTOR, "ol.log").text)
        except TimeoutException:
            raise AssertionError("no agent line appeared in the live transcript")
        chip = driver.find_element(By.CSS_SELECTOR, ".chip").text
        assert chip.startswith("Live"), f"the call shows as live: {chip!r}"
        WebDriverWait(driver, 30, ignored_exceptions=RETRY_ON).until(
            lambda d: "check on my order" in d.find_element(By.CSS_SELECTOR, "ol.log").text)
        step("live transcript shows the caller and the agent")
        # Listen-in: the call is heard on the speakers (the null sink), and the delay is shown.
        listen = driver.find_element(By.CSS_SELECTOR, "[data-testid=listen-in]")
        listen.click()
        text_in("listen-delay", "ms behind")

        def listen_delay(d) -> int:
            return int(d.find_element(By.ID, "listen-delay").text.split()[0])
        # The core measures the delay (monitor buffer + the device's own latency) once audio flows.
        try:
            WebDriverWait(driver, 10, poll_frequency=0.2, ignored_exceptions=RETRY_ON).until(lambda d: listen_delay(d) > 0)
        except TimeoutException:
            raise AssertionError(f"listen-in never measured a delay: {listen_delay(driver)} ms")
        delay_ms = listen_delay(driver)
        assert delay_ms <= 150, f"listen-in is within 150 ms of the call: {delay_ms} ms"
        step(f"listening in, {delay_ms} ms behind")
        # The level meters move with the call's audio (`call-levels`, while the window is visible).
        def loudest(d) -> float:
            return max([float(m.get_attribute("aria-valuenow") or -60)
                        for m in d.find_elements(By.CSS_SELECTOR, "[role=meter]")] or [-60.0])
        try:
            WebDriverWait(driver, 10, poll_frequency=0.1).until(lambda d: loudest(d) > -50)
        except TimeoutException:
            raise AssertionError(f"the level meters did not move (loudest {loudest(driver)} dBFS)")
        step(f"level meters move ({loudest(driver):.1f} dBFS)")
        shot("calls")
        listen.click()
        WebDriverWait(driver, 10, ignored_exceptions=RETRY_ON).until(lambda d: not d.find_elements(By.ID, "listen-delay"))
        step("listen-in stopped")
        WebDriverWait(driver, 60, ignored_exceptions=RETRY_ON).until(
            lambda d: d.find_element(By.CSS_SELECTOR, ".chip").text.startswith("Ended"))
        lines = driver.find_elements(By.CSS_SELECTOR, "ol.log li.line")
        assert len(lines) >= 5, f"the whole conversation is shown ({len(lines)} lines)"
        step(f"the simulated call ended with {len(lines)} transcript lines")
        shot("calls-ended")

        tab("setup")


        # 2. A wrong key is stored, and its test fails with a clear message. The panel is re-rendered
        #    when the keys' states arrive: type only once they have (else the typing can be lost).
        text_in("key-openai_api_key-state", "Not set")
        key_input = wait.until(EC.element_to_be_clickable((By.ID, "key-openai_api_key")))
        key_input.send_keys("sk-wrong-key-000000000000", Keys.ENTER)
        try:
            text_in("key-openai_api_key-state", "In the keychain")
        except TimeoutException:
            state = driver.find_element(By.ID, "key-openai_api_key-state").text
            errors = [e.text for e in driver.find_elements(By.CSS_SELECTOR, ".field.key .error")]
            raise AssertionError(f"the wrong key was not stored: state {state!r}, errors {errors}")
        click("test-openai")
        message = text_in("openai-result", "HTTP 401")
        assert "rejected the key" in message, message
        step(f"wrong key rejected: {message!r}")

        # 3. The right keys: stored in the OS keychain, shown only masked.
        key_input.send_keys(OPENAI_KEY)
        key_input.send_keys(Keys.ENTER)
        masked = f"{OPENAI_KEY[:3]}…{OPENAI_KEY[-4:]}"
        text_in("key-openai_api_key-state", masked)
        token_input = by_id("key-twilio_auth_token")
        token_input.send_keys(AUTH_TOKEN, Keys.ENTER)
        text_in("key-twilio_auth_token-state", f"{AUTH_TOKEN[:3]}…{AUTH_TOKEN[-4:]}")
        assert key_input.get_attribute("value") == "", "the field is cleared once the key is stored"
        source = driver.page_source
        assert OPENAI_KEY not in source and AUTH_TOKEN not in source, "a stored secret is visible in the page"
        assert keychain_value("openai_api_key") == OPENAI_KEY, "the OpenAI key is not in the OS keychain"
        assert keychain_value("twilio_auth_token") == AUTH_TOKEN, "the Twilio token is not in the OS keychain"
        step("keys stored in the keychain (secret-tool agrees) and shown masked")

        # 4. Both keys test green against the (fake) providers.
        click("test-openai")
        step(text_in("openai-result", "Key works"))
        by_id("account-sid").send_keys(ACCOUNT_SID)
        click("test-twilio")
        step(text_in("twilio-result", "E2E test account"))

        # 5. Public URL saved and applied: the core restarts and the header shows it.
        by_id("public-url").send_keys(PUBLIC_URL)
        click("save-settings")
        click("apply-settings")
        WebDriverWait(driver, 20, ignored_exceptions=RETRY_ON).until(lambda d: PUBLIC_URL in d.page_source and "restarted" in d.page_source)
        step("settings applied; the core restarted with the public URL")
        WebDriverWait(driver, 10, ignored_exceptions=RETRY_ON).until(
            lambda d: d.find_element(By.ID, "status-pill").text.strip() == "Ready for calls")
        step("with the keys and the public URL the status pill says 'Ready for calls'")
        shot("setup-done")

        # 6. Session configuration.
        tab("session")
        choose("s-voice", "cedar")
        # The live list (from the stand-in OpenAI) replaces the built-in one once it has loaded.
        try:
            WebDriverWait(driver, 15, ignored_exceptions=RETRY_ON).until(lambda d: "gpt-realtime-2099-01-01" in [
                o.get_attribute("value") for o in Select(d.find_element(By.ID, "s-model")).options])
        except TimeoutException:
            models = [o.get_attribute("value") for o in Select(by_id("s-model")).options]
            raise AssertionError(f"the live model list is not used: {models}")
        instructions = by_id("s-instructions")
        instructions.clear()
        instructions.send_keys("You are Verbio's end-to-end test agent. Be brief.")
        text_in("s-instr-count", "49 / 16,000")
        assert "no temperature" in by_id("no-temperature").text
        choose("s-vad", "semantic_vad")
        choose("s-eagerness", "low")
        save = by_id("save-session")
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", save)
        save.click()
        step(text_in("session-result", "Saved"))
        # Read back from the core (the panel reloads when shown again).
        tab("outbound")
        tab("session")
        WebDriverWait(driver, 10, ignored_exceptions=RETRY_ON).until(
            lambda d: Select(d.find_element(By.ID, "s-voice")).first_selected_option.get_attribute("value") == "cedar")
        eagerness = Select(by_id("s-eagerness")).first_selected_option.get_attribute("value")
        assert eagerness == "low", f"the saved session keeps semantic VAD eagerness low, got {eagerness!r}"
        assert "end-to-end test agent" in by_id("s-instructions").get_attribute("value")
        step("the core has the new session (voice cedar, semantic VAD low)")
        driver.execute_script("document.getElementById('session-title').scrollIntoView()")
        shot("session")

        # 7b. Applying settings again restarts the core; the session edited in the window survives it.
        tab("setup")
        click("apply-settings")
        WebDriverWait(driver, 20, ignored_exceptions=RETRY_ON).until(lambda d: "restarted" in d.find_element(By.ID, "panel-setup").text)
        tab("session")
        WebDriverWait(driver, 10, ignored_exceptions=RETRY_ON).until(
            lambda d: Select(d.find_element(By.ID, "s-voice")).first_selected_option.get_attribute("value") == "cedar")
        step("the session survives a core restart")

        # 7c. Hang up from the window: a second simulated call, ended by the agent's click.
        tab("setup")
        click("try-demo")
        WebDriverWait(driver, 10, ignored_exceptions=RETRY_ON).until(
            lambda d: d.find_element(By.ID, "tab-calls").get_attribute("aria-selected") == "true")
        WebDriverWait(driver, 30, ignored_exceptions=RETRY_ON).until(
            lambda d: d.find_element(By.CSS_SELECTOR, ".chip").text.startswith("Live")
            and "check on my order" in d.find_element(By.CSS_SELECTOR, "ol.log").text)
        hang_up = driver.find_element(By.XPATH, "//button[normalize-space()='Hang up']")
        hang_up.click()
        WebDriverWait(driver, 15, ignored_exceptions=RETRY_ON).until(
            lambda d: d.find_element(By.CSS_SELECTOR, ".chip").text.startswith("Ended"))
        cut = len(driver.find_elements(By.CSS_SELECTOR, "ol.log li.line"))
        assert cut < 5, f"hanging up cut the conversation short ({cut} lines)"
        step(f"hung up from the window after {cut} transcript lines")

        # 7c. The Twilio number: the addresses to paste, and the one-time choice.
        tab("setup")
        hooks = by_id("webhooks")
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", hooks)
        WebDriverWait(driver, 10, ignored_exceptions=RETRY_ON).until(lambda d: "a call comes in" in d.find_element(By.ID, "webhooks").text.lower())
        values = [e.get_attribute("value") for e in hooks.find_elements(By.CSS_SELECTOR, "input")]
        assert f"{PUBLIC_URL}/twiml" in values and f"{PUBLIC_URL}/twilio/status" in values, values
        WebDriverWait(driver, 10, ignored_exceptions=RETRY_ON).until(lambda d: "+15005550006" in d.find_element(By.ID, "hook-number").text)
        click("hook-manual")
        WebDriverWait(driver, 10, ignored_exceptions=RETRY_ON).until(
            lambda d: d.find_element(By.CSS_SELECTOR, "[data-testid=hook-mode]").text.startswith("Manual"))
        step("Setup shows the webhook addresses; the manual choice is remembered")
        shot("setup-webhooks")

        # 8. Outbound: formatted and validated as you type, then placed from the account's number.
        tab("outbound")
        to = by_id("o-to")
        to.send_keys("0415")
        driver.execute_script("arguments[0].blur()", to)
        message = text_in("o-to-hint", "never starts with 0")
        assert not by_id("o-call").is_enabled(), "Call is enabled for a bad number"
        step(f"a bad number is refused before dialling: {message!r}")
        to.send_keys(Keys.CONTROL, "a")
        to.send_keys(Keys.BACKSPACE)
        to.send_keys("1415555")
        assert to.get_attribute("value") == "+1 (415) 555", to.get_attribute("value")
        to.send_keys("0100")
        assert to.get_attribute("value") == "+1 (415) 555-0100", to.get_attribute("value")
        text_in("o-to-hint", "Will dial +14155550100")
        WebDriverWait(driver, 10, ignored_exceptions=RETRY_ON).until(
            lambda d: Select(d.find_element(By.ID, "o-from")).first_selected_option.get_attribute("value") == "+15005550006")
        # Per-call overrides: this call gets its own voice and speed and a Twilio recording.
        overrides = driver.find_element(By.CSS_SELECTOR, "details.overrides summary")
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", overrides)
        overrides.click()
        choose("o-voice", "marin")
        by_id("o-speed").send_keys("1.2")
        twilio_rec = by_id("o-twilio-rec")
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", twilio_rec)
        twilio_rec.click()
        summary = by_id("o-overrides-summary").text
        assert "marin" in summary.lower() and "1.2" in summary, f"the overrides are summed up: {summary!r}"
        shot("outbound-overrides")
        click("o-call")
        placed = WebDriverWait(driver, 15, ignored_exceptions=RETRY_ON).until(
            EC.presence_of_element_located((By.CSS_SELECTOR, "[data-testid=placed-call]")))
        assert "+14155550100" in placed.text and "+15005550006" in placed.text, placed.text
        with urllib.request.urlopen(os.environ["TWILIO_API_BASE"] + "/_test/last-call", timeout=5) as r:
            created = json.load(r)
        assert created.get("Record") == "true" and created.get("RecordingChannels") == "dual", created
        # Hang up on machines (the default policy): Twilio reports `machine_start` without waiting for the beep.
        assert created.get("MachineDetection") == "Enable" and created.get("AsyncAmd") == "true", created
        assert created.get("Trim") == "do-not-trim", created
        assert "marin" not in created.get("Twiml", "") and "1.2" not in created.get("Twiml", ""), \
            "per-call settings travel by reference, never in TwiML"
        step(f"placed with its overrides (summary {summary!r}); Twilio got Record=true, dual channels, async AMD")
        status = driver.find_element(By.CSS_SELECTOR, "[data-testid=placed-status]").text
        assert status == "queued", status
        step(f"outbound call placed through the (stand-in) Twilio API: {status}")
        call_sid = placed.find_element(By.CSS_SELECTOR, ".mono").text.strip()
        assert call_sid.startswith("CA"), call_sid
        base = {"CallSid": call_sid, "From": "+15005550006", "To": "+14155550100", "Direction": "outbound-api"}

        def status_is(expected: str) -> None:
            WebDriverWait(driver, 10, ignored_exceptions=RETRY_ON).until(
                lambda d: d.find_element(By.CSS_SELECTOR, "[data-testid=placed-status]").text == expected)

        # Twilio's status and answering-machine callbacks reach the panel through the bus.
        twilio_callback("/twilio/status", {**base, "CallStatus": "ringing"})
        status_is("ringing")
        twilio_callback("/twilio/status", {**base, "CallStatus": "in-progress"})
        status_is("in-progress")
        twilio_callback("/twilio/amd", {**base, "AnsweredBy": "machine_start"})
        verdict = WebDriverWait(driver, 10, ignored_exceptions=RETRY_ON).until(
            EC.presence_of_element_located((By.CSS_SELECTOR, "[data-testid=machine-verdict]"))).text
        assert "Answering machine" in verdict and "hung up" in verdict, verdict
        # No notification server here: the machine alert shows in the window.
        WebDriverWait(driver, 10, ignored_exceptions=RETRY_ON).until(
            lambda d: "+14155550100 was answered by a machine" in d.find_element(By.CSS_SELECTOR, ".toast").text)
        step(f"live status followed Twilio's callbacks; verdict {verdict!r} and the machine alert shown")
        shot("outbound")
        twilio_callback("/twilio/status", {**base, "CallStatus": "completed", "CallDuration": "12"})
        status_is("completed")
        assert "12 s" in placed.text, placed.text

        # 9. Recordings: the simulated call's recording is listed, plays, and is deleted after confirmation.
        tab("recordings")
        try:
            WebDriverWait(driver, 20, ignored_exceptions=RETRY_ON).until(lambda d: d.find_elements(By.CSS_SELECTOR, "ul.list .pick"))
        except TimeoutException:
            raise AssertionError("the simulated call's recording is not listed: "
                                 + driver.find_element(By.ID, "panel-recordings").text)
        WebDriverWait(driver, 20, ignored_exceptions=RETRY_ON).until(
            lambda d: len(d.find_elements(By.CSS_SELECTOR, "ul.list .pick")) == 2)
        # Transcript search (FTS5 in the core) finds the complete call: only it got as far as "Thursday".
        search = driver.find_element(By.CSS_SELECTOR, "#panel-recordings input[type=search]")
        search.send_keys("thursday", Keys.ENTER)
        WebDriverWait(driver, 10, ignored_exceptions=RETRY_ON).until(
            lambda d: len(d.find_elements(By.CSS_SELECTOR, "ul.list .pick")) == 1)
        items = driver.find_elements(By.CSS_SELECTOR, "ul.list .pick")
        step("transcript search narrows two recordings to the one that says 'Thursday'")
        items[0].click()
        WebDriverWait(driver, 10, ignored_exceptions=RETRY_ON).until(lambda d: d.find_elements(By.CSS_SELECTOR, "ol.turns li"))

        def panel_button(text: str):
            button = driver.find_element(
                By.XPATH, f"//*[@id='panel-recordings']//button[normalize-space()='{text}']")
            # The call's "ended" toast may sit over the lower part of the panel.
            for close in driver.find_elements(By.CSS_SELECTOR, ".toast .close"):
                close.click()
            driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", button)
            return button

        # Speakers: the system's output devices by name; pick the default one by its name, so the core
        # opens a device the window named (playback below only advances if that device really opened).
        WebDriverWait(driver, 10, ignored_exceptions=RETRY_ON).until(
            lambda d: len(Select(d.find_element(By.ID, "rec-speaker")).options) >= 2)
        speakers = Select(by_id("rec-speaker"))
        device = speakers.options[1].get_attribute("value")
        speakers.select_by_value(device)
        step(f"speakers: {len(speakers.options) - 1} output devices listed, playing on {device!r}")
        panel_button("Play").click()
        slider = driver.find_element(By.CSS_SELECTOR, "[role=slider]")
        try:
            WebDriverWait(driver, 15, ignored_exceptions=RETRY_ON).until(lambda d: int(slider.get_attribute("aria-valuenow") or 0) >= 1500)
        except TimeoutException:
            raise AssertionError("playback did not advance: " + driver.find_element(By.CSS_SELECTOR, ".player").text)
        WebDriverWait(driver, 10, ignored_exceptions=RETRY_ON).until(lambda d: d.find_elements(By.CSS_SELECTOR, "ol.turns li.current"))
        current = driver.find_element(By.CSS_SELECTOR, "ol.turns li.current").text
        step(f"playing: at {slider.get_attribute('aria-valuenow')} ms, hearing {current!r}")
        shot("recordings")
        panel_button("Pause").click()
        WebDriverWait(driver, 10, ignored_exceptions=RETRY_ON).until(lambda d: panel_button("Play"))
        # Export: the field comes filled with a free, descriptive path (Downloads, else home); the copy is a
        # playable WAV there.
        export_path = by_id("rec-export").get_attribute("value")
        assert os.path.isabs(export_path) and os.path.basename(export_path).startswith("verbio-") \
            and export_path.endswith(".wav") and not os.path.exists(export_path), export_path
        panel_button("Export WAV").click()
        try:
            WebDriverWait(driver, 10, ignored_exceptions=RETRY_ON).until(
                lambda d: "Exported" in d.find_element(By.ID, "panel-recordings").text)
            with open(export_path, "rb") as f:
                header = f.read(12)
            assert header[:4] == b"RIFF" and header[8:12] == b"WAVE", header
            size = os.path.getsize(export_path)
        finally:
            if os.path.exists(export_path):
                os.remove(export_path)
        step(f"exported to the suggested {export_path} ({size} bytes)")
        panel_button("Delete…").click()
        confirm = driver.find_element(By.CSS_SELECTOR, "[role=alertdialog] .btn-danger")
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", confirm)
        confirm.click()
        WebDriverWait(driver, 10, ignored_exceptions=RETRY_ON).until(lambda d: "Recording deleted" in d.find_element(By.ID, "panel-recordings").text)
        WebDriverWait(driver, 10, ignored_exceptions=RETRY_ON).until(lambda d: not d.find_elements(By.CSS_SELECTOR, "ul.list .pick"))
        step("the recording was played, then deleted after confirmation, and is gone from the list")

        # 10. The operator in the loop, on a simulated call: a whisper to the agent shows as private, taking over
        #     with the microphone (test-e2e.sh's sine source test_mic) shows the banner and a moving input meter
        #     and turns listen-in on (caller side only), handing back (Ctrl+Shift+T) lets the agent go on.
        tab("setup")
        click("try-demo")
        WebDriverWait(driver, 30, ignored_exceptions=RETRY_ON).until(
            lambda d: d.find_element(By.CSS_SELECTOR, ".chip").text.startswith("Live")
            and "check on my order" in d.find_element(By.CSS_SELECTOR, "ol.log").text)
        for close in driver.find_elements(By.CSS_SELECTOR, ".toast .close"):
            close.click()
        whisper = by_id("whisper-text")
        whisper.send_keys("Offer the 10 % discount", Keys.ENTER)
        line = WebDriverWait(driver, 10, ignored_exceptions=RETRY_ON).until(
            EC.presence_of_element_located((By.CSS_SELECTOR, "ol.log li.line.whisper")))
        assert "Offer the 10 % discount" in line.text and "Whisper (only you see this)" in line.text, line.text
        assert whisper.get_attribute("value") == "", "the whisper field is cleared once sent"
        step(f"whisper shown as private: {line.text!r}")
        shot("operator-whisper")
        mics = [o.text for o in Select(driver.find_element(By.CSS_SELECTOR, "select[id^=mic-]")).options]
        step(f"microphones offered: {mics}")
        click("take-over")
        try:
            banner = text_in("operator-banner", "You hold this call — the agent is listening", timeout=10)
        except TimeoutException:
            message = driver.find_elements(By.ID, "operator-message")
            raise AssertionError("no take-over banner: " + (message[0].text if message else "no message"))
        assert by_id("take-over").text == "Hand back", by_id("take-over").text

        def mic_level(d) -> float:
            return float(d.find_element(By.ID, "mic-meter").get_attribute("aria-valuenow") or -60)
        try:
            WebDriverWait(driver, 10, poll_frequency=0.1, ignored_exceptions=RETRY_ON).until(lambda d: mic_level(d) > -40)
        except TimeoutException:
            raise AssertionError(f"the input meter did not move ({mic_level(driver)} dBFS)")
        listening = driver.find_element(By.CSS_SELECTOR, "[data-testid=listen-in]")
        WebDriverWait(driver, 10, ignored_exceptions=RETRY_ON).until(lambda d: listening.is_selected())
        step(f"took over: {banner.splitlines()[0]!r}, input meter at {mic_level(driver):.1f} dBFS, listening in")
        shot("operator-takeover")
        agent_lines = len(driver.find_elements(By.CSS_SELECTOR, "ol.log li.line.agent"))
        by_id("tab-calls").send_keys(Keys.CONTROL, Keys.SHIFT, "t")  # the keyboard way: hand back
        WebDriverWait(driver, 10, ignored_exceptions=RETRY_ON).until(lambda d: not d.find_elements(By.ID, "operator-banner"))
        WebDriverWait(driver, 10, ignored_exceptions=RETRY_ON).until(
            lambda d: "handed the call back to the agent" in d.find_element(By.CSS_SELECTOR, "ol.log").text)
        try:
            WebDriverWait(driver, 30, ignored_exceptions=RETRY_ON).until(
                lambda d: len(d.find_elements(By.CSS_SELECTOR, "ol.log li.line.agent")) > agent_lines)
        except TimeoutException:
            raise AssertionError("the agent did not speak again after the hand-back: "
                                 + driver.find_element(By.CSS_SELECTOR, "ol.log").text[-400:])
        step("handed back with Ctrl+Shift+T; the agent goes on")
        if driver.find_element(By.CSS_SELECTOR, ".chip").text.startswith("Live"):
            driver.find_element(By.XPATH, "//button[normalize-space()='Hang up']").click()
        WebDriverWait(driver, 15, ignored_exceptions=RETRY_ON).until(
            lambda d: d.find_element(By.CSS_SELECTOR, ".chip").text.startswith("Ended"))

        # 10b. Tools that need the operator's approval (issue 14). A function tool added in the Session panel,
        #      marked "needs approval": on a simulated call the agent calls it (services/demo: the simulated
        #      model calls the session's first tool when given the order number), the window shows the prompt
        #      with a countdown and takes the focus; Approve lets it run, and its line shows in the transcript;
        #      on a second call Decline refuses it. Transcript search in the library finds the stored tool line.
        def press(element_id: str) -> None:
            """Clicks a button that may sit under the sticky Save bar or a toast: scrolled to the middle first."""
            for close in driver.find_elements(By.CSS_SELECTOR, ".toast .close"):
                close.click()
            element = by_id(element_id)
            driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
            wait.until(EC.element_to_be_clickable((By.ID, element_id))).click()

        tab("session")
        press("add-tool")
        by_id("new-tool-name").send_keys("lookup_order")
        by_id("new-tool-description").send_keys("Look up an order's delivery status by its number")
        params = by_id("new-tool-parameters")
        params.clear()
        params.send_keys('{"type": "object", "properties": {"order": {"type": "string"}}, "required": ["order"]}')
        press("new-tool-add")
        approval_box = by_id("tool-approval-lookup_order")
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", approval_box)
        approval_box.click()
        assert approval_box.is_selected(), "the needs-approval box is ticked"
        # Behind it, an HTTP endpoint (the stand-in providers answer it; plain http is allowed to this machine
        # only: another host is refused before saving).
        press("tool-http-lookup_order")
        url_field = by_id("tool-url-lookup_order")
        url_field.send_keys("http://orders.example.com/lookup")
        text_in("save-blocker", "lookup_order's endpoint")
        url_field.send_keys(Keys.CONTROL, "a")
        url_field.send_keys(Keys.BACKSPACE)
        tool_url = os.environ["TWILIO_API_BASE"] + "/tools/lookup_order"
        url_field.send_keys(tool_url)
        WebDriverWait(driver, 5, ignored_exceptions=RETRY_ON).until(lambda d: not d.find_elements(By.ID, "save-blocker"))
        press("save-session")
        try:
            step(text_in("session-result", "Saved"))
        except TimeoutException:
            shot("tool-session-failed")
            results = driver.find_elements(By.ID, "session-result")
            raise AssertionError("the session with the tool was not saved: "
                                 + (results[0].text if results else "no result")
                                 + f"; url field {url_field.get_attribute('value')!r}")
        shot("session-tools")

        def start_demo() -> None:
            tab("setup")
            # One simulated call at a time: the last one's simulators may still be closing.
            for _ in range(20):
                click("try-demo")
                try:
                    WebDriverWait(driver, 3, ignored_exceptions=RETRY_ON).until(
                        lambda d: d.find_element(By.ID, "tab-calls").get_attribute("aria-selected") == "true")
                    return
                except TimeoutException:
                    time.sleep(0.5)
            raise AssertionError("the simulated call did not start")

        def approval_card():
            try:
                return WebDriverWait(driver, 45, ignored_exceptions=RETRY_ON).until(
                    EC.presence_of_element_located((By.CSS_SELECTOR, "[data-testid=tool-approval]")))
            except TimeoutException:
                raise AssertionError("no approval prompt: " + driver.find_element(By.CSS_SELECTOR, "ol.log").text[-400:])

        def tool_lines() -> list:
            # textContent: WebKitWebDriver's rendered text leaves out the result in the line's second row.
            return [" ".join((li.get_attribute("textContent") or "").split())
                    for li in driver.find_elements(By.CSS_SELECTOR, "ol.log li.tool")]

        def tool_line(text: str, timeout: float = 30) -> str:
            try:
                WebDriverWait(driver, timeout, ignored_exceptions=RETRY_ON).until(
                    lambda d: any(text in line for line in tool_lines()))
            except TimeoutException:
                raise AssertionError(f"no tool line saying {text!r}: {tool_lines()}")
            return next(line for line in tool_lines() if text in line)

        def hang_up_if_live() -> None:
            if driver.find_element(By.CSS_SELECTOR, ".chip").text.startswith("Live"):
                driver.find_element(By.XPATH, "//button[normalize-space()='Hang up']").click()
            WebDriverWait(driver, 15, ignored_exceptions=RETRY_ON).until(
                lambda d: d.find_element(By.CSS_SELECTOR, ".chip").text.startswith("Ended"))

        start_demo()
        card = approval_card()
        assert "The agent wants to run lookup_order" in card.text and 'order: "4271"' in card.text, card.text
        assert "Answer within" in card.text, card.text
        tool_line("Waiting for your approval to run lookup_order")
        badge = driver.find_elements(By.CSS_SELECTOR, "[data-testid=approvals-badge]")
        assert badge and "1 to approve" in badge[0].text, "the Calls tab counts the question"
        focused = driver.switch_to.active_element.get_attribute("data-testid")
        assert focused == "tool-approval", f"the prompt takes the focus (focus on {focused!r})"
        for close in driver.find_elements(By.CSS_SELECTOR, ".toast .close"):
            close.click()
        step(f"approval prompt: {card.text.splitlines()[0]!r}, focused, with a countdown")
        shot("tool-approval")
        card.find_element(By.CSS_SELECTOR, "[data-testid=approve]").click()
        WebDriverWait(driver, 10, ignored_exceptions=RETRY_ON).until(
            lambda d: "Approved" in d.find_element(By.CSS_SELECTOR, "[data-testid=tool-approval]").text)
        approved = tool_line("shipped")
        assert "lookup_order" in approved and "approved" in approved, approved
        # The endpoint got the call signed with the tool's secret (made on first use, in the OS keychain).
        with urllib.request.urlopen(os.environ["TWILIO_API_BASE"] + "/_test/last-tool", timeout=5) as r:
            sent = json.load(r)
        secret = keychain_value("tool:lookup_order")
        parts = dict(p.split("=", 1) for p in (sent.get("signature") or "").split(","))
        expected = hmac.new(secret.encode(), f"{parts.get('t')}.{sent['body']}".encode(), hashlib.sha256).hexdigest()
        assert secret and hmac.compare_digest(parts.get("v1", ""), expected), f"the tool call is signed: {sent}"
        assert json.loads(sent["body"])["arguments"] == {"order": "4271"}, sent["body"]
        step(f"approved from the window; the tool line reads {approved!r}")
        shot("tool-approved")
        # The card goes a few seconds after its answer.
        WebDriverWait(driver, 15, ignored_exceptions=RETRY_ON).until(
            lambda d: not d.find_elements(By.CSS_SELECTOR, "[data-testid=tool-approval]"))
        approved_sid = driver.find_element(By.CSS_SELECTOR, ".meta .mono").text.strip()
        hang_up_if_live()

        start_demo()
        card = approval_card()
        card.find_element(By.CSS_SELECTOR, "[data-testid=decline]").click()
        WebDriverWait(driver, 10, ignored_exceptions=RETRY_ON).until(
            lambda d: "Declined" in d.find_element(By.CSS_SELECTOR, "[data-testid=tool-approval]").text)
        declined = tool_line("lookup_order declined")
        assert "the operator declined lookup_order" in declined, declined
        step(f"declined from the window; the tool line reads {declined!r}")
        hang_up_if_live()

        # The stored tool line: in the library's transcript, and transcript search finds it.
        tab("recordings")
        search = driver.find_element(By.CSS_SELECTOR, "#panel-recordings input[type=search]")
        search.clear()
        search.send_keys("lookup_order", Keys.ENTER)
        try:
            WebDriverWait(driver, 20, ignored_exceptions=RETRY_ON).until(lambda d: d.find_elements(By.CSS_SELECTOR, "ul.list .pick"))
        except TimeoutException:
            raise AssertionError("transcript search does not find the tool line: "
                                 + driver.find_element(By.ID, "panel-recordings").text[-300:])
        # The list may re-render under the click (the declined call's recording is still being finished
        # and listed), so a click that found a replaced item is made again.
        for attempt in range(3):
            driver.find_elements(By.CSS_SELECTOR, "ul.list .pick")[-1].click()
            try:
                WebDriverWait(driver, 10, ignored_exceptions=RETRY_ON).until(
                    lambda d: any("lookup_order" in li.text
                                  for li in d.find_elements(By.CSS_SELECTOR, "ol.turns li.tool")))
                break
            except TimeoutException:
                if attempt == 2:
                    raise AssertionError("the library's detail does not show the stored tool line: "
                                         + driver.find_element(By.ID, "panel-recordings").text[-400:])
        step(f"the library shows the stored tool line, and search finds it (call {approved_sid})")
        search.clear()
        search.send_keys(Keys.ENTER)

        # 10c. What each call cost and how fast it felt (issue 15): see check_insight below.
        check_insight(driver, SimpleNamespace(
            tab=tab, by_id=by_id, click=click, press=press, text_in=text_in, shot=shot,
            start_demo=start_demo, hang_up_if_live=hang_up_if_live))

        # 11. Quitting from the window while a call is live asks first; "Keep running" keeps it, "End calls
        #     and quit" hangs the call up and the app exits (its core stops listening).
        tab("setup")
        # One simulated call at a time: the last one's simulators may still be closing (half a second after
        # its end), so a refused start is tried again.
        for _ in range(10):
            click("try-demo")
            try:
                WebDriverWait(driver, 3, ignored_exceptions=RETRY_ON).until(
                    lambda d: d.find_element(By.ID, "tab-calls").get_attribute("aria-selected") == "true")
                break
            except TimeoutException:
                time.sleep(0.5)
        WebDriverWait(driver, 30, ignored_exceptions=RETRY_ON).until(
            lambda d: d.find_element(By.CSS_SELECTOR, ".chip").text.startswith("Live"))
        click("quit-app")
        keep = WebDriverWait(driver, 10, ignored_exceptions=RETRY_ON).until(
            EC.element_to_be_clickable((By.XPATH, "//button[normalize-space()='Keep running']")))
        keep.click()
        WebDriverWait(driver, 10, ignored_exceptions=RETRY_ON).until(
            EC.invisibility_of_element_located((By.ID, "quit-confirm")))
        assert driver.find_element(By.CSS_SELECTOR, ".chip").text.startswith("Live"), "the call kept going"
        by_id("tab-calls").send_keys(Keys.CONTROL, "q")  # the keyboard way
        WebDriverWait(driver, 10, ignored_exceptions=RETRY_ON).until(EC.element_to_be_clickable((By.ID, "quit-confirm")))
        step("quit asks first while a call is live (button and Ctrl+Q); 'Keep running' keeps the call")
        click("quit-confirm")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and core_listening():
            time.sleep(0.2)
        assert not core_listening(), "the app did not exit after 'End calls and quit'"
        step("'End calls and quit' ended the call and the app exited")
        quit_done = True
        return 0
    finally:
        try:
            driver.quit()
        except Exception:  # the app has already exited at the end of the test
            if not quit_done:
                raise


def check_insight(driver, h: SimpleNamespace) -> None:
    """Issue 15 in the window, once the core has its commands: the settings (post-call summary with a fields
    schema checked before saving, a per-call budget, the dated price table), then on a simulated call the live
    cost meter against the cap, the turn latency figures and timeline, the summary once the call ended, and in
    the library the per-day chart, the row's cost and p95, and the detail's summary, cost breakdown and timeline.
    Screenshots: insight-settings, insight-live, insight-summary, insight-library."""

    def present(css: str, timeout: float = 20):
        try:
            return WebDriverWait(driver, timeout, ignored_exceptions=RETRY_ON).until(
                EC.presence_of_element_located((By.CSS_SELECTOR, css)))
        except TimeoutException:
            raise AssertionError(f"nothing matches {css!r}: " + driver.find_element(By.TAG_NAME, "body").text[-600:])

    def scroll_to(element) -> None:
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)

    # Settings: the post-call summary (saved with the session); a schema that is not an object schema blocks Save.
    h.tab("session")
    card = h.by_id("summary-card")
    scroll_to(card)
    enabled = h.by_id("summary-enabled")
    if not enabled.is_selected():
        enabled.click()
    new_disposition = h.by_id("summary-new-disposition")
    new_disposition.send_keys("callback_requested", Keys.ENTER)
    WebDriverWait(driver, 5, ignored_exceptions=RETRY_ON).until(
        lambda d: "callback_requested" in d.find_element(By.ID, "summary-card").text)
    schema = h.by_id("summary-schema")
    scroll_to(schema)
    schema.send_keys(Keys.CONTROL, "a")
    schema.send_keys(Keys.BACKSPACE)
    schema.send_keys('{"type": "string"}')
    h.text_in("summary-schema-hint", 'must be "object"')
    h.text_in("save-blocker", "Summary fields")
    schema.send_keys(Keys.CONTROL, "a")
    schema.send_keys(Keys.BACKSPACE)
    schema.send_keys('{"type": "object", "properties": {"order_number": {"type": "string"}}, "required": ["order_number"]}')
    h.text_in("summary-schema-hint", "Fields: order_number")
    h.press("save-session")
    step(h.text_in("session-result", "Saved"))
    # The budgets: a per-call cap the simulated call stays under, so the meter shows it.
    cap = h.by_id("budget-call")
    scroll_to(cap)
    cap.send_keys(Keys.CONTROL, "a")
    cap.send_keys(Keys.BACKSPACE)
    cap.send_keys("5")
    h.press("save-budget")
    step(h.text_in("budget-result", "saved"))
    # The price table: dated, with its source; saved as it is.
    as_of = h.by_id("prices-as-of").get_attribute("value")
    assert len(as_of) == 10 and as_of[4] == "-", f"the price table is dated: {as_of!r}"
    assert h.by_id("prices-source").get_attribute("value"), "the price table names its source"
    rows = driver.find_elements(By.CSS_SELECTOR, "#prices-card tbody tr")
    assert rows, "the price table lists models"
    h.press("save-prices")
    step(h.text_in("prices-result", "Prices saved") + f" ({len(rows)} models, as of {as_of})")
    scroll_to(h.by_id("budget-card"))
    h.shot("insight-settings")

    # A simulated call: the cost meter runs against the cap, each answered turn lands on the timeline.
    h.start_demo()
    meter = present("[data-testid=cost-meter]", 30)

    def cost(d) -> float:
        text = d.find_element(By.ID, "call-cost").text.strip().lstrip("$").replace(",", "")
        return float(text or 0)
    try:
        WebDriverWait(driver, 30, ignored_exceptions=RETRY_ON).until(lambda d: cost(d) > 0)
    except TimeoutException:
        raise AssertionError(f"the cost meter did not move: {meter.text!r}")
    assert "of $5.00 cap" in meter.text, f"the meter shows the call's cap: {meter.text!r}"
    try:
        WebDriverWait(driver, 30, ignored_exceptions=RETRY_ON).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, "[data-testid=latency-mark]"))
    except TimeoutException:
        raise AssertionError("no turn on the latency timeline: "
                             + driver.find_element(By.CSS_SELECTOR, "[data-testid=turn-latency]").text)
    latency = driver.find_element(By.CSS_SELECTOR, "[data-testid=turn-latency]").text
    assert "p95" in latency, latency
    label = driver.find_element(By.CSS_SELECTOR, "[data-testid=latency-timeline] svg").get_attribute("aria-label")
    assert "answered turn" in label, f"the timeline says its numbers: {label!r}"
    step(f"live: cost {meter.text.splitlines()[0:2]}, latency {latency!r}, timeline {label!r}")
    h.shot("insight-live")
    h.hang_up_if_live()
    # After hang-up (within 10 s on a normal call): the summary, or a visible, non-fatal problem with a retry.
    summary = present("[data-testid=call-summary]", 20)
    scroll_to(summary)
    problems = summary.find_elements(By.CSS_SELECTOR, "[data-testid=summary-problem]")
    assert not problems, f"the summary failed: {problems[0].text!r}"
    step(f"summary shown: {summary.text!r}")
    h.shot("insight-summary")

    # The library: the per-day chart, the newest row's cost and p95, the detail's summary, cost and timeline.
    h.tab("recordings")
    chart = present("[data-testid=daily-chart] svg")
    assert "Last 14 days" in chart.get_attribute("aria-label"), chart.get_attribute("aria-label")
    figures = present("ul.list .pick [data-testid=recording-figures]")
    assert "$" in figures.text and "p95" in figures.text, f"the row shows cost and p95: {figures.text!r}"
    driver.find_elements(By.CSS_SELECTOR, "ul.list .pick")[0].click()
    insight = present("[data-testid=recording-insight]")
    assert "Agent responses" in insight.text, f"the detail breaks the cost down: {insight.text!r}"
    present("[data-testid=recording-insight] [data-testid=latency-mark]")
    present(".player [data-testid=call-summary]")
    step(f"library: chart {chart.get_attribute('aria-label')!r}; row {figures.text!r}")
    scroll_to(present("[data-testid=daily-chart]"))
    h.shot("insight-library")


if __name__ == "__main__":
    sys.exit(main())
