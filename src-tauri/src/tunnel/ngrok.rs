//! The ngrok agent SDK: an HTTPS endpoint on ngrok's edge that forwards to the local server.
//!
//! Not exercised by tests here (no internet); kept small so that what it does is obvious, with the
//! failure paths (no authtoken, service unreachable) tested through [`super::open`].

use std::net::SocketAddr;

use ngrok::config::ForwarderBuilder;
use ngrok::forwarder::Forwarder;
use ngrok::prelude::*;
use ngrok::tunnel::HttpTunnel;

use super::{Tunnel, TunnelError};
use crate::types::Secret;

/// How long to wait for ngrok's service before giving up with a clear error.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

pub struct NgrokTunnel {
    url: String,
    // Held so the endpoint stays open; dropping it closes the tunnel.
    _forwarder: Forwarder<HttpTunnel>,
}

impl NgrokTunnel {
    pub async fn open(
        authtoken: &Secret,
        domain: Option<&str>,
        local_addr: SocketAddr,
    ) -> Result<NgrokTunnel, TunnelError> {
        let upstream = url::Url::parse(&format!("http://{local_addr}"))
            .map_err(|e| TunnelError::Ngrok(e.to_string()))?;
        let connect = async {
            let session = ngrok::Session::builder()
                .authtoken(authtoken.expose().to_string())
                .connect()
                .await
                .map_err(|e| TunnelError::Ngrok(describe(&e.to_string(), authtoken)))?;
            let mut endpoint = session.http_endpoint();
            if let Some(domain) = domain {
                endpoint.domain(domain);
            }
            endpoint
                .listen_and_forward(upstream)
                .await
                .map_err(|e| TunnelError::Ngrok(describe(&e.to_string(), authtoken)))
        };
        let forwarder = tokio::time::timeout(CONNECT_TIMEOUT, connect)
            .await
            .map_err(|_| {
                TunnelError::Ngrok(format!(
                    "the ngrok service did not answer within {} s",
                    CONNECT_TIMEOUT.as_secs()
                ))
            })??;
        let url = forwarder.url().trim_end_matches('/').to_string();
        tracing::info!(%url, "ngrok tunnel open");
        Ok(NgrokTunnel {
            url,
            _forwarder: forwarder,
        })
    }
}

/// ngrok's message, with the authtoken removed should the SDK ever echo it.
fn describe(message: &str, authtoken: &Secret) -> String {
    if authtoken.is_empty() {
        message.to_string()
    } else {
        message.replace(authtoken.expose(), "***")
    }
}

impl Tunnel for NgrokTunnel {
    fn public_url(&self) -> &str {
        &self.url
    }

    fn kind(&self) -> &'static str {
        "ngrok"
    }
}
