//! Reaching Twilio: the public URL in use, changing it at run time, and pointing one of the account's
//! numbers at this app (`VoiceUrl` → `{public}/twiml`, `StatusCallback` → `{public}/twilio/status`).
//!
//! Pointing the number is the user's choice, asked once and remembered in the library: `auto` repeats it
//! on every start (needed when the tunnel's URL changes between runs), `manual` leaves the number alone
//! and [`Services::webhook_setup`] shows the exact URLs to paste into Twilio's console.

use serde::Serialize;
use tracing::{info, warn};

use super::{ServiceError, Services};
use crate::telephony::twilio::webhooks::WebhookUrls;

/// Remembered: `auto` or `manual`.
const SETTING_WEBHOOK_MODE: &str = "twilio.webhook_mode";
/// Remembered: the number's SID.
const SETTING_WEBHOOK_NUMBER: &str = "twilio.webhook_number_sid";

/// What the user needs to connect a Twilio number to this app.
#[derive(Debug, Clone, Serialize)]
pub struct WebhookSetup {
    pub public_url: Option<String>,
    /// Paste into the number's "A call comes in" webhook (HTTP POST).
    pub voice_url: Option<String>,
    /// Paste into the number's "Call status changes" webhook (HTTP POST).
    pub status_callback_url: Option<String>,
    /// `auto`, `manual`, or `None` while the user has not chosen yet.
    pub mode: Option<String>,
    pub number_sid: Option<String>,
    /// `ngrok`, `public_url`, or `None` (no public URL: Twilio cannot reach the app).
    pub tunnel: Option<&'static str>,
}

impl Services {
    /// Uses `url` (the user's own tunnel or proxy) from now on, or none. Closes an ngrok tunnel.
    pub fn set_public_url(&self, url: Option<&str>) -> Result<Option<String>, ServiceError> {
        self.reachability
            .set_public_url(url)
            .map_err(|e| ServiceError::Invalid(e.to_string()))
    }

    /// The URLs to give Twilio, and the remembered choice.
    pub async fn webhook_setup(&self) -> Result<WebhookSetup, ServiceError> {
        let public = self.public_url();
        let urls = public.as_deref().map(WebhookUrls::new);
        let tunnel = self.reachability.tunnel_kind();
        Ok(WebhookSetup {
            voice_url: urls.as_ref().map(WebhookUrls::voice),
            status_callback_url: urls.as_ref().map(WebhookUrls::status_callback),
            public_url: public,
            mode: self.store.setting(SETTING_WEBHOOK_MODE).await?,
            number_sid: self.store.setting(SETTING_WEBHOOK_NUMBER).await?,
            tunnel,
        })
    }

    /// Answers the one-time question: `auto` points `number_sid` at this app now and on every start;
    /// `manual` remembers that the user configures Twilio by hand.
    pub async fn choose_webhook_mode(
        &self,
        auto: bool,
        number_sid: Option<&str>,
    ) -> Result<WebhookSetup, ServiceError> {
        if auto {
            let sid = number_sid.filter(|s| !s.is_empty()).ok_or_else(|| {
                ServiceError::Invalid("choose which number to point at this app".into())
            })?;
            self.point_number(sid).await?;
            self.store
                .set_setting(SETTING_WEBHOOK_NUMBER, sid.to_string())
                .await?;
        }
        let mode = if auto { "auto" } else { "manual" };
        self.store
            .set_setting(SETTING_WEBHOOK_MODE, mode.to_string())
            .await?;
        self.webhook_setup().await
    }

    /// Sets the number's `VoiceUrl` and `StatusCallback` to this app's public URL.
    pub async fn point_number(&self, number_sid: &str) -> Result<(), ServiceError> {
        let urls = WebhookUrls::new(&self.reachability.require_public_url()?);
        self.outbound
            .twilio()?
            .set_number_webhooks(number_sid, &urls.voice(), Some(&urls.status_callback()))
            .await?;
        info!(%number_sid, "Twilio number now points at this app");
        Ok(())
    }

    /// On start, repeats the remembered `auto` choice (a tunnel's URL may differ from last run).
    /// Failures are logged: the app still runs, and the setup panel shows what to do by hand.
    pub async fn point_number_on_start(&self) {
        let mode = self.store.setting(SETTING_WEBHOOK_MODE).await;
        let number = self.store.setting(SETTING_WEBHOOK_NUMBER).await;
        if let (Ok(Some(mode)), Ok(Some(number))) = (mode, number) {
            if mode == "auto" && self.public_url().is_some() && self.outbound.has_twilio() {
                if let Err(e) = self.point_number(&number).await {
                    warn!(number_sid = %number, "could not point the Twilio number at this app: {e}");
                }
            }
        }
    }
}
